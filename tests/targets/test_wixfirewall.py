"""The WiX v3 firewall fragment (issue 17): candle's preprocessor expands `$(...)` in every
attribute and text, so each value from the plan is written through quoting.wix_text and reads
back, through the preprocessor's own rules, as exactly itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dcomc.diagnostics import CompileError
from dcomc.pipeline import compile_file
from dcomc_targets import TARGETS, EmitContext, Options
from dcomc_targets.quoting import QuoteError, wix_text, wix_untext

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
