"""MSIs built with wixl, read back with msitools, installed and removed with Wine's msiexec.

wixl/msitools and Wine are real tools here; a missing one skips locally and fails in CI
(DCOMC_REQUIRE_TOOLS=1). Wine 8 limits what can be observed: its powershell.exe is a stub that
returns 0, its WshExec.ExitCode is a stub (so the JScript action that feeds passwords cannot
report success under Wine), and its msiexec log ignores MsiHiddenProperties — those checks are
done on the MSI's tables and on the process command lines Wine traces instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options, msi
from dcomc_targets.quoting import msi_formatted, xml_uncomment
from dcomc_targets.wix import (
    ROLLBACK_TYPE,
    SECURE_DONOR,
    SEQUENCE,
    WixTarget,
    password_accounts,
    payload_files,
    product_codes,
    reboot_tail,
    wixl_input,
)
from tools import require

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PLANT9 = ROOT / "examples" / "plant9-domain.yaml"
SECRET = "Zq7-not-in-any-file"


def built(spec: Path, out: Path, version: str = "1.0.0", *, site_package: bool = False) -> Path:
    require(not msi.missing_tools(), "wixl/msitools")
    bundle.build(compile_file(spec), Options(product_version=version, site_package=site_package),
                 spec.name, out, bundle.MsiRequest(version))
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


def detection_rows(out: Path, host: str, version: str = "1.0.0") -> dict[str, str]:
    """What the detection key must hold, from the bundle's manifest (site, the host's inputs
    hash)."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {"Site": manifest["site"], "Host": host, "ProductVersion": version,
            "InputsSha256": manifest["hosts"][host]["inputs"],
            "Generator": f"dcomc {manifest['dcomc']}", "RebootRequired": "#1"}


def test_registry_rows_are_the_detection_key_only(plant7: Path) -> None:
    """The plan's registry changes are merges and lookups done by the engine, never MSI rows;
    the Registry table holds the detection key alone (HKLM, 64-bit component, one component
    whose GUID outlives versions, its key path a value: no file decides it is installed)."""
    path = plant7 / "HMI01" / "HMI01.msi"
    table = rows(path, "Registry")
    assert {(r["Root"], r["Key"], r["Component_"]) for r in table} == {
        ("2", "SOFTWARE\\dcomc\\plant7-line3", "DcomcDetectionC")}
    assert {r["Name"]: r["Value"] for r in table} == detection_rows(plant7, "HMI01")
    (component,) = [r for r in rows(path, "Component") if r["Component"] == "DcomcDetectionC"]
    assert int(component["Attributes"]) == 0x100 | 0x4  # 64-bit, registry key path
    assert component["KeyPath"] == next(r["Registry"] for r in table if r["Name"] == "Site")
    newer = product_codes("plant7-line3", "HMI01", "1.1.0", "00")
    assert component["ComponentId"] not in newer.values()
    sequence = {r["Action"]: int(r["Sequence"]) for r in rows(path, "InstallExecuteSequence")}
    # written before Apply overwrites RebootRequired; removed on uninstall
    assert sequence["WriteRegistryValues"] < sequence["DcomcApply"]
    assert "RemoveRegistryValues" in sequence


