"""The site package (`dcomc build --site-msi`, wixsite.py): one MSI for every PC of a site.

Read back three ways: the .wxs by wixsite's reader against the plan, the MSI's tables with
msitools, and installs with Wine's msiexec on prefixes named like each host (and like no
host). Wine's powershell.exe is a stub that exits 0, and its WshExec cannot report an exit
code (test_msi.py says more): the engine itself is run on the simulated Windows by the Pester
suite; here what Windows Installer does is observed — which host was chosen (the traced
command line names its data file, the detection key its host), what is installed, what stops
before any change.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from stub_exe import exit_code_exe
from test_msi import (  # the Wine prefix and its helpers: one definition for both suites
    PLANT7,
    PLANT9,
    SECRET,
    built,
    computer,
    installed_dir,
    msiexec,
    rows,
    wine,
    wine_values,
    winpath,
)

from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc.readback.manifest import read_manifest, tampered
from dcomc_targets import EmitContext, Options, wixsite
from dcomc_targets.wix import password_accounts

__all__ = ["wine"]  # a fixture, used by name
ROOT = Path(__file__).resolve().parents[2]


def site_built(spec: Path, out: Path) -> Path:
    return built(spec, out, site_package=True)


@pytest.fixture(scope="module")
def site7(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return site_built(PLANT7, tmp_path_factory.mktemp("site") / "plant7")


@pytest.fixture(scope="module")
def site9(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return site_built(PLANT9, tmp_path_factory.mktemp("site") / "plant9")


def package(out: Path) -> Path:
    site = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["site"]
    return out / wixsite.paths(site)[2]


# --- the .wxs and the MSI's tables --------------------------------------------------------------


@pytest.mark.parametrize("spec", [PLANT7, PLANT9], ids=["plant7", "plant9"])
def test_reader_gives_back_the_plan(spec: Path) -> None:
    compiled = compile_file(spec)
    ctx = EmitContext(compiled.plan, Options(site_package=True), spec.name, compiled.sha256)
    files = wixsite.emit(compiled.plan, ctx)
    content = wixsite.read(files[wixsite.paths(compiled.plan.site)[0]])
    assert content == wixsite.expected(compiled.plan, ctx)
    assert content.hosts == tuple(h.name for h in compiled.plan.hosts)
    assert {name for name, _ in content.files} == {
        "DcomConfig.psm1", "Invoke-DcomConfig.ps1",
        *(f"{h.name}.psd1" for h in compiled.plan.hosts)}


def test_every_host_data_file_is_in_the_msi(site9: Path) -> None:
    table = rows(package(site9), "File")
    sizes = {r["FileName"]: int(r["FileSize"]) for r in table}
    for host in ("ENG-WS1", "UTIL-HIST", "UTIL-SRV1"):
        assert sizes[f"{host}.psd1"] == (site9 / host / "powershell" / f"{host}.psd1").stat(
        ).st_size
    assert sizes["DcomConfig.psm1"] == (site9 / "ENG-WS1/powershell/DcomConfig.psm1").stat(
    ).st_size


def test_choice_runs_before_the_launch_conditions_in_both_sequences(site9: Path) -> None:
    """The type 51 actions that choose the host sit between AppSearch (which reads the
    recorded host) and LaunchConditions, in the UI sequence too: a full-UI install evaluates
    the conditions there first."""
    for table in ("InstallUISequence", "InstallExecuteSequence"):
        numbers = {r["Action"]: (int(r["Sequence"]), r["Condition"])
                   for r in rows(package(site9), table)}
        assert numbers["AppSearch"][0] < numbers["DcomcWantHost"][0] < \
            numbers["DcomcHost1"][0] < numbers["DcomcSetDataFile"][0] < \
            numbers["LaunchConditions"][0]
        assert numbers["DcomcHost2"] == (60, 'DcomcWanted ~= "UTIL-HIST"')
    actions = {r["Action"]: r for r in rows(package(site9), "CustomAction")}
    assert actions["DcomcSetDataFile"]["Target"] == "[DcomcHost].psd1"
    # a host named by DCOMC_HOST is applied with -Force (the engine refuses a data file of
    # another name otherwise); both routes pass it, the EXE one on its command line
    assert (actions["DcomcForceHost"]["Source"], actions["DcomcForceHost"]["Target"]) == (
        "DcomcForce", "-Force")
    assert numbers["DcomcForceHost"][1] == "DCOMC_HOST"
    assert '-BackupName msi [DcomcForce] & if' in actions["DcomcApplyExe"]["Target"]
    assert "[DcomcForce]" not in actions["DcomcApplyRollback"]["Target"]
    assert actions["DcomcAccounts2"]["Target"] == ";1;"  # UTIL-HIST: its service account


def test_launch_conditions_and_secure_host_property(site9: Path) -> None:
    conditions = {r["Condition"]: r["Description"]
                  for r in rows(package(site9), "LaunchCondition")}
    assert "Installed OR DcomcHost" in conditions
    assert "[ComputerName]" in conditions["Installed OR DcomcHost"]
    needs = 'Installed OR NOT (DcomcAccounts >< ";1;") OR DCOMC_PASSWORD_1'
    assert "PLANT9\\svc-opc" in conditions[needs]
    props = {r["Property"]: r["Value"] for r in rows(package(site9), "Property")}
    assert props["SecureCustomProperties"].split(";") == [
        "WIX_DOWNGRADE_DETECTED", "WIX_UPGRADE_DETECTED", "DCOMC_HOST", "DCOMC_ACCOUNT_1",
        "DCOMC_PASSWORD_1"]
    assert "DCOMC_PASSWORD_1" in props["MsiHiddenProperties"].split(";")


def test_accounts_are_the_union_of_the_hosts(site7: Path) -> None:
    plan = compile_file(PLANT7).plan
    accounts = wixsite.site_accounts(plan)
    assert set(accounts) == {a for h in plan.hosts for a in password_accounts(h)}
    props = {r["Property"]: r["Value"] for r in rows(package(site7), "Property")}
    assert [props[f"DCOMC_ACCOUNT_{n}"] for n in range(1, len(accounts) + 1)] == list(accounts)
    assert f"DCOMC_ACCOUNT_{len(accounts) + 1}" not in props


def test_manifest_lists_the_package_and_readers_check_it(site9: Path, tmp_path: Path) -> None:
    manifest = read_manifest(site9)
    site = manifest.site
    wxs, script, msi_path = wixsite.paths(site)
    assert {wxs, script, msi_path} <= set(manifest.listed)
    assert tampered(site9, manifest) == ()
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(site9), str(copy)], check=True)
    with (copy / msi_path).open("r+b") as f:
        f.seek(4096)
        f.write(b"\0")
    assert (msi_path, "edited") in tampered(copy, read_manifest(copy))


def test_review_lists_the_package_with_its_hash(site9: Path) -> None:
    entry = {a["path"]: a for a in json.loads((site9 / "manifest.json").read_text())[
        "site_package"]}[wixsite.paths("plant9-utilities")[2]]
    for report in ("review.html", "REVIEW.md"):
        text = (site9 / report).read_text(encoding="utf-8")
        assert entry["sha256"] in text and "_site/plant9-utilities.msi" in text


def test_byte_identical_rebuild(site9: Path, tmp_path: Path) -> None:
    again = site_built(PLANT9, tmp_path / "again")
    assert package(again).read_bytes() == package(site9).read_bytes()


def test_without_the_option_no_package(tmp_path: Path) -> None:
    compiled = compile_file(PLANT9)
    result = bundle.emit(compiled, Options(), PLANT9.name)
    assert "site_package" not in result.manifest
    assert not any(p.startswith(wixsite.FOLDER + "/") for p in result.files)


def test_build_warns_when_the_package_needs_passwords(tmp_path: Path) -> None:
    proc = subprocess.run(["dcomc", "build", str(PLANT9), "-o", str(tmp_path / "b"),
                           "--no-msi", "--site-msi"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "W440" in ln)
    assert line.startswith("examples/plant9-domain.yaml:") or "plant9-domain.yaml:" in line
    assert "UTIL-HIST" in line and "ENG-WS1" not in line
    assert (tmp_path / "b" / wixsite.paths("plant9-utilities")[0]).is_file()
    assert not (tmp_path / "b" / wixsite.paths("plant9-utilities")[2]).exists()  # --no-msi


# --- Wine's msiexec -----------------------------------------------------------------------------


KEY9 = "HKLM\\SOFTWARE\\dcomc\\plant9-utilities"
# ERROR_INSTALL_FAILURE as a Linux process sees msiexec's exit code (its low 8 bits)
FAILED = 1603 & 0xFF


def data_file_named(trace: str, host: str) -> bool:
    return any(f"\\\\{host}.psd1\\\"" in line for line in trace.splitlines()
               if "powershell.exe" in line)


@pytest.mark.parametrize("host", ["ENG-WS1", "UTIL-SRV1"])
def test_wine_applies_the_plan_of_the_pc(wine: dict[str, str], site9: Path, host: str) -> None:
    """On a PC named like a host (in another case), the package applies that host's data file
    and records the host in the detection key; uninstall rolls the same host back."""
    computer(wine, host.lower())
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == 0, trace
    assert data_file_named(trace, host), trace
    assert "-Mode Apply" in trace
    target = installed_dir(wine, "plant9-utilities")
    assert (target / f"{host}.psd1").read_bytes() == (
        site9 / host / "powershell" / f"{host}.psd1").read_bytes()
    values = wine_values(wine, KEY9)
    manifest = json.loads((site9 / "manifest.json").read_text(encoding="utf-8"))
    assert values == {"Site": "REG_SZ plant9-utilities", "Host": f"REG_SZ {host}",
                      "ProductVersion": "REG_SZ 1.0.0",
                      "InputsSha256": f"REG_SZ {manifest['hosts'][host]['inputs']}",
                      "SpecSha256": f"REG_SZ {manifest['spec']['sha256']}",
                      "Generator": f"REG_SZ dcomc {manifest['dcomc']}",
                      "RebootRequired": "REG_DWORD 0x0"}
    computer(wine, "RENAMED-PC")  # uninstall: the recorded host, whatever the PC is now called
    code, trace = msiexec(wine, "/x", winpath(package(site9)), "/qn")
    assert code == 0
    assert "-Mode Rollback" in trace and data_file_named(trace, host), trace
    assert wine_values(wine, KEY9) is None


def test_wine_stops_on_a_pc_of_another_site(wine: dict[str, str], site9: Path) -> None:
    computer(wine, "HMI01")  # a host of plant7, not of plant9
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == FAILED
    assert not installed_dir(wine, "plant9-utilities").exists()
    assert "powershell.exe" not in trace and wine_values(wine, KEY9) is None


def test_wine_host_named_explicitly(wine: dict[str, str], site9: Path) -> None:
    """Imaging: DCOMC_HOST names the host on a PC that has another name (compared without
    case, and recorded as the spec writes it)."""
    computer(wine, "GOLDEN-IMAGE")
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn", "DCOMC_HOST=eng-ws1")
    assert code == 0 and data_file_named(trace, "ENG-WS1"), trace
    values = wine_values(wine, KEY9)
    assert values is not None and values["Host"] == "REG_SZ ENG-WS1"
    code, _ = msiexec(wine, "/x", winpath(package(site9)), "/qn")
    assert code == 0


def test_wine_one_kind_of_package_per_pc(wine: dict[str, str], site9: Path) -> None:
    """A host's own MSI and the site package write the same detection key, and removing one
    would remove the values of both: each stops at its launch condition, before any change,
    while the other is installed, and installs once it is removed."""
    computer(wine, "ENG-WS1")
    own = winpath(site9 / "ENG-WS1" / "ENG-WS1.msi")
    code, trace = msiexec(wine, "/i", own, "/qn")
    assert code == 0, trace
    before = wine_values(wine, KEY9)
    assert before is not None and "SpecSha256" not in before
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == FAILED and "powershell.exe" not in trace
    assert wine_values(wine, KEY9) == before
    assert msiexec(wine, "/x", own, "/qn")[0] == 0
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == 0, trace
    site_values = wine_values(wine, KEY9)
    assert site_values is not None and "SpecSha256" in site_values
    code, trace = msiexec(wine, "/i", own, "/qn")
    assert code == FAILED and "powershell.exe" not in trace
    assert wine_values(wine, KEY9) == site_values
    assert msiexec(wine, "/x", winpath(package(site9)), "/qn")[0] == 0
    assert wine_values(wine, KEY9) is None


def test_wine_unknown_explicit_host_stops(wine: dict[str, str], site9: Path) -> None:
    computer(wine, "UTIL-SRV1")  # a host, but the property names none: the property wins
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn", "DCOMC_HOST=NOPE")
    assert code == FAILED and "powershell.exe" not in trace
    assert not installed_dir(wine, "plant9-utilities").exists()


def test_wine_password_asked_only_where_needed(wine: dict[str, str], site9: Path) -> None:
    """UTIL-HIST's service runs as a domain account: without its password the package stops
    at the launch condition there, before anything changes; with it, the password goes to
    the engine's standard input, never a command line."""
    computer(wine, "UTIL-HIST")
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == FAILED and "powershell.exe" not in trace
    assert not installed_dir(wine, "plant9-utilities").exists()
    _, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn",
                       f"DCOMC_PASSWORD_1={SECRET}")
    started = [line for line in trace.splitlines() if "powershell.exe" in line]
    assert any("-PasswordsFromStdin" in line for line in started), trace
    own = [line for line in trace.splitlines() if "msiexec" in line.lower()]
    assert all(SECRET not in line for line in trace.splitlines() if line not in own)
    assert SECRET.encode() not in package(site9).read_bytes()


