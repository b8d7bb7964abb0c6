"""The PowerShell engine executed: each Pester container under tests/engine runs in real
PowerShell (7, the one that runs on Linux) against the simulated Windows of SimWindows.ps1,
and fails this test on any failed, skipped or missing Pester test. Containers whose name ends
in `.PerHost.Tests.ps1` run once per host of the bundles, so pytest-xdist spreads them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import require

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONTAINERS = sorted(HERE.glob("*.Tests.ps1"))
SUMMARY = re.compile(r"PESTER-SUMMARY passed=(\d+) failed=(\d+) skipped=(\d+) notrun=(\d+) "
                     r"total=(\d+) containers-failed=(\d+)")
HOSTS = {  # spec stem -> hosts: the per-host containers run once for each
    "plant7-workgroup": ("SCADA01", "HMI01", "HMI02"),
    "plant9-domain": ("UTIL-SRV1", "UTIL-HIST", "ENG-WS1"),
    "hostile-names": ("SCADA01", "HMI01"),
}


def pwsh() -> str | None:
    found = shutil.which("pwsh")
    if found:
        return found
    tool = Path.home() / ".dotnet" / "tools" / "pwsh"
    return str(tool) if tool.exists() else None


def _cases() -> list[tuple[Path, str]]:
    cases: list[tuple[Path, str]] = []
    for container in CONTAINERS:
        if container.name.endswith(".PerHost.Tests.ps1"):
            cases += [(container, f"{stem}/{host}") for stem, hosts in HOSTS.items()
                      for host in hosts]
        else:
            cases.append((container, ""))
    return cases


@pytest.mark.parametrize(("container", "only"), _cases(),
                         ids=[f"{c.stem}{'-' + o if o else ''}" for c, o in _cases()])
def test_pester(container: Path, only: str, engine_bundles: Path, tmp_path: Path) -> None:
    exe = pwsh()
    require(exe is not None, "PowerShell 7 (pwsh)")
    assert exe is not None
    env = dict(os.environ, DCOMC_BUNDLES=str(engine_bundles), DCOMC_PYTHON=sys.executable,
               DCOMC_REPO=str(ROOT), DCOMC_ONLY=only, DCOMC_WORK=str(tmp_path))
    run = subprocess.run(
        [exe, "-NoProfile", "-NonInteractive", "-File", str(HERE / "run-pester.ps1"),
         str(container), str(tmp_path / "pester.xml")],
        capture_output=True, text=True, env=env, timeout=1200, check=False)
    output = run.stdout + run.stderr
    if ("Pester" in output and "could not be found" in output) or "No modules named" in output:
        require(False, "Pester 5")
    found = SUMMARY.search(output)
    assert found, f"no Pester summary:\n{output[-6000:]}"
    passed, failed, skipped, notrun, total, broken = map(int, found.groups())
    print(found.group(0))
    assert failed == 0 and broken == 0, output[-12000:]
    assert skipped == 0 and notrun == 0, f"Pester skipped tests:\n{output[-6000:]}"
    assert total > 0 and passed == total
    assert run.returncode == 0, output[-6000:]