def test_custom_action_types(plant7: Path, plant9: Path) -> None:
    with_passwords = {r["Action"]: int(r["Type"]) for r in
                      rows(plant7 / "SCADA01" / "SCADA01.msi", "CustomAction")}
    assert with_passwords == {
        "SetPowerShellExe": 51,  # property from formatted text
        "SetCmdExe": 51,
        "DcomcCheckReboot": 0x1000 | 5,  # 64-bit JScript, immediate: after InstallFinalize
        "SetDcomcApply": 0x1000 | 5,  # 64-bit (patched) JScript Prepare: the hidden data
        # 64-bit (patched: wixl writes 3077, a 32-bit script whose [System64Folder] is
        # SysWOW64) JScript (5) + deferred (0x400) + no impersonation (0x800)
        "DcomcApply": 0x1000 | 0x800 | 0x400 | 5,
        "DcomcApplyRollback": ROLLBACK_TYPE,  # patched: rollback, deferred, no impers., ignore
        # EXE (50) + deferred + no impersonation + ignore the exit code: a failed restore
        # never blocks the uninstall (M8)
        "DcomcUninstall": 0x800 | 0x400 | 0x40 | 50,
    }
    assert ROLLBACK_TYPE & 0x40  # the rollback action ignores its exit code too
    without = {r["Action"]: int(r["Type"]) for r in
               rows(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi", "CustomAction")}
    assert without["DcomcApply"] == 3122 and "SetDcomcApply" not in without
    assert without["DcomcCheckReboot"] == 0x1000 | 5
    assert without["DcomcUninstall"] == 3186
    apply_row = next(r for r in rows(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi", "CustomAction")
                     if r["Action"] == "DcomcApply")
    # cmd.exe runs the engine, then records its verdict: exit 5 is a success needing a reboot
    assert apply_row["Source"] == "DCOMCCMDEXE"
    assert apply_row["Target"].startswith('/d /v:off /s /c ""[POWERSHELLEXE]" ')
    assert '-Mode Apply -DataFile "[DCOMC_INSTALLDIR]UTIL-SRV1.psd1" -BackupName msi & if ' \
        in apply_row["Target"]
    assert apply_row["Target"].endswith("|| exit 3)\"")


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
    # a major upgrade removes the old product inside the new one's script (rolled back with it),
    # before anything of the new product is installed
    assert table["InstallInitialize"][0] < table["RemoveExistingProducts"][0] < \
        table["ProcessComponents"][0]


def test_properties_hide_passwords(plant7: Path) -> None:
    path = plant7 / "SCADA01" / "SCADA01.msi"
    props = {r["Property"]: r["Value"] for r in rows(path, "Property")}
    assert props["MsiHiddenProperties"].split(";") == [
        "DCOMC_PASSWORD_1", "DCOMC_PASSWORD_2", "DcomcApply"]
    assert (props["DCOMC_ACCOUNT_1"], props["DCOMC_ACCOUNT_2"]) == ("opcsvc", "opcuser")
    assert not any(k.startswith("DCOMC_PASSWORD_") for k in props)  # never stored
    assert (props["DcomcDataFile"], props["DcomcBackupName"]) == ("SCADA01.psd1", "msi")
    conditions = {r["Condition"] for r in rows(path, "LaunchCondition")}
    assert {"Privileged", "Installed OR DCOMC_PASSWORD_1",
            "Installed OR DCOMC_PASSWORD_2"} <= conditions


def test_password_and_account_properties_are_secure(plant7: Path, plant9: Path) -> None:
    """A managed or elevated install passes only secure public properties to the server side
    (U4): wixl ignores Secure, so the patch puts them into SecureCustomProperties, beside what
    wixl lists for the major upgrade; the donor property keeps wixl's own list."""
    props = {r["Property"]: r["Value"] for r in
             rows(plant7 / "SCADA01" / "SCADA01.msi", "Property")}
    assert props["SecureCustomProperties"].split(";") == [
        "WIX_DOWNGRADE_DETECTED", "WIX_UPGRADE_DETECTED", "DCOMC_ACCOUNT_1", "DCOMC_PASSWORD_1",
        "DCOMC_ACCOUNT_2", "DCOMC_PASSWORD_2"]
    assert props[SECURE_DONOR] == "WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED"
    without = {r["Property"]: r["Value"] for r in
               rows(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi", "Property")}
    assert without["SecureCustomProperties"] == "WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED"
    assert SECURE_DONOR not in without


def test_wixl_reads_a_copy_without_what_it_does_not_know(plant7: Path) -> None:
    """The .wxs says Win64 and Secure (for the WiX toolset and the reader); wixl 0.101 aborts
    on both (strict), so it reads a copy without them, plus the donor property, and the patch
    makes the MSI say the same. Win64 on anything but a JScript call cannot be patched."""
    wxs = (plant7 / "SCADA01" / "wix" / "SCADA01.wxs").read_bytes()
    # Prepare, Apply, CheckReboot; + the two searches and the detection key's component
    assert wxs.count(b'Win64="yes"') == 3 + 3 and wxs.count(b'Secure="yes"') == 4
    source = wixl_input(wxs)
    assert b"Secure=" not in source.data and source.data.count(b'Win64="yes"') == 3
    assert source.script_types == (("SetDcomcApply", 5, 0x1005), ("DcomcApply", 3077, 7173),
                                   ("DcomcCheckReboot", 5, 0x1005))
    assert source.secure is not None and source.secure[1].endswith(";DCOMC_PASSWORD_2")
    exe = wxs.replace(b'ExeCommand="-NoProfile', b'Win64="yes" ExeCommand="-NoProfile', 1)
    with pytest.raises(ValueError, match="only JScript calls"):
        wixl_input(exe)


def test_launch_conditions(plant7: Path) -> None:
    """Administrator; 64-bit Windows 8 / Server 2012 or later; Windows PowerShell 5.1 read from
    its engine key in the 64-bit view (m13); the computer the package is for, compared without
    case (M4); no site package on the PC (it writes the same detection key); each password."""
    path = plant7 / "HMI01" / "HMI01.msi"
    conditions = {r["Condition"]: r["Description"] for r in rows(path, "LaunchCondition")}
    assert set(conditions) == {
        "NOT WIX_DOWNGRADE_DETECTED", "Privileged", "VersionNT64 >= 602",
        'Installed OR DCOMC_POWERSHELL_VERSION << "5.1."', 'Installed OR ComputerName ~= "HMI01"',
        "Installed OR NOT DCOMC_SITE_PACKAGE_SPEC",
        "Installed OR DCOMC_PASSWORD_1", "Installed OR DCOMC_PASSWORD_2"}
    assert "HMI01" in conditions['Installed OR ComputerName ~= "HMI01"']
    assert "[ComputerName]" in conditions['Installed OR ComputerName ~= "HMI01"']
    assert "site package" in conditions["Installed OR NOT DCOMC_SITE_PACKAGE_SPEC"]
    searches = sorted(rows(path, "AppSearch"), key=lambda r: r["Property"])
    assert searches == [{"Property": "DCOMC_POWERSHELL_VERSION",
                         "Signature_": "DcomcPowerShellVersion"},
                        {"Property": "DCOMC_SITE_PACKAGE_SPEC",
                         "Signature_": "DcomcSpecSha256Found"}]
    locators = {r["Signature_"]: r for r in rows(path, "RegLocator")}
    assert locators["DcomcPowerShellVersion"] == {
        "Signature_": "DcomcPowerShellVersion", "Root": "2",  # HKLM
        "Key": "SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine",
        "Name": "PowerShellVersion", "Type": str(0x10 | 2)}  # 64-bit, raw
    assert locators["DcomcSpecSha256Found"] == {
        "Signature_": "DcomcSpecSha256Found", "Root": "2", "Key": "SOFTWARE\\dcomc\\plant7-line3",
        "Name": "SpecSha256", "Type": str(0x10 | 2)}
    sequence = {r["Action"]: int(r["Sequence"]) for r in
                rows(path, "InstallExecuteSequence")}
    assert sequence["AppSearch"] < sequence["LaunchConditions"] < sequence["InstallValidate"]


# Account names the WiX preprocessor would change (issue 17): wixl drops a `$` that is not
# followed by `$` or `(`, expands $(env.X), $(sys.X) and $(var.X) (an undefined one is an
# error); `!(loc.X)` is the WiX toolset's binder syntax. Windows accepts all of them as names.
PREPROCESSOR_NAMES = ("opcuser$", "$(env.HOME)", "$(var.X)", "!(loc.X)", "$(sys.CURRENTDIR)",
                      "a$$b{c}", "$$(env.HOME)")


def preprocessor_spec(tmp_path: Path) -> Path:
    """plant7 with its client user replaced by users named as above."""
    text = PLANT7.read_text(encoding="utf-8")
    block = text[text.index("    opcuser:\n"):text.index("    opcsvc:\n")]
    quoted = [f"'{name}'" for name in PREPROCESSOR_NAMES]
    text = text.replace(block, "".join(block.replace("opcuser", q) for q in quoted))
    text = text.replace("members: [opcuser, opcsvc]", f"members: [{', '.join(quoted)}, opcsvc]")
    text = text.replace("run_as: opcuser", f"run_as: {quoted[0]}")
    spec = tmp_path / "preprocessor.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def test_spec_values_reach_the_msi_literally(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Built with the real wixl and read back with msiinfo: each account is in the Property
    table (and the launch condition's message) exactly as the spec writes it, and the .wxs
    reader reads the same literal."""
    monkeypatch.setenv("HOME", "/home-of-the-build-machine")
    spec = preprocessor_spec(tmp_path)
    out = built(spec, tmp_path / "out")
    host = next(h for h in compile_file(spec).plan.hosts if h.name == "SCADA01")
    accounts = password_accounts(host)
    assert set(PREPROCESSOR_NAMES) < set(accounts)
    path = out / "SCADA01" / "SCADA01.msi"
    props = {r["Property"]: r["Value"] for r in rows(path, "Property")}
    assert [props[f"DCOMC_ACCOUNT_{n}"] for n in range(1, len(accounts) + 1)] == list(accounts)
    messages = {r["Condition"]: r["Description"] for r in rows(path, "LaunchCondition")}
    for n, account in enumerate(accounts, 1):
        assert f" {msi_formatted(account)} in DCOMC_PASSWORD_{n} " in messages[
            f"Installed OR DCOMC_PASSWORD_{n}"]
    raw = path.read_bytes().decode("latin-1")
    assert "home-of-the-build-machine" not in raw and str(out) not in raw  # env., sys.
    wxs = (out / "SCADA01" / "wix" / "SCADA01.wxs").read_bytes()
    assert WixTarget().read(wxs).accounts == accounts
    assert b'Value="opcuser$$"' in wxs  # escaped for the preprocessor, not defined
    assert re.search(rb'<\?define DcomcLiteral\d+ = "\$\(env\.HOME\)"\?>', wxs)


def test_a_site_name_with_dashes_makes_valid_comments(tmp_path: Path) -> None:
    """`---` is a valid site name; an XML comment may not hold `--` (it was a traceback), and
    the comment reads back as the name (quoting.xml_comment, not a lossy `- -`)."""
    spec = tmp_path / "dashes.yaml"
    spec.write_text(PLANT9.read_text(encoding="utf-8").replace(
        "name: plant9-utilities", "name: plant9---x"), encoding="utf-8")
    files = bundle.emit(compile_file(spec), Options(), spec.name).files
    product = files["UTIL-SRV1/wix/UTIL-SRV1.wxs"]
    assert b"plant9-~-~-x" in product and WixTarget().read(product).accounts == ()
    comments = [xml_uncomment(str(c.text)[1:-1]) for c in etree.fromstring(product)
                if isinstance(c, etree._Comment)]
    assert any(c.startswith("Site plant9---x, host UTIL-SRV1 ") for c in comments)


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


POWERSHELL_ENGINE = "HKLM\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine"


def wine_reg(env: dict[str, str], *args: str) -> None:
    # no pipes: the prefix's background processes (kept by the persistent wineserver) would
    # hold them open
    subprocess.run(["wine", "reg", *args, "/f"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, check=True)


@pytest.fixture
def wine(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh prefix that passes the launch conditions but the computer name (`computer`):
    Windows 10 (Wine 8 says Windows 7 by default) with Windows PowerShell 5.1 registered. Its
    wineserver stays up until the end: a new one resets the computer name to the host's."""
    require(shutil.which("wine") is not None, "wine")
    env = {**os.environ, "WINEPREFIX": str(tmp_path / "prefix"), "WINEDEBUG": "-all"}
    try:
        subprocess.run(["wine", "wineboot", "-i"], env=env, capture_output=True, timeout=300,
                       check=False)
        subprocess.run(["wineserver", "-w"], env=env, capture_output=True, timeout=300,
                       check=False)
        # it leaves a server in the background: no pipe of ours may stay open in it
        subprocess.run(["wineserver", "-p"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)
        wine_reg(env, "add", "HKCU\\Software\\Wine", "/v", "Version", "/d", "win10")
        wine_reg(env, "add", POWERSHELL_ENGINE, "/v", "PowerShellVersion", "/d", "5.1.19041.1",
                 "/reg:64")
        yield env
    finally:
        subprocess.run(["wineserver", "-k"], env=env, capture_output=True, check=False)


def computer(env: dict[str, str], name: str) -> None:
    """The prefix's computer name (the MSI's ComputerName) until its wineserver ends."""
    for key in ("ActiveComputerName", "ComputerName"):
        wine_reg(env, "add", f"HKLM\\System\\CurrentControlSet\\Control\\ComputerName\\{key}",
                 "/v", "ComputerName", "/d", name)


def msiexec(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run msiexec with process tracing; returns (exit code, traced command lines). The trace
    goes through a file, not a pipe (see wine_reg)."""
    traced = {**env, "WINEDEBUG": "+process"}
    with tempfile.TemporaryFile() as trace:
        proc = subprocess.run(["wine", "msiexec", *args], env=traced, stdout=subprocess.DEVNULL,
                              stderr=trace, timeout=300, check=False)
        trace.seek(0)
        text = trace.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if "CreateProcessInternalW" in line]
    return proc.returncode, "\n".join(lines)


def winpath(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


def installed_dir(env: dict[str, str], site: str) -> Path:
    return Path(env["WINEPREFIX"]) / "drive_c" / "Program Files" / "dcomc" / site


def test_wine_install_and_uninstall(wine: dict[str, str], plant9: Path) -> None:
    package = winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi")
    computer(wine, "util-srv1")  # compared without case
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
    computer(wine, "ANOTHER-PC")  # uninstall and its rollback do not depend on the name
    code, trace = msiexec(wine, "/x", package, "/qn")
    assert code == 0
    assert not target.exists() or not any(target.iterdir())
    assert any("-Mode Rollback" in line for line in trace.splitlines()), trace


def wine_values(env: dict[str, str], key: str) -> dict[str, str] | None:
    """The values of `key` (HKLM, 64-bit view) as `wine reg query` lists them; None when the
    key does not exist. Output through a file, not a pipe (see wine_reg)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run(["wine", "reg", "query", key, "/reg:64"], env=env, stdout=out,
                              stderr=subprocess.DEVNULL, timeout=120, check=False)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        return None
    found = re.findall(r"^\s+(\S+)\s+(REG_\w+)\s+(.*?)\s*$", text, re.MULTILINE)
    return {name: f"{kind} {data}" for name, kind, data in found}


def test_wine_detection_key(wine: dict[str, str], plant9: Path) -> None:
    """Installed, the site's key holds what the manifest says (and the MSI's version), and
    RebootRequired is the Apply's verdict (Wine's powershell.exe stub exits 0: no reboot),
    written over the table's 1; uninstalled, Windows Installer removes the values and the key,
    RebootRequired included."""
    key = "HKLM\\SOFTWARE\\dcomc\\plant9-utilities"
    package = winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi")
    computer(wine, "UTIL-SRV1")
    assert wine_values(wine, key) is None
    code, _ = msiexec(wine, "/i", package, "/qn")
    assert code == 0
    expected = {name: f"REG_SZ {value}" for name, value in
                detection_rows(plant9, "UTIL-SRV1").items() if name != "RebootRequired"}
    assert wine_values(wine, key) == {**expected, "RebootRequired": "REG_DWORD 0x0"}
    code, _ = msiexec(wine, "/x", package, "/qn")
    assert code == 0
    assert wine_values(wine, key) is None


def test_wine_detection_key_survives_a_major_upgrade(wine: dict[str, str], plant9: Path,
                                                     tmp_path: Path) -> None:
    """The newer version replaces the older one: the old product is removed first (its
    removal does not roll the PC back), then the new one installs its payload, writes the key
    and applies. (With wixl's own RemoveExistingProducts after InstallFinalize, the old
    product's removal deleted the new payload and key: folder and key were gone.)"""
    key = "HKLM\\SOFTWARE\\dcomc\\plant9-utilities"
    newer = built(PLANT9, tmp_path / "v2", version="1.1.0")
    computer(wine, "UTIL-SRV1")
    assert msiexec(wine, "/i", winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi"), "/qn")[0] == 0
    assert msiexec(wine, "/i", winpath(newer / "UTIL-SRV1" / "UTIL-SRV1.msi"), "/qn")[0] == 0
    values = wine_values(wine, key)
    assert values is not None and values["ProductVersion"] == "REG_SZ 1.1.0"
    assert values["RebootRequired"] == "REG_DWORD 0x0"
    target = installed_dir(wine, "plant9-utilities")
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in payload_files(
        "UTIL-SRV1"))
    code, trace = msiexec(wine, "/x", winpath(newer / "UTIL-SRV1" / "UTIL-SRV1.msi"), "/qn")
    assert code == 0 and "-Mode Rollback" in trace
    assert wine_values(wine, key) is None


def test_wine_refuses_another_computer(wine: dict[str, str], plant9: Path) -> None:
    """The MSI of UTIL-SRV1 installed on UTIL-HIST stops at its launch condition (M4)."""
    computer(wine, "UTIL-HIST")
    code, trace = msiexec(wine, "/i", winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi"), "/qn")
    assert code != 0
    assert not installed_dir(wine, "plant9-utilities").exists()
    assert "powershell.exe" not in trace


def test_wine_refuses_without_powershell_5_1(wine: dict[str, str], plant9: Path) -> None:
    computer(wine, "UTIL-SRV1")
    wine_reg(wine, "add", POWERSHELL_ENGINE, "/v", "PowerShellVersion", "/d", "5.0.10586.117",
             "/reg:64")
    code, _ = msiexec(wine, "/i", winpath(plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi"), "/qn")
    assert code != 0 and not installed_dir(wine, "plant9-utilities").exists()


def test_wine_unattended_without_password_changes_nothing(wine: dict[str, str],
                                                          plant7: Path) -> None:
    computer(wine, "SCADA01")
    code, trace = msiexec(wine, "/i", winpath(plant7 / "SCADA01" / "SCADA01.msi"), "/qn")
    assert code != 0  # the launch condition stops it
    assert not installed_dir(wine, "plant7-line3").exists()
    assert "powershell.exe" not in trace  # nothing ran


def test_wine_password_never_on_a_command_line(wine: dict[str, str], plant7: Path) -> None:
    package = winpath(plant7 / "SCADA01" / "SCADA01.msi")
    computer(wine, "SCADA01")
    _, trace = msiexec(wine, "/i", package, "/qn", f"DCOMC_PASSWORD_1={SECRET}",
                       f"DCOMC_PASSWORD_2={SECRET}")
    started = [line for line in trace.splitlines() if "powershell.exe" in line]
    assert any("-PasswordsFromStdin" in line for line in started), trace  # before the cut
    # Prepare and Apply ran: powershell.exe through 64-bit cmd.exe (the trace is cut before
    # the `2>&1`), with the paths Prepare encoded and Apply decoded
    assert any('system32\\\\cmd.exe\\" /d /v:off /s /c \\"\\"C:\\\\windows\\\\system32\\\\'
               'WindowsPowerShell' in line for line in started), trace
    # the only command line holding it is the msiexec call this test itself made
    own = [line for line in trace.splitlines() if "msiexec" in line.lower()]
    assert all(SECRET not in line for line in trace.splitlines() if line not in own)
    assert SECRET.encode() not in (plant7 / "SCADA01" / "SCADA01.msi").read_bytes()


# --- the JScript actions, executed (Node with stand-ins for Session and WScript.Shell) --------

APPLY_JS = ROOT / "templates" / "wix" / "dcomc-apply.js"
CMD = "C:\\Windows\\System32\\cmd.exe"
REG = "C:\\Windows\\System32\\reg.exe"
KEY = "HKLM\\SOFTWARE\\dcomc\\plant7-line3"
POWERSHELL = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
FOLDER = "C:\\Program Files\\dcomc\\plant7-line3\\"
PASSWORDS = {"opcsvc": "Gr\u00fc\u00dfe\u00a7\u20ac", "opcuser": "a\tb", "op\u00e9rateur": "x\ny",
             "svc2": SECRET + " \"'`$(x)%PATH%\r\n\U0001f600"}


def run_apply_js(function: str, properties: dict[str, str], exit_code: int = 0,
                 registry: dict[str, int] | None = None,
                 exec_shape: dict[str, object] | None = None) -> dict[str, object]:
    node = shutil.which("node")
    require(node is not None, "node")
    proc = subprocess.run([str(node), str(Path(__file__).with_name("run_apply_js.js")),
                           str(APPLY_JS), function, json.dumps(properties), str(exit_code)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "DCOMC_TEST_REGISTRY": json.dumps(registry or {}),
                               "DCOMC_TEST_EXEC": json.dumps(exec_shape or {})})
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def session(passwords: dict[str, str], folder: str = FOLDER) -> dict[str, str]:
    """The properties Prepare reads during an install of SCADA01 with these passwords."""
    props = {"System64Folder": "C:\\Windows\\System32\\", "POWERSHELLEXE": POWERSHELL,
             "DCOMC_INSTALLDIR": folder, "DcomcDataFile": "SCADA01.psd1",
             "DcomcBackupName": "msi", "DCOMC_PASSWORD_9": "not an account's",
             "DcomcRebootKey": "SOFTWARE\\dcomc\\plant7-line3"}
    for n, (account, password) in enumerate(passwords.items(), 1):
        props[f"DCOMC_ACCOUNT_{n}"] = account
        props[f"DCOMC_PASSWORD_{n}"] = password
    return props


def utf16_base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-16-le")).decode("ascii")


def prepare_and_apply(passwords: dict[str, str], exit_code: int = 0
                      ) -> tuple[dict[str, object], dict[str, object]]:
    prepared = run_apply_js("Prepare", session(passwords))
    data = prepared["set"]
    assert isinstance(data, dict) and list(data) == ["DcomcApply"]
    applied = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]}, exit_code)
    return prepared, applied


def test_prepare_encodes_every_field() -> None:
    """CustomActionData: TAB-separated fields, each Base64 of UTF-16LE: cmd.exe, powershell.exe,
    the entry script, the data file, the backup name, reg.exe, the site's key, the engine's
    extra switch (none in a host MSI), then account and password pairs. A TAB
    in a password cannot shift the pairs (m3)."""
    prepared = run_apply_js("Prepare", session(PASSWORDS))
    assert prepared["result"] == 1 and prepared["messages"] == []
    assert prepared["puts"] == 4  # the runner rewrote JScript's four property puts
    data = prepared["set"]
    assert isinstance(data, dict)
    fields = str(data["DcomcApply"]).split("\t")
    assert [base64.b64decode(f, validate=True).decode("utf-16-le") for f in fields] == [
        CMD, POWERSHELL, FOLDER + "Invoke-DcomConfig.ps1", FOLDER + "SCADA01.psd1", "msi", REG,
        KEY, "", *[x for pair in PASSWORDS.items() for x in pair]]
    assert all(utf16_base64(p) in fields for p in PASSWORDS.values())


def test_apply_js_passwords_survive_any_character() -> None:
    """Each standard-input line is Base64(UTF-16LE account) TAB Base64(UTF-16LE password) LF:
    whatever the account or password holds (TAB, newline, characters outside every code page)
    and whatever code page the pipe uses, it decodes to exactly what was given (m3, U1)."""
    _, applied = prepare_and_apply(PASSWORDS)
    assert applied["result"] == 1 and applied["closed"] is True
    lines = str(applied["stdin"]).split("\n")
    assert lines[-1] == "" and len(lines) == len(PASSWORDS) + 1
    received = {}
    for line in lines[:-1]:
        account, encoded = line.split("\t")
        assert account.isascii() and encoded.isascii()  # no code page can change them
        received[base64.b64decode(account, validate=True).decode("utf-16-le")] = (
            base64.b64decode(encoded, validate=True).decode("utf-16-le"))
    assert received == PASSWORDS
    command = str(applied["command"])
    for password in PASSWORDS.values():
        assert password not in command and utf16_base64(password) not in command


def test_apply_js_command_line_merges_standard_error() -> None:
    """The engine starts through 64-bit cmd.exe with `2>&1`: one pipe, read to its end (which
    blocks without using the processor), standard error never read on its own (m2)."""
    _, applied = prepare_and_apply({"opcsvc": SECRET})
    assert applied["command"] == (
        f'"{CMD}" /d /v:off /s /c ""{POWERSHELL}" -NoProfile -NonInteractive -ExecutionPolicy '
        f'Bypass -File "{FOLDER}Invoke-DcomConfig.ps1" -PasswordsFromStdin -Mode Apply '
        f'-DataFile "{FOLDER}SCADA01.psd1" -BackupName "msi" 2>&1'
        f'{reboot_tail(REG, KEY)}"')
    assert applied["stdoutReads"] == 1 and applied["stderrTouched"] is False
    assert applied["statusPolls"] == 1  # the process had ended when its output did


def test_apply_js_waits_for_the_engine_without_keeping_a_core_busy() -> None:
    """After the engine's output ended, its status is polled (it is exiting); where the output
    cannot be read, the engine may run for minutes: each poll then waits a second in PING.EXE
    (no WScript.Sleep in an MSI), hidden and to its end, instead of spinning a core."""
    prepared = run_apply_js("Prepare", session({"opcsvc": SECRET}))
    data = prepared["set"]
    assert isinstance(data, dict)
    ping = ['"C:\\Windows\\System32\\PING.EXE" -n 2 127.0.0.1', 0, True]
    stuck = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]},
                         exec_shape={"readThrows": True, "runningPolls": 3})
    assert stuck["result"] == 1
    assert stuck["runs"] == [ping] * 3 and stuck["statusPolls"] == 4
    ending = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]},
                          exec_shape={"runningPolls": 50})
    assert ending["result"] == 1 and ending["runs"] == [] and ending["statusPolls"] == 51
    failed = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]}, exit_code=5,
                          exec_shape={"readThrows": True, "runningPolls": 1})
    assert failed["result"] == 3 and failed["runs"] == [ping]
    no_ping = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]},
                           exec_shape={"readThrows": True, "runningPolls": 3, "runThrows": True})
    assert no_ping["result"] == 1 and no_ping["statusPolls"] == 4 and len(no_ping["runs"]) == 1


