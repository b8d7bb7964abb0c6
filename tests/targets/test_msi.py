"""MSIs built with wixl, read back with msitools, installed and removed with Wine's msiexec.

wixl/msitools and Wine are real tools here; a missing one skips locally and fails in CI
(DCOMC_REQUIRE_TOOLS=1). Wine 8 limits what can be observed: its powershell.exe is a stub that
returns 0, its WshExec.ExitCode is a stub (so the JScript action that feeds passwords cannot
report success under Wine), and its msiexec log ignores MsiHiddenProperties — those checks are
done on the MSI's tables and on the process command lines Wine traces instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcomc import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options, msi
from dcomc_targets.wix import ROLLBACK_TYPE, SEQUENCE, product_codes
from tools import require

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PLANT9 = ROOT / "examples" / "plant9-domain.yaml"
SECRET = "Zq7-not-in-any-file"


def built(spec: Path, out: Path, version: str = "1.0.0") -> Path:
    require(not msi.missing_tools(), "wixl/msitools")
    bundle.build(compile_file(spec), Options(product_version=version), spec.name, out,
                 bundle.MsiRequest(version))
    return out


@pytest.fixture(scope="module")
def plant7(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(PLANT7, tmp_path_factory.mktemp("msi") / "plant7")


@pytest.fixture(scope="module")
def plant9(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(PLANT9, tmp_path_factory.mktemp("msi") / "plant9")


def rows(path: Path, table: str) -> list[dict[str, str]]:
    return msi.read_tables(path, [table])[table]


def test_file_table_holds_the_payload(plant7: Path) -> None:
    files = {r["File"]: r["FileName"] for r in rows(plant7 / "SCADA01" / "SCADA01.msi", "File")}
    assert files == {"DcomcEngine": "DcomConfig.psm1", "DcomcEntry": "Invoke-DcomConfig.ps1",
                     "DcomcData": "SCADA01.psd1", "DcomcReg": "SCADA01.reg",
                     "DcomcInf": "SCADA01.inf", "DcomcNetsh": "SCADA01.netsh"}
    # the payload in the cab is the bundle's own files, byte for byte (sizes as a proxy)
    sizes = {r["FileName"]: int(r["FileSize"]) for r in
             rows(plant7 / "SCADA01" / "SCADA01.msi", "File")}
    assert sizes["SCADA01.psd1"] == (plant7 / "SCADA01/powershell/SCADA01.psd1").stat().st_size


def test_no_registry_rows_the_engine_does_it(plant7: Path) -> None:
    # the plan's registry changes are merges and lookups done by the engine, never MSI rows
    assert rows(plant7 / "HMI01" / "HMI01.msi", "Registry") == []


def test_custom_action_types(plant7: Path, plant9: Path) -> None:
    with_passwords = {r["Action"]: int(r["Type"]) for r in
                      rows(plant7 / "SCADA01" / "SCADA01.msi", "CustomAction")}
    assert with_passwords == {
        "SetPowerShellExe": 51,  # property from formatted text
        "SetDcomcApply": 51,  # the hidden CustomActionData
        "DcomcApply": 3077,  # JScript (5) + deferred (0x400) + no impersonation (0x800)
        "DcomcApplyRollback": ROLLBACK_TYPE,  # patched: rollback, deferred, no impers., ignore
        "DcomcUninstall": 3122,  # EXE (50) + deferred + no impersonation
    }
    without = {r["Action"]: int(r["Type"]) for r in
               rows(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi", "CustomAction")}
    assert without["DcomcApply"] == 3122 and "SetDcomcApply" not in without
    apply_row = next(r for r in rows(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi", "CustomAction")
                     if r["Action"] == "DcomcApply")
    assert apply_row["Target"].endswith(
        '-Mode Apply -DataFile "[DCOMC_INSTALLDIR]UTIL-SRV1.psd1" -BackupName msi')


def test_sequence_and_conditions(plant7: Path) -> None:
    table = {r["Action"]: (int(r["Sequence"]), r["Condition"]) for r in
             rows(plant7 / "SCADA01" / "SCADA01.msi", "InstallExecuteSequence")}
    for action, number in SEQUENCE.items():
        assert table[action][0] == number
    assert table["DcomcApply"][1] == 'NOT REMOVE~="ALL"'
    assert table["DcomcUninstall"][1] == 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'
    # payload is installed before Apply and still there when uninstall rolls back
    assert table["InstallFiles"][0] < table["DcomcApply"][0] < table["InstallFinalize"][0]
    assert table["InstallInitialize"][0] < table["DcomcUninstall"][0] < table["RemoveFiles"][0]
    assert table["DcomcApplyRollback"][0] < table["DcomcApply"][0]


def test_properties_hide_passwords(plant7: Path) -> None:
    path = plant7 / "SCADA01" / "SCADA01.msi"
    props = {r["Property"]: r["Value"] for r in rows(path, "Property")}
    assert props["MsiHiddenProperties"].split(";") == [
        "DCOMC_PASSWORD_1", "DCOMC_PASSWORD_2", "DcomcApply"]
    assert (props["DCOMC_ACCOUNT_1"], props["DCOMC_ACCOUNT_2"]) == ("opcsvc", "opcuser")
    assert not any(k.startswith("DCOMC_PASSWORD_") for k in props)  # never stored
    conditions = {r["Condition"] for r in rows(path, "LaunchCondition")}
    assert {"Privileged", "VersionNT64 >= 601", "Installed OR DCOMC_PASSWORD_1",
            "Installed OR DCOMC_PASSWORD_2"} <= conditions


def test_upgrade_table_and_codes(tmp_path: Path, plant7: Path) -> None:
    first = {r["Property"]: r["Value"] for r in rows(plant7 / "HMI01" / "HMI01.msi", "Property")}
    newer = built(PLANT7, tmp_path / "v2", version="1.1.0")
    second = {r["Property"]: r["Value"] for r in rows(newer / "HMI01" / "HMI01.msi", "Property")}
    assert first["UpgradeCode"] == second["UpgradeCode"]  # same family: a major upgrade
    assert first["ProductCode"] != second["ProductCode"]
    upgrade = rows(newer / "HMI01" / "HMI01.msi", "Upgrade")
    assert {r["UpgradeCode"] for r in upgrade} == {first["UpgradeCode"]}


def test_byte_identical_rebuild(tmp_path: Path, plant7: Path) -> None:
    again = built(PLANT7, tmp_path / "again")
    for host in ("SCADA01", "HMI01"):
        assert (again / host / f"{host}.msi").read_bytes() == (
            plant7 / host / f"{host}.msi").read_bytes()
    assert msi.summary(again / "HMI01" / "HMI01.msi")["Created"].endswith("2000")


def test_bundle_files_keep_their_real_times(plant7: Path) -> None:
    """Only the MSI's cabinet gets the fixed time: a bundle file set to an old fixed time
    would let rsync's quick check skip it when a rebuild changed it but not its size."""
    for path in (plant7 / "HMI01").rglob("*"):
        if path.is_file():
            assert path.stat().st_mtime > time.time() - 86400, path


