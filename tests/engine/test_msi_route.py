"""The MSI's route end to end: the custom action's JScript (under Node, with stand-ins for
Session and WScript.Shell) prepares and starts the engine; its command line is taken apart
into the engine's parameters, and the bytes it wrote to standard input are given to the real
engine (PowerShell, simulated Windows) in Apply mode. Passwords such as `Grüße§€`, and
account names outside every code page, must arrive unchanged: the accounts are created with
exactly those passwords."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType

from test_pester import pwsh

from tools import require

HERE = Path(__file__).resolve().parent


def _test_msi() -> ModuleType:
    """tests/targets/test_msi.py, whose Node harness runs the custom action's JScript."""
    path = HERE.parent / "targets" / "test_msi.py"
    spec = importlib.util.spec_from_file_location("dcomc_test_msi", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

PASSWORD = "Grüße§€-Pa55\t\"'`$(x)"



def test_msi_custom_action_to_engine(engine_bundles: Path, tmp_path: Path) -> None:
    exe = pwsh()
    require(exe is not None, "PowerShell 7 (pwsh)")
    assert exe is not None
    accounts = {"opcsvc": PASSWORD, "opcuser": PASSWORD}
    _, applied = _test_msi().prepare_and_apply(accounts)
    command = str(applied["command"])
    # The engine's parameters, as cmd.exe hands them to powershell.exe -File.
    found = re.search(r'-PasswordsFromStdin -Mode (\w+) -DataFile "([^"]+)" -BackupName "([^"]+)"',
                      command)
    assert found, command
    mode, data_file, backup = found.groups()
    assert (mode, data_file.rsplit("\\", 1)[-1], backup) == ("Apply", "SCADA01.psd1", "msi")
    assert PASSWORD not in command
    stdin = tmp_path / "stdin.txt"
    stdin.write_bytes(str(applied["stdin"]).encode("ascii"))  # ASCII: any code page keeps it
    run = subprocess.run(
        [exe, "-NoProfile", "-NonInteractive", "-File", str(HERE / "msi-route.ps1"),
         "plant7-workgroup/SCADA01", str(stdin), mode, backup],
        capture_output=True, text=True, timeout=600, check=False,
        env={**_env(engine_bundles, tmp_path), "DCOMC_TEST_SECRET": PASSWORD})
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"ExitCode": 0, "Passwords": {"opcsvc": True, "opcuser": True}}


def _env(bundles: Path, work: Path) -> dict[str, str]:
    return dict(os.environ, DCOMC_BUNDLES=str(bundles), DCOMC_REPO=str(HERE.parents[1]),
                DCOMC_WORK=str(work))