def test_apply_js_passes_the_site_packages_force_switch() -> None:
    """The site package sets DcomcForce to -Force when DCOMC_HOST named the host: the engine
    then takes a data file of another name; any other value is refused before any change."""
    props = {**session({"opcsvc": SECRET}), "DcomcForce": "-Force"}
    prepared = run_apply_js("Prepare", props)
    data = prepared["set"]
    assert isinstance(data, dict)
    applied = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]})
    assert applied["result"] == 1
    assert f'-DataFile "{FOLDER}SCADA01.psd1" -BackupName "msi" -Force 2>&1' in str(
        applied["command"])
    for value in ("-Force -Mode Rollback", "-WhatIf", "x"):
        refused = run_apply_js("Prepare", {**props, "DcomcForce": value})
        assert refused["result"] == 3 and refused["set"] == {}
        assert "only -Force or nothing" in str(refused["messages"])
    # a CustomActionData whose switch field was tampered with is refused by Apply too
    fields = str(data["DcomcApply"]).split("\t")
    fields[7] = utf16_base64("-Force & calc")
    tampered = run_apply_js("Apply", {"CustomActionData": "\t".join(fields)})
    assert tampered["result"] == 3 and tampered["command"] is None


def test_apply_js_paths_with_cmd_characters() -> None:
    """Inside the quotes, & | < > ^ ( ) ! are plain characters for cmd.exe: accepted. `%`
    (cmd expands %NAME% inside quotes too) and `"` are refused before anything changes."""
    folder = "C:\\R&D (x86)^!|<>\\dcomc\\site\\"
    prepared = run_apply_js("Prepare", session({"opcsvc": SECRET}, folder))
    assert prepared["result"] == 1
    data = prepared["set"]
    assert isinstance(data, dict)
    applied = run_apply_js("Apply", {"CustomActionData": data["DcomcApply"]})
    assert f'-File "{folder}Invoke-DcomConfig.ps1"' in str(applied["command"])
    for bad in ("C:\\%PATH%\\", 'C:\\a"b\\', "C:\\50%\\"):
        refused = run_apply_js("Prepare", session({"opcsvc": SECRET}, bad))
        assert refused["result"] == 3 and refused["set"] == {}
        messages = refused["messages"]
        assert isinstance(messages, list) and messages[0][0] == 0x01000000
        assert "DCOMC_INSTALLDIR" in messages[0][1]


