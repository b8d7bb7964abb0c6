"""The stages in order: load → spec → check → lower → lint → verify (the flows). One entry
point for every command."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dcomc.checks import site as check_stage
from dcomc.diagnostics import CompileError, Diagnostics
from dcomc.front import spec as spec_stage
from dcomc.front.load import Loaded, load_file
from dcomc.front.spec import Spec
from dcomc.plan import lint as lint_stage
from dcomc.plan import lower as lower_stage
from dcomc.plan import verify as verify_stage
from dcomc.plan.model import SitePlan


@dataclass(frozen=True, slots=True)
class Compiled:
    spec: Spec
    loaded: Loaded
    plan: SitePlan
    sha256: str
    diagnostics: Diagnostics
    findings: lint_stage.Findings  # the lints, and what --self-contained refuses
    verified: tuple[verify_stage.Finding, ...] = ()  # the flow verifier's findings


def compile_file(path: Path, *, strict: bool = False, self_contained: bool = False,
                 flow_errors: bool = True) -> Compiled:
    """Compile a spec file to its plan, lint it and verify its flows; raises CompileError
    carrying every error found (with `strict`, warnings count as errors; with
    `self_contained`, what an artifact cannot carry ahead of time, E401). Without
    `flow_errors` the verifier's findings are only kept in `Compiled.verified`, for `dcomc
    explain`, which explains exactly the failures they predict."""
    with _collector_paused():
        return _compile_file(path, strict=strict, self_contained=self_contained,
                             flow_errors=flow_errors)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Compiling builds hundreds of thousands of small objects (YAML nodes, spans, models,
    diagnostics) and frees them by reference counting; the cyclic collector would otherwise
    walk all of them again and again as they pile up, half the time of a 20,000-host spec."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile_file(path: Path, *, strict: bool, self_contained: bool,
                  flow_errors: bool) -> Compiled:
    diags = Diagnostics()
    loaded = load_file(path, diags)
    spec = spec_stage.parse(loaded, diags) if loaded is not None else None
    if spec is None or loaded is None or diags.has_errors:
        raise CompileError(diags)
    check_stage.check(spec, loaded, diags)
    if diags.has_errors:
        raise CompileError(diags)
    plan = lower_stage.lower(spec, loaded)
    findings = lint_stage.lint(spec, plan)
    lint_stage.report(findings, diags, strict=strict, self_contained=self_contained)
    verified = verify_stage.verify(spec, loaded, plan)
    if flow_errors:
        verify_stage.report(verified, diags, strict=strict)
    if diags.has_errors:
        raise CompileError(diags)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Compiled(spec, loaded, plan, digest, diags, findings, tuple(verified))