def engine_exits_with(env: dict[str, str], code: int) -> None:
    """Replace the prefix's powershell.exe (Wine's stub: always 0) with a program that exits
    with `code`, as the engine would."""
    path = (Path(env["WINEPREFIX"]) / "drive_c" / "windows" / "system32" / "WindowsPowerShell"
            / "v1.0" / "powershell.exe")
    path.write_bytes(exit_code_exe(code))


REBOOT_REQUIRED = 3010 & 0xFF  # ERROR_SUCCESS_REBOOT_REQUIRED, as Linux sees the exit code


def test_wine_engine_exit_5_makes_the_install_return_3010(wine: dict[str, str],
                                                          site9: Path) -> None:
    """The engine says "applied, reboot required" (5): cmd.exe's tail records it, CheckReboot
    reads it, ScheduleReboot runs, and msiexec returns 3010 without rebooting (REBOOT is
    ReallySuppress); the package stays installed."""
    computer(wine, "UTIL-SRV1")
    engine_exits_with(wine, 5)
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    assert code == REBOOT_REQUIRED, trace
    values = wine_values(wine, KEY9)
    assert values is not None and values["RebootRequired"] == "REG_DWORD 0x1"
    assert (installed_dir(wine, "plant9-utilities") / "UTIL-SRV1.psd1").is_file()
    engine_exits_with(wine, 0)
    code, _ = msiexec(wine, "/x", winpath(package(site9)), "/qn")
    assert code == 0 and wine_values(wine, KEY9) is None