def test_apply_js_skips_a_password_not_given() -> None:
    """A repair runs Apply without passwords (the launch conditions ask for them only when the
    product is not installed): no line for them, the engine needs none or fails itself."""
    _, applied = prepare_and_apply({"opcsvc": "", "opcuser": SECRET})
    assert applied["stdin"] == f"{utf16_base64('opcuser')}\t{utf16_base64(SECRET)}\n"


def test_apply_js_fails_the_install_when_the_engine_fails() -> None:
    _, applied = prepare_and_apply({"opcsvc": SECRET}, exit_code=2)
    assert applied["result"] == 3
    b64 = [utf16_base64(x) for x in (CMD, POWERSHELL, "e.ps1", "d.psd1", "msi", REG, KEY, "",
                                     "opcsvc")]
    good = "\t".join([*b64, utf16_base64(SECRET)])
    assert run_apply_js("Apply", {"CustomActionData": good})["result"] == 1
    for data in ("\t".join(b64[:7]),  # too short
                 "\t".join(b64),  # an account without its password
                 "\t".join([*b64[:8], "b3Bj", utf16_base64(SECRET)]),  # odd byte count
                 "\t".join([*b64, "not base64!"]),
                 "\t".join([utf16_base64("C:\\%x%\\cmd.exe"), *b64[1:], utf16_base64("x")])):
        refused = run_apply_js("Apply", {"CustomActionData": data})
        assert refused["result"] == 3 and refused["command"] is None


