"""The WiX v3 firewall fragment (issue 17): candle's preprocessor expands `$(...)` in every
attribute and text, so each value from the plan is written through quoting.wix_text and reads
back, through the preprocessor's own rules, as exactly itself."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dcomc.diagnostics import CompileError
from dcomc.pipeline import compile_file
from dcomc_targets import TARGETS, EmitContext, Options
from dcomc_targets.quoting import QuoteError, wix_text, wix_untext, xml_comment, xml_uncomment
from dcomc_targets.wixfirewall import FIRE_NS

ROOT = Path(__file__).resolve().parents[2]
WIX = next(t for t in TARGETS if t.name == "wixfirewall")
text = st.text(st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("$()!.[]"),
               max_size=30)


def preprocess(value: str) -> str:
    """WiX v3 PreprocessorCore.PreprocessString for text without variables: `$$` is `$`, a
    `$(` is a variable (here an error), any other `$` stays."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i):
            raise AssertionError(f"candle would expand a variable in {value!r}")
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@given(text)
def test_wix_text_reads_back_exactly_or_is_refused(value: str) -> None:
    try:
        written = wix_text(value)
    except QuoteError:
        assert any(f"{c}({ns}." in value for c in "!$" for ns in ("loc", "wix", "bind"))
        return
    assert preprocess(written) == value
    assert wix_untext(written) == value


@pytest.mark.parametrize("value", ["$(env.HOME)", "opcuser$", "$$", "a$(var.X)b", "$"])
def test_preprocessor_variables_stay_literal(value: str) -> None:
    assert preprocess(wix_text(value)) == value


@pytest.mark.parametrize("value", ["!(wix.X)", "!(loc.Title)", "$(loc.Title)", "!(bind.x.y)"])
def test_binder_variables_are_refused(value: str) -> None:
    with pytest.raises(QuoteError):
        wix_text(value)


def build(tmp_path: Path, exe: str) -> tuple[bytes, object, object]:
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    spec["clients"]["hmi"]["executable"] = exe
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    comp = compile_file(path)
    ctx = EmitContext(comp.plan, Options(), path.name, comp.sha256)
    host = comp.plan.host("HMI02")
    (artifact,) = WIX.emit(host, ctx)
    return artifact.data, host, ctx


def test_program_with_preprocessor_syntax_round_trips(tmp_path: Path) -> None:
    exe = "C:\\$(env.HOME)\\$$\\[x]\\opc$.exe"
    data, host, ctx = build(tmp_path, exe)
    root = etree.fromstring(data)
    programs = [e.get("Program") for e in root.iter() if e.get("Program")]
    assert programs == ["C:\\$$(env.HOME)\\$$$$\\[\\[]x[\\]]\\opc$$.exe"] * len(programs)
    assert WIX.read(data) == WIX.expected(host, ctx)  # type: ignore[arg-type]


def test_program_with_a_binder_variable_is_a_check_error(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        build(tmp_path, "C:\\!(wix.Evil)\\hmi.exe")
    (diag,) = info.value.diagnostics
    assert diag.code == "E216" and "WiX variable" in diag.message
    assert diag.span is not None and diag.span.line > 1


def test_dashes_in_names_make_valid_comments_that_read_back(tmp_path: Path) -> None:
    """`---` in a site, host, server or client name (or the spec's file name) made an XML
    comment lxml refuses: a traceback (issue 17)."""
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    spec["site"]["name"] = "plant7---line3-"
    spec["clients"]["h---mi-"] = spec["clients"].pop("hmi")
    spec["clients"]["h---mi-"]["service"], spec["clients"]["h---mi-"]["executable"] = "S", None
    spec["hosts"]["HMI---02"] = spec["hosts"].pop("HMI02")
    spec["hosts"]["HMI---02"]["clients"] = ["h---mi-"]
    for host in spec["hosts"].values():
        host["clients"] = ["h---mi-" if c == "hmi" else c for c in host.get("clients", [])]
    path = tmp_path / "a---b-~.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    comp = compile_file(path)
    ctx = EmitContext(comp.plan, Options(), path.name, comp.sha256)
    host = comp.plan.host("HMI---02")
    (artifact,) = WIX.emit(host, ctx)
    content = WIX.read(artifact.data)
    assert content == WIX.expected(host, ctx)
    assert content.pending == ("firewall_rule:dcomc-plant7---line3--client-h---mi-",)
    assert b"a-~-~-b-~~.yaml" in artifact.data


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("-~"),
               max_size=30))
def test_xml_comment_reads_back_exactly(value: str) -> None:
    body = xml_comment(value)
    assert "--" not in body and not body.endswith("-")
    etree.Comment(f" {body} ")  # lxml accepts it
    assert xml_uncomment(body) == value


def test_every_formatted_column_stays_literal(tmp_path: Path) -> None:
    """The firewall custom action formats every column it reads (name, remote addresses, port,
    program, description), Windows Installer the registry key, name and value: a `[...]` or
    `{...}` in any of them is escaped, not a property reference, and reads back as written."""
    _, host, ctx = build(tmp_path, "D:\\HMI\\hmi.exe")
    rule = next(r for r in host.resources if r.kind == "firewall_rule" and r.program)  # type: ignore[attr-defined]
    odd = dataclasses.replace(rule, name="dcomc-[ComputerName]-{x}",
                              description="[ProgramFilesFolder] {[%PATH]} $(env.HOME)",
                              remote=("10.0.0.1", "[IP]"))
    host = dataclasses.replace(host, resources=(odd,))
    (artifact,) = WIX.emit(host, ctx)  # type: ignore[arg-type]
    root = etree.fromstring(artifact.data)
    written = [e.get(a) or "" for e in root.iter() for a in ("Name", "Description", "Program")]
    written += [e.text or "" for e in root.iter(f"{{{FIRE_NS}}}RemoteAddress")]
    assert "[\\[]IP[\\]]" in written
    assert not [v for v in written if set(re.sub(r"\[\\.\]", "", v)) & set("[]{}")]
    assert WIX.read(artifact.data) == WIX.expected(host, ctx)  # type: ignore[arg-type]