@pytest.mark.parametrize("engine", [2, 3, 4, 1, 6])
def test_wine_engine_failure_fails_the_install_and_rolls_it_back(
        wine: dict[str, str], site9: Path, engine: int) -> None:
    """Any other engine exit code fails the install (1603) and Windows Installer rolls it back:
    no payload, no detection key (its rollback action runs the engine's Rollback)."""
    computer(wine, "ENG-WS1")
    engine_exits_with(wine, engine)
    code, trace = msiexec(wine, "/i", winpath(package(site9)), "/qn")
    # Windows Installer ends a failed deferred action with 1603; Wine's msiexec says 1627
    # (ERROR_FUNCTION_FAILED) for the same rollback
    assert code in (FAILED, 1627 & 0xFF), trace
    assert "-Mode Rollback" in trace
    assert not installed_dir(wine, "plant9-utilities").exists()
    assert wine_values(wine, KEY9) is None


HOSTS = [("plant7", "HMI01"), ("plant7", "HMI02"), ("plant7", "SCADA01"),
         ("plant9", "ENG-WS1"), ("plant9", "UTIL-HIST"), ("plant9", "UTIL-SRV1")]


@pytest.mark.parametrize(("example", "host"), HOSTS, ids=[h for _, h in HOSTS])
def test_wine_every_host_of_both_examples_gets_its_own_plan(
        wine: dict[str, str], site7: Path, site9: Path, example: str, host: str) -> None:
    """The one package of each example, installed on a PC named like each of its hosts, runs
    the engine on that host's data file (the traced command line names it), with the
    passwords the host needs given; hosts without passwords install (exit 0). Hosts with
    passwords go through the JScript action, whose WshExec exit code Wine does not report:
    there the started command line is what is observed."""
    out = site7 if example == "plant7" else site9
    computer(wine, host)
    plan = compile_file(PLANT7 if example == "plant7" else PLANT9).plan
    accounts = wixsite.site_accounts(plan)
    needs = password_accounts(next(h for h in plan.hosts if h.name == host))
    given = [f"DCOMC_PASSWORD_{n}={SECRET}" for n, a in enumerate(accounts, 1) if a in needs]
    code, trace = msiexec(wine, "/i", winpath(package(out)), "/qn", *given)
    assert data_file_named(trace, host), trace
    others = [h.name for h in plan.hosts if h.name != host]
    assert not any(data_file_named(trace, other) for other in others)
    if not needs:
        assert code == 0