def test_check_reboot_reads_what_apply_recorded() -> None:
    """CheckReboot (immediate, after InstallFinalize) sets DCOMC_REBOOT_REQUIRED, the condition
    of ScheduleReboot, when the last Apply recorded RebootRequired = 1, and when it cannot read
    the value (a reboot too many rather than settings silently not in effect)."""
    props = {"DcomcRebootKey": "SOFTWARE\\dcomc\\plant7-line3", "REBOOT": "ReallySuppress"}
    value = KEY + "\\RebootRequired"
    needed = run_apply_js("CheckReboot", props, registry={value: 1})
    assert needed["regReads"] == [value] and needed["result"] == 1
    assert needed["set"] == {"DCOMC_REBOOT_REQUIRED": "1"}
    assert run_apply_js("CheckReboot", props, registry={value: 0})["set"] == {}
    unknown = run_apply_js("CheckReboot", props)
    assert unknown["set"] == {"DCOMC_REBOOT_REQUIRED": "1"} and unknown["result"] == 1
    messages = unknown["messages"]
    assert isinstance(messages, list) and messages[0][0] == 0x04000000  # info, not an error


def test_reboot_tables(plant9: Path) -> None:
    """Every MSI: REBOOT defaults to ReallySuppress (scheduled, never forced: msiexec returns
    3010), ScheduleReboot after InstallFinalize only when CheckReboot found a reboot needed;
    no ForceReboot anywhere."""
    path = plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi"
    props = {r["Property"]: r["Value"] for r in rows(path, "Property")}
    assert props["REBOOT"] == "ReallySuppress"
    assert props["DcomcRebootKey"] == "SOFTWARE\\dcomc\\plant9-utilities"
    table = {r["Action"]: (int(r["Sequence"]), r["Condition"]) for r in
             rows(path, "InstallExecuteSequence")}
    assert "ForceReboot" not in table
    assert table["InstallFinalize"][0] < table["DcomcCheckReboot"][0] < \
        table["ScheduleReboot"][0]
    assert table["ScheduleReboot"][1] == 'DCOMC_REBOOT_REQUIRED AND NOT REMOVE~="ALL"'
    assert table["DcomcCheckReboot"][1] == 'NOT REMOVE~="ALL"'
    assert {r["Name"] for r in rows(path, "Binary")} == {"DcomcApplyJs"}


