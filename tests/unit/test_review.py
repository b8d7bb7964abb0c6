"""The review report: self-contained HTML and Markdown naming every host, opening and lint."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader
from lxml import etree

from dcomc.emit import bundle, review
from dcomc.emit.review import md_escape
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan.model import FirewallRule, FirewallRuleGroup
from dcomc_targets import EmitContext, Options
from tools import require

ROOT = Path(__file__).resolve().parents[2]


def reports(compiled: Compiled) -> dict[str, bytes]:
    files = bundle.emit(compiled, Options(), "site.yaml").files
    return {"html": files["review.html"], "md": files["REVIEW.md"]}


@pytest.mark.parametrize("name", ["plant7-workgroup.yaml", "plant9-domain.yaml"])
def test_html_names_every_host_opening_and_lint(name: str) -> None:
    compiled = compile_file(ROOT / "examples" / name)
    html = reports(compiled)["html"]
    doc = etree.fromstring(html, etree.HTMLParser())
    text = " ".join(doc.itertext())
    for host in compiled.plan.hosts:
        assert doc.xpath(f"//h2[@id='host-{host.name}']"), host.name
        for rule in host.of_kind(FirewallRule):
            assert rule.name in text
        for group in host.of_kind(FirewallRuleGroup):
            assert group.group in text
    for finding in compiled.findings:
        assert finding.code in text and finding.message in text
    assert doc.xpath("//svg//line"), "the flow diagram has arrows"
    # self-contained: no script, stylesheet link, image or any external reference
    assert not doc.xpath("//script | //link | //img | //iframe")
    assert b"http://" not in html.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    assert b"https://" not in html


def test_permission_matrix_and_secrets() -> None:
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    doc = etree.fromstring(reports(compiled)["html"], etree.HTMLParser())
    heading = doc.xpath("//h3[text()='Permissions: AppID kepware']")[0]
    table = heading.getnext()
    rows = {r.xpath("string(td[1])"): [c.text for c in r.xpath("td")[1:]]
            for r in table.xpath("tr[td]")}
    assert rows["OPC Users (SID resolved on the PC)"] == ["✓"] * 6
    section = " ".join(doc.xpath("//h2[@id='host-SCADA01']/following::p[1]//text()"))
    assert "Passwords of: opcsvc, opcuser" in " ".join(doc.itertext())
    assert section


def test_markdown_has_the_same_content_and_escapes_values(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    spec = copy.deepcopy(spec)
    spec["accounts"]["groups"]["OPC `Users`_#1"] = spec["accounts"]["groups"].pop("OPC Users")
    spec["servers"]["kepware"]["launch"] = {"OPC `Users`_#1": ["remote_launch"]}
    spec["servers"]["kepware"]["access"] = {"OPC `Users`_#1": ["remote_access"]}
    spec["machine"]["server"]["dcom"]["launch_limits"] = {"OPC `Users`_#1": ["remote_launch"]}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    md = reports(compile_file(path))["md"].decode()
    assert "OPC \\`Users\\`\\_\\#1" in md and "OPC `Users`" not in md
    for line in md.splitlines():
        if line.startswith("| ") and "Principal" not in line:
            cells = line.count(" |")
            assert cells >= 2, line
    assert "## Host SCADA01 (10.7.3.10) — server" in md


def test_md_escape() -> None:
    assert md_escape("a|b`c*d_e<f>[g]\nh") == "a\\|b\\`c\\*d\\_e\\<f\\>\\[g\\] h"


def test_review_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    require(browser is not None, "chromium")
    assert browser is not None
    from PIL import Image

    html = tmp_path / "review.html"
    html.write_bytes(reports(compile_file(ROOT / "examples" / "plant9-domain.yaml"))["html"])
    png = tmp_path / "review.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,1600", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    image = Image.open(png).convert("RGB")
    colors = image.getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 20, "the page rendered blank"
    dark = sum(count for count, (r, g, b) in colors if r + g + b < 200)
    assert dark > 500, "no text on the page"


def test_compiled_templates_are_cached_only_in_a_safe_folder(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The bytecode cache lives in a private temp folder; where Jinja finds none safe (another
    owner, wrong mode), the templates are compiled each run instead of failing the build."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cache = review._bytecode_cache.__wrapped__()
    assert cache is not None
    folder = tmp_path / f"_jinja2-cache-{os.getuid()}"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    # a folder of this name that another user owns is refused
    monkeypatch.setattr("os.getuid", lambda: tmp_path.stat().st_uid + 1)
    assert review._bytecode_cache.__wrapped__() is None


def test_a_damaged_or_unwritable_template_cache_never_fails_a_render(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "page.j2").write_text("{% for x in items %}<{{ x }}>{% endfor %}")
    store = tmp_path / "cache"
    store.mkdir()

    def render() -> str:
        env = Environment(loader=FileSystemLoader(str(tmp_path / "t")),
                          bytecode_cache=review._TolerantCache(str(store)))
        return env.get_template("page.j2").render(items=[1, 2])

    assert render() == "<1><2>"
    entries = list(store.iterdir())
    assert len(entries) == 1  # compiled once, kept
    assert render() == "<1><2>" and list(store.iterdir()) == entries  # and used
    # another dcomc (its environment options) or Jinja version: another entry, never this one
    with monkeypatch.context() as other:
        other.setattr(review._TolerantCache, "SALT", "another version")
        assert render() == "<1><2>"
        assert len(list(store.iterdir())) == 2
    (set(store.iterdir()) - set(entries)).pop().unlink()
    for damage in (b"", b"j2\x00garbage", entries[0].read_bytes()[:40]):
        entries[0].write_bytes(damage)
        assert render() == "<1><2>"
    entries[0].unlink()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", full)
    assert render() == "<1><2>"
    assert list(store.iterdir()) == []


# --- hostile values cannot reshape REVIEW.md (issue 17) ----------------------------------------

HOSTILE_MD = [
    "~~~", "```", "~~~ rest", "&rlm;", "&#x202E;x&amp;", "    indented code", " - item", "- item",
    "+ item", "* item", "1. one", "2) two", "---", "===", "***", "> quote", "# heading",
    "<b>bold</b>", "<!-- c -->", "[a](http://evil.example)", "![i](x.png)", "[x]: /url",
    "http://evil.example/x", "https://evil.example", "www.evil.example", "opc@evil.example",
    "| a | b |", "a\\", "\\*x\\*", "`code`", "**b** _i_ ~~s~~", "<http://x.example>",
]


@pytest.fixture(scope="module")
def plant7_view() -> Any:
    md = pytest.importorskip("markdown_it")
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
    view = review.build_view(compiled.plan, ctx, compiled.findings, {})
    parser = md.MarkdownIt("commonmark").enable("table").enable("strikethrough")
    return view, parser


def _shape(parser: Any, text: str) -> tuple[list[str], list[str]]:
    """The block and inline token types of a Markdown text, and its plain text pieces."""
    kinds: list[str] = []
    texts: list[str] = []
    for token in parser.parse(text):
        kinds.append(token.type)
        for child in token.children or []:
            kinds.append(child.type)
            if child.type == "text":
                texts.append(child.content)
    return kinds, texts


@pytest.mark.parametrize("value", HOSTILE_MD)
def test_no_value_reshapes_the_markdown(plant7_view: Any, value: str) -> None:
    view, parser = plant7_view
    placed = copy.deepcopy(view)
    base = copy.deepcopy(view)
    base["description"] = "plain"
    placed["description"] = value  # the first line of a paragraph
    placed["hosts"][0].manual.append(value)  # a list item
    base["hosts"][0].manual.append("plain")
    placed["hosts"][0].openings[0]["remote"] = value  # a table cell
    base["hosts"][0].openings[0]["remote"] = "plain"
    md_text = review.render(placed)["REVIEW.md"].decode()
    kinds, texts = _shape(parser, md_text)
    base_kinds, _ = _shape(parser, review.render(base)["REVIEW.md"].decode())
    assert [k for k in kinds if k != "text"] == [k for k in base_kinds if k != "text"]
    assert sum(t.count(value) for t in texts) >= 3 or value.startswith(" "), texts[:3]


@given(st.text(st.sampled_from("~`&;#<>[]()!*_-+=|\\:/.@ 1aw"), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_punctuation_reshapes_the_description(plant7_view: Any, value: str) -> None:
    view, parser = plant7_view
    placed = copy.copy(view)
    placed["description"] = value
    kinds, _texts = _shape(parser, review.render(placed)["REVIEW.md"].decode())
    base = copy.copy(view)
    base["description"] = "plain"
    base_kinds, _ = _shape(parser, review.render(base)["REVIEW.md"].decode())
    assert [k for k in kinds if k != "text"] == [k for k in base_kinds if k != "text"]


def test_md_escape_breaks_bare_links_and_line_start_markers() -> None:
    assert md_escape("see http://x.example, www.y.example, a@b.example &rlm;") == (
        "see http:\\//x.example, www\\.y.example, a\\@b.example \\&rlm;")
    assert md_escape("- x") == "\\- x" and md_escape("12) x") == "12\\) x"
    assert md_escape("10.7.3.10") == "10.7.3.10" and md_escape("-x") == "-x"
    assert md_escape("  two") == "&#32; two"
