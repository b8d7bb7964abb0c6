"""Loading YAML: aliases are expanded like any YAML loader does, up to a bound that a real
spec never reaches and a "billion laughs" document does at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dcomc.diagnostics import Diagnostics
from dcomc.front import load
from dcomc.front.load import load_text


def test_aliases_reused_many_times_load_as_written_out() -> None:
    block = "{OPC Users: [local_launch, remote_launch, local_activation, remote_activation]}"
    text = f"perms: &p {block}\n" + "".join(f"s{i}: {{launch: *p}}\n" for i in range(300))
    diags = Diagnostics()
    loaded = load_text(text, "spec.yaml", diags)
    assert loaded is not None and not diags.has_errors
    written_out = load_text("".join(f"s{i}: {{launch: {block}}}\n" for i in range(300)),
                            "spec.yaml", Diagnostics())
    assert written_out is not None
    assert {k: v for k, v in loaded.data.items() if k != "perms"} == written_out.data


def test_a_billion_laughs_document_stops_at_once() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    diags = Diagnostics()
    assert load_text("\n".join(lines), "spec.yaml", diags) is None  # 10**9 strings otherwise
    [error] = [d for d in diags.items if d.severity == "error"]
    assert error.code == "E001" and "aliases (*name) expand to more than" in error.message


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "pure-python"])
def test_a_broken_document_thousands_deep_is_an_error_not_a_crash(
        fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml refuses it; PyYAML's own parser (the messages' reference, and the only parser
    without libyaml) recurses once per level and would hit Python's recursion limit."""
    if not fast:
        monkeypatch.setattr(load, "_FAST_LOADER", yaml.SafeLoader)
    diags = Diagnostics()
    assert load.load_text("a: " + "[" * 5000, "spec.yaml", diags) is None
    [error] = [d for d in diags.items if d.severity == "error"]
    assert error.code == "E001" and error.message.startswith("malformed YAML")


# --- positions (issue 17): errors that were placed at 1:1 -------------------------------------


@pytest.mark.parametrize(("raw", "where", "what"), [
    (b"dcomc: 1\nsite:\n  name: a\x07b\n", (3, 10), "unacceptable character U+0007"),
    (b"dcomc: 1\nsite:\n  name: \"a\xef\xbf\xbeb\"\n", (3, 11), "unacceptable character U+FFFE"),
    (b"dcomc: 1\nsite:\n  name: a\xffb\n", (3, 10), "not UTF-8 (byte 0xff"),
    (b"\xef\xbb\xbfdcomc: 1\nsite:\n  name: \xc3\xa9a\xffb\n", (3, 11), "not UTF-8 (byte 0xff"),
])  # fmt: skip
def test_unreadable_characters_are_placed_where_they_are(
        raw: bytes, where: tuple[int, int], what: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(raw)
    diags = Diagnostics()
    assert load.load_file(path, diags) is None
    [error] = diags.items
    assert error.span is not None and (error.span.line, error.span.col) == where
    assert error.code == "E001" and what in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("name", ["x\nadvfirewall firewall set allprofiles state off\n.yaml",
                                  "a\u202eb.yaml", "a\x1b[2Jb.yaml"])
def test_a_file_name_no_artifact_comment_can_hold_is_refused(name: str, tmp_path: Path) -> None:
    """The spec's file name is written into every artifact's header: a newline in it ended
    the build in a PowerShell QuoteError traceback (and would start a line in netsh)."""
    path = tmp_path / name
    path.write_text("dcomc: 1\n", encoding="utf-8")
    diags = Diagnostics()
    load.load_file(path, diags)
    first = diags.sorted()[0]
    assert first.code == "E201" and "the spec's file name" in first.message
    assert "\n" not in str(first) and "\x1b" not in str(first) and "\u202e" not in str(first)


# --- the YAML a spec may not use (docs/spec.md, "YAML that dcomc refuses") ---------------------


@pytest.mark.parametrize(("text", "code", "what"), [
    ("a: 1\na: 2\n", "E002", "duplicate key 'a'"),
    ("base: &b {x: 1}\nhost:\n  <<: *b\n", "E002", "merge keys (<<)"),
    ("? [a, b]\n: 1\n", "E002", "a mapping key must be a plain string"),
    ("a: !!int 5\n", "E005", "YAML tags"),
    ("a: !secret x\n", "E005", "YAML tags"),
    ("a: 1\n---\nb: 2\n", "E001", "expected a single document"),
    ("a: " + "[" * 40 + "]" * 40 + "\n", "E001", "nested deeper than 32 levels"),
])  # fmt: skip
def test_refused_yaml(text: str, code: str, what: str) -> None:
    diags = Diagnostics()
    load_text(text, "spec.yaml", diags)
    assert any(d.code == code and what in d.message for d in diags.items), diags.items


def test_refused_yaml_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text(encoding="utf-8")
    section = doc.split("## YAML that dcomc refuses")[1].split("\n## ")[0]
    for words in ("given twice", "Merge keys", "not plain text", "Tags", "billion laughs",
                  "several documents", "E001", "E002", "E005"):
        assert words in section


def test_anchors_and_aliases_are_read_as_written_out() -> None:
    diags = Diagnostics()
    loaded = load_text("p: &p [local_access]\nq: *p\n", "spec.yaml", diags)
    assert loaded is not None and not diags.items
    assert loaded.data == {"p": ["local_access"], "q": ["local_access"]}