def test_wine_cmd_maps_the_engine_exit_codes(wine: dict[str, str], tmp_path: Path) -> None:
    """The tail cmd.exe runs after the engine (both routes), under Wine's cmd.exe with the
    engine replaced by `cmd /c exit N`, the line in a batch file (no argv quoting between
    here and cmd.exe; `exit` without /b ends cmd.exe there too): 0 and 5 succeed and record
    RebootRequired 0 and 1; any other code, a negative one (a crash) too, fails and records
    nothing."""
    key = "HKLM\\SOFTWARE\\dcomc\\tail-test"
    batch = tmp_path / "tail.bat"
    for engine, code, recorded in ((0, 0, 0), (5, 0, 1), (1, 3, None), (2, 3, None),
                                   (4, 3, None), (6, 3, None), (-1073741819, 3, None)):
        subprocess.run(["wine", "reg", "delete", key, "/f"], env=wine, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120, check=False)
        batch.write_bytes((f"@cmd /c exit {engine}"
                           + reboot_tail("C:\\windows\\system32\\reg.exe", key)
                           + "\r\n").encode("ascii"))
        proc = subprocess.run(["wine", "cmd", "/d", "/c", winpath(batch)], env=wine,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                              check=False)
        assert proc.returncode == code, (engine, proc.returncode)
        query = subprocess.run(["wine", "reg", "query", key, "/v", "RebootRequired"], env=wine,
                               capture_output=True, text=True, timeout=120, check=False)
        found = re.search(r"RebootRequired\s+REG_DWORD\s+0x(\d+)", query.stdout)
        assert (int(found.group(1)) if found else None) == recorded, (engine, query.stdout)


