"""Every target, both examples: the artifact read back equals the part of the plan it covers;
the whole bundle equals the reviewed golden files under tests/cases/."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcomc.emit import bundle
from dcomc.pipeline import Compiled, compile_file
from dcomc_targets import TARGETS, EmitContext, Options, Target

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.yaml"))
CASES = ROOT / "tests" / "cases"
OPTION_SETS = {"default": Options(), "replace-limits": Options(replace_machine_limits=True)}


def compiled(spec: Path) -> Compiled:
    return compile_file(spec)


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=list(OPTION_SETS))
@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_read_of_emit_is_plan(target: Target, spec: Path, options: Options) -> None:
    comp = compiled(spec)
    ctx = EmitContext(comp.plan, options, spec.name, comp.sha256)
    for host in comp.plan.hosts:
        artifacts = target.emit(host, ctx)
        assert artifacts, f"{target.name} wrote nothing for {host.name}"
        # the first kind of a target is the one its reader reconstructs (e.g. the .psd1)
        for artifact in (a for a in artifacts if a.kind == target.kinds[0]):
            assert target.sniff(artifact.data, Path(artifact.path).name)
            assert target.read(artifact.data) == target.expected(host, ctx)


# Static files, identical for every host, are checked against their template instead.
STATIC = ("DcomConfig.psm1", "Invoke-DcomConfig.ps1", "dcomc-apply.js")


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_bundle_matches_golden(spec: Path, update_golden: bool) -> None:
    files = {rel: data for rel, data in bundle.emit(compiled(spec), Options(), spec.name)
             .files.items() if not rel.endswith(STATIC)}
    golden = CASES / spec.stem / "expected"
    if update_golden:
        for rel, data in files.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_bytes(data)
    on_disk = {p.relative_to(golden).as_posix(): p.read_bytes()
               for p in golden.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(files), "run pytest --update-golden and review the diff"
    for rel, data in files.items():
        assert on_disk[rel] == data, f"{rel} differs from the golden file"


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_build_is_deterministic(spec: Path) -> None:
    first = bundle.emit(compile_file(spec), Options(), spec.name).files
    second = bundle.emit(compile_file(spec), Options(), spec.name).files
    assert first == second


def test_every_target_has_a_unique_name() -> None:
    names = [t.name for t in TARGETS]
    assert len(names) == len(set(names))
