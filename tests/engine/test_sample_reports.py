"""The sample Report JSON of examples/reports/ is what the real engine writes: the shipped
example is built, tests/engine/make-sample-reports.ps1 runs each host's engine (Apply, then
Report; HMI02 with its DCOM authentication level lowered after the Apply) against the
simulated Windows, and every shipped file must equal the engine's output.

Two things may differ and are not compared byte for byte: the order of the keys inside a
resource's `State` (PowerShell hashtables; their order changes from process to process, and on
Windows too), and `Time` (the simulated clock, set per host before the Report; how many ticks
the engine takes before it writes the report is its own business), which must be an ISO 8601
time of that morning."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from test_pester import pwsh

from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc.readback.drift import drift, load_report
from dcomc_targets import Options
from tools import require

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = ROOT / "examples" / "plant7-workgroup.yaml"
SHIPPED = ROOT / "examples" / "reports"
DRIFT_HOST = "HMI02"
REGENERATE = (f"dcomc build {SPEC.relative_to(ROOT)} -o /tmp/b --no-msi && pwsh -NoProfile -File "
              f"tests/engine/make-sample-reports.ps1 -Bundle /tmp/b -OutDir "
              f"{SHIPPED.relative_to(ROOT)} -DriftHost {DRIFT_HOST}")


def _generate(tmp_path: Path) -> Path:
    exe = pwsh()
    require(exe is not None, "PowerShell 7 (pwsh)")
    assert exe is not None
    built, out = tmp_path / "bundle", tmp_path / "reports"
    bundle.build(compile_file(SPEC), Options(), SPEC.name, built)
    run = subprocess.run(
        [exe, "-NoProfile", "-NonInteractive", "-File", str(HERE / "make-sample-reports.ps1"),
         "-Bundle", str(built), "-OutDir", str(out), "-DriftHost", DRIFT_HOST],
        capture_output=True, text=True, env=dict(os.environ, DCOMC_WORK=str(tmp_path)),
        timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return out


def _without_time(path: Path) -> tuple[dict[str, Any], datetime]:
    data = json.loads(path.read_text(encoding="utf-8"))
    # 'o' format: seven digits of fractions, which fromisoformat reads from Python 3.11 on
    return data, datetime.fromisoformat(data.pop("Time"))


def test_shipped_reports_are_the_engines_output(tmp_path: Path) -> None:
    out = _generate(tmp_path)
    made = sorted(p.name for p in out.glob("*.json"))
    assert made == ["HMI01.json", "HMI02.json", "SCADA01.json"]
    assert sorted(p.name for p in SHIPPED.iterdir()) == made, f"regenerate: {REGENERATE}"
    for name in made:
        got, got_time = _without_time(out / name)
        shipped, shipped_time = _without_time(SHIPPED / name)
        assert shipped == got, f"{name} differs from the engine's output; regenerate: {REGENERATE}"
        for time in (got_time, shipped_time):
            assert time.tzinfo is not None
            assert time.astimezone(UTC).date().isoformat() == "2026-03-02"


def test_shipped_reports_drift_only_on_the_drift_host() -> None:
    compiled = compile_file(SPEC)
    for path in sorted(SHIPPED.glob("*.json")):
        result = drift(compiled, SPEC, load_report(path))
        assert result.report.computer == result.host == path.stem
        assert not result.stale and not result.missing and not result.extra
        if path.stem == DRIFT_HOST:
            assert [r["id"] for r in result.drifted] == [
                "machine_dcom_value:LegacyAuthenticationLevel"]
            assert result.drifted[0]["state"]["Value"]["Data"] == 2
        else:
            assert not result.has_drift and result.compliant