def test_apply_js_is_plain_jscript() -> None:
    """The Windows Script Host runs JScript 5.8 (ECMAScript 3) from the MSI's Binary table as
    ANSI text: no later syntax or library function, ASCII only. Property puts are JScript's
    own syntax (the Node runner rewrites them)."""
    source = APPLY_JS.read_text(encoding="utf-8")
    assert source.isascii()
    code = re.sub(r"//[^\n]*", "", source)
    for later in (r"=>", r"\blet\b", r"\bconst\b", r"`", r"\.forEach\(", r"\.map\(",
                  r"\.filter\(", r"\.trim\(", r"\bJSON\b", r"\bbtoa\b", r"\batob\b",
                  r"\bclass\b", r"\.\.\.", r"\bObject\.keys\b", r"\bArray\.isArray\b"):
        assert re.search(later, code) is None, later
    assert sorted(re.findall(r"\b\w+(?:\.\w+)*\(([^()]*)\) = ", code)) == [
        '"DCOMC_REBOOT_REQUIRED"', '"DcomcApply"', "0", "0"]
    assert "WScript.Sleep" not in code and "StdErr" not in code


def test_without_wixl_the_msis_asked_for_fail_and_no_msi_builds_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dcomc.cli import main

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no wixl, no msitools
    out = tmp_path / "out"
    refused = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out)])
    assert refused.exit_code == 2, refused.output
    assert "error: wixl not found: install msitools/wixl or pass --no-msi" in refused.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), "--no-msi"])
    assert result.exit_code == 0, result.output
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
    assert result.exit_code == 0 and "wixl" not in result.output
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