# --- Wine ---------------------------------------------------------------------------------------


@pytest.fixture
def wine(tmp_path: Path) -> Iterator[dict[str, str]]:
    require(shutil.which("wine") is not None, "wine")
    env = {**os.environ, "WINEPREFIX": str(tmp_path / "prefix"), "WINEDEBUG": "-all"}
    subprocess.run(["wine", "wineboot", "-i"], env=env, capture_output=True, timeout=300,
                   check=False)
    yield env
    subprocess.run(["wineserver", "-k"], env=env, capture_output=True, check=False)


def msiexec(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run msiexec with process tracing; returns (exit code, traced command lines)."""
    traced = {**env, "WINEDEBUG": "+process"}
    proc = subprocess.run(["wine", "msiexec", *args], env=traced, capture_output=True,
                          timeout=300, check=False)
    lines = [line for line in proc.stderr.decode("utf-8", "replace").splitlines()
             if "CreateProcessInternalW" in line]
    return proc.returncode, "\n".join(lines)


def winpath(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


def installed_dir(env: dict[str, str], site: str) -> Path:
    return Path(env["WINEPREFIX"]) / "drive_c" / "Program Files" / "dcomc" / site


def test_wine_install_and_uninstall(wine: dict[str, str], plant9: Path) -> None:
    package = winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi")
    code, trace = msiexec(wine, "/i", package, "/qn")
    assert code == 0
    target = installed_dir(wine, "plant9-utilities")
    assert sorted(p.name for p in target.iterdir()) == sorted([
        "DcomConfig.psm1", "Invoke-DcomConfig.ps1", "UTIL-SRV1.psd1", "UTIL-SRV1.reg",
        "UTIL-SRV1.inf", "UTIL-SRV1.netsh"])
    assert (target / "UTIL-SRV1.psd1").read_bytes() == (
        plant9 / "UTIL-SRV1/powershell/UTIL-SRV1.psd1").read_bytes()
    apply = [line for line in trace.splitlines() if "powershell.exe" in line]
    # Wine's trace cuts long command lines: compare the part it shows
    assert any('-Mode Apply -DataFile \\"C:\\\\Program Files\\\\dcomc\\\\plant9-utilities'
               '\\\\UTIL-SRV1.psd1\\"' in line for line in apply), trace
    code, trace = msiexec(wine, "/x", package, "/qn")
    assert code == 0
    assert not target.exists() or not any(target.iterdir())
    assert any("-Mode Rollback" in line for line in trace.splitlines()), trace


def test_wine_unattended_without_password_changes_nothing(wine: dict[str, str],
                                                          plant7: Path) -> None:
    code, trace = msiexec(wine, "/i", winpath(plant7 / "SCADA01" / "SCADA01.msi"), "/qn")
    assert code != 0  # the launch condition stops it
    assert not installed_dir(wine, "plant7-line3").exists()
    assert "powershell.exe" not in trace  # nothing ran


def test_wine_password_never_on_a_command_line(wine: dict[str, str], plant7: Path) -> None:
    package = winpath(plant7 / "SCADA01" / "SCADA01.msi")
    _, trace = msiexec(wine, "/i", package, "/qn", f"DCOMC_PASSWORD_1={SECRET}",
                       f"DCOMC_PASSWORD_2={SECRET}")
    started = [line for line in trace.splitlines() if "powershell.exe" in line]
    assert any("-PasswordsFromStdin" in line for line in started), trace  # before the cut
    # the only command line holding it is the msiexec call this test itself made
    own = [line for line in trace.splitlines() if "msiexec" in line.lower()]
    assert all(SECRET not in line for line in trace.splitlines() if line not in own)
    assert SECRET.encode() not in (plant7 / "SCADA01" / "SCADA01.msi").read_bytes()


# --- the JScript action, executed (Node with stand-ins for Session and WScript.Shell) ---------


def run_apply_js(data: str, exit_code: int) -> dict[str, object]:
    node = shutil.which("node")
    require(node is not None, "node")
    script = ROOT / "templates" / "wix" / "dcomc-apply.js"
    proc = subprocess.run([str(node), str(Path(__file__).with_name("run_apply_js.js")),
                           str(script), data, str(exit_code)], capture_output=True, text=True,
                          check=True)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_apply_js_feeds_passwords_through_stdin_only() -> None:
    data = "\t".join(["C:\\ps.exe", "C:\\dir\\Invoke-DcomConfig.ps1", "C:\\dir\\H.psd1", "msi",
                      "opcsvc", SECRET, "O'Brien $x", "p\u00e4ss w\"ord"])
    done = run_apply_js(data, 0)
    assert done["result"] == 1 and done["closed"] is True
    command = str(done["command"])
    assert SECRET not in command and "p\u00e4ss" not in command
    assert command == ('"C:\\ps.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -File '
                       '"C:\\dir\\Invoke-DcomConfig.ps1" -PasswordsFromStdin -Mode Apply '
                       '-DataFile "C:\\dir\\H.psd1" -BackupName "msi"')
    assert done["stdin"] == f"opcsvc\t{SECRET}\nO'Brien $x\tp\u00e4ss w\"ord\n"


def test_apply_js_fails_the_install_when_the_engine_fails() -> None:
    assert run_apply_js("a\tb\tc\tmsi", 2)["result"] == 3
    assert run_apply_js("too\tshort", 0)["result"] == 3


def test_without_wixl_everything_else_is_built(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dcomc.cli import main

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no wixl, no msitools
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert msi.INSTALL_HINT in result.output
    assert (out / "SCADA01" / "wix" / "SCADA01.wxs").is_file()
    assert (out / "SCADA01" / "powershell" / "SCADA01.psd1").is_file()
    assert not list(out.rglob("*.msi"))
    kinds = {a["kind"] for h in json.loads((out / "manifest.json").read_text())["hosts"].values()
             for a in h["artifacts"]}
    assert "msi" not in kinds and "wix-product" in kinds


def test_no_msi_option_skips_silently(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dcomc.cli import main

    result = CliRunner().invoke(main, ["build", str(PLANT9), "-o", str(tmp_path / "o"),
                                       "--no-msi"])
    assert result.exit_code == 0 and msi.INSTALL_HINT not in result.output
    assert not list((tmp_path / "o").rglob("*.msi"))


def test_codes_do_not_depend_on_the_case_of_site_and_host(tmp_path: Path) -> None:
    """Windows compares computer and folder names without case: a later spec that writes
    `hmi01` or `Plant7-Line3` still describes the same PC, so its MSI must upgrade the one
    installed (same UpgradeCode, component GUIDs), not install beside it."""
    text = PLANT7.read_text(encoding="utf-8")
    recased = tmp_path / "recased.yaml"
    recased.write_text(text.replace("HMI01", "hmi01").replace("name: plant7-line3",
                                                              "name: Plant7-Line3"),
                       encoding="utf-8")
    before = bundle.emit(compile_file(PLANT7), Options(), "site.yaml").files
    after = bundle.emit(compile_file(recased), Options(), "site.yaml").files

    def guids(files: dict[str, bytes], host: str) -> list[bytes]:
        names = (f"{host}/wix/{host}.wxs", f"{host}/wix/DcomConfig.wxs",
                 f"{host}/firewall/{host}-firewall.wxs")
        return [g for name in names for g in re.findall(rb"\{[0-9A-F-]{36}\}", files[name])]

    assert guids(after, "hmi01") == guids(before, "HMI01")
    assert len(guids(before, "HMI01")) >= 2 + 6 + 1  # Product Id, UpgradeCode; components
    assert product_codes("Plant7-Line3", "hmi01", "1.0.0", "00") == product_codes(
        "plant7-line3", "HMI01", "1.0.0", "00")  # the PackageCode the patch writes, too
