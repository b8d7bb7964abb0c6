"""`dcomc import` (issue 16 items 2 and 3) and the capture format's reader (docs/capture.md).

The shipped captures of examples/captures/ are what the real engine writes: the example
plant7-workgroup is built, tests/engine/make-sample-captures.ps1 applies each host's bundle to
a fresh simulated PC and runs `-Mode Capture`, and every shipped file must equal its output
(but `Time`, the simulated clock). Importing them must give a spec that passes `check`, and
the round trip must hold (test_the_round_trip_gives_back_everything_dcomc_manages): the
imported spec, built and applied by the same script to fresh simulated PCs with the same
vendor software, gives captures equal to the shipped ones in everything dcomc manages
(dcomc.readback.capture.managed: accounts and memberships, user rights, AppID values and ACLs
by what their SIDs mean, service logons, machine values and limits, Lsa options, firewall rules
by what they open, network discovery). What it does not manage is never compared
(capture.UNMANAGED): the capture's own fields, the computer, the localized names, the servers'
identity (the vendor's installer writes it), AppID Name/LocalService/..., service states,
machine default ACLs, Group Policy limits, built-in accounts, firewall rule names. Where the
spec reads differently from the original (same PCs, other words):
  * names: the site is `imported-site`, the server key is the catalog's (`kepserverex-v6`,
    not `kepware`), the client key is its executable's name (`hmi`), so the firewall rules
    have other names;
  * OPC Users is written as found on SCADA01 only (the flows put it there alone);
  * AppID ACLs are `permissions: add` with what the PC grants beyond Windows' default ACLs
    (OPC Users): the original's words exactly;
  * machine limits are role blocks with what the PCs grant beyond Windows' default limits;
    EveryoneIncludesAnonymous = 1 is a per-host setting of the HMIs;
  * client run_as is a guess (no capture can see who runs a program), firewall remote scopes
    are dcomc's `site` again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle
from dcomc.front.catalog import Product, product
from dcomc.front.importer import import_text
from dcomc.front.load import load_data
from dcomc.pipeline import compile_file
from dcomc.readback.capture import (
    Capture,
    load_capture,
    managed,
    managed_differences,
    parse_capture,
)
from dcomc.readback.compare import InputError
from dcomc.windows.sd import parse_sddl
from dcomc.windows.sdbinary import to_binary
from dcomc_targets import Options
from dcomc_targets.regfile import DEFAULT_LIMITS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_pester import pwsh

from tools import require

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "plant7-workgroup.yaml"
SHIPPED = ROOT / "examples" / "captures"
SCRIPT = ROOT / "tests" / "engine" / "make-sample-captures.ps1"
REGENERATE = (f"dcomc build {SPEC.relative_to(ROOT)} -o /tmp/b --no-msi && pwsh -NoProfile "
              f"-File {SCRIPT.relative_to(ROOT)} -Bundle /tmp/b -OutDir "
              f"{SHIPPED.relative_to(ROOT)}")


def _shipped() -> list[Capture]:
    return [load_capture(path) for path in sorted(SHIPPED.glob("*.json"))]


def _imported(tmp_path: Path, captures: list[Capture]) -> Path:
    path = tmp_path / "imported.yaml"
    path.write_text(import_text(captures), encoding="utf-8")
    return path


def _vendor(tmp_path: Path, spec: Path) -> Path:
    """The vendor software of `spec`'s servers (make-sample-captures.ps1 -Vendor): each
    server's CLSID, executable and service, from the catalog for a product. The same file is
    given for the imported spec: fresh PCs with the same vendor software."""
    entries = []
    for server in compile_file(spec).spec.servers.values():
        known = product(server.product) if server.product else None
        entries.append({"Clsid": known.clsid if known else server.clsid,
                        "Executable": known.executable if known else server.executable,
                        "Service": known.service if known else server.service})
    path = tmp_path / f"{spec.stem}-vendor.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def _engine_captures(tmp_path: Path, spec: Path, vendor: Path | None = None,
                     domain: str = "") -> Path:
    """The captures make-sample-captures.ps1 writes for `spec`'s bundle on fresh simulated
    PCs (the real engine: Apply, then Capture), joined to `domain` when given."""
    exe = pwsh()
    require(exe is not None, "PowerShell 7 (pwsh)")
    assert exe is not None
    built, out = tmp_path / f"{spec.stem}-bundle", tmp_path / f"{spec.stem}-captures"
    bundle.build(compile_file(spec), Options(), spec.name, built)
    extra = (["-Vendor", str(vendor)] if vendor else []) + (["-Domain", domain] if domain else [])
    run = subprocess.run([exe, "-NoProfile", "-NonInteractive", "-File", str(SCRIPT), "-Bundle",
                          str(built), "-OutDir", str(out), *extra], capture_output=True,
                         text=True, env=dict(os.environ, DCOMC_WORK=str(tmp_path)),
                         timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return out


def _round_trip(tmp_path: Path, spec: Path, domain: str = "") -> tuple[list[Capture], Path]:
    """`spec` built and applied to fresh PCs, captured (A); A imported, built, applied to
    other fresh PCs with the same vendor software, captured (B): A and B's folder."""
    vendor = _vendor(tmp_path, spec)
    first = tmp_path / "first"
    first.mkdir()
    originals = [load_capture(p) for p in
                 sorted(_engine_captures(first, spec, vendor, domain).glob("*.json"))]
    imported = _imported(tmp_path, originals)
    assert not [d for d in compile_file(imported).diagnostics if "error" in str(d)]
    return originals, _engine_captures(tmp_path, imported, vendor, domain)


def test_shipped_captures_are_the_engines_output(tmp_path: Path) -> None:
    out = _engine_captures(tmp_path, SPEC)
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == sorted(p.name for p in SHIPPED.glob("*.json")) == [
        "HMI01.json", "HMI02.json", "SCADA01.json"], f"regenerate: {REGENERATE}"
    for name in names:
        got = json.loads((out / name).read_text(encoding="utf-8"))
        shipped = json.loads((SHIPPED / name).read_text(encoding="utf-8"))
        got.pop("Time")
        assert shipped.pop("Time").startswith("2026-03-02T07:0")
        assert got == shipped, f"{name} differs from the engine's output; regenerate: {REGENERATE}"


def test_the_round_trip_gives_back_everything_dcomc_manages(tmp_path: Path) -> None:
    """Capture A (shipped) -> import -> build -> Apply on fresh simulated PCs -> capture B:
    A and B agree on every managed part; the rule names (not managed) do differ."""
    out = _engine_captures(tmp_path, _imported(tmp_path, _shipped()))
    for original in _shipped():
        again = load_capture(out / original.path.name)
        assert managed_differences(original, again) == []
        assert managed(again)["firewall"] and managed(again)["accounts"]
        assert bool(managed(again)["appids"]) == (original.computer == "SCADA01")
        rules = [r["Name"] for r in again.part("Firewall")["Rules"]]
        assert all(name.startswith("dcomc-imported-site-") for name in rules)


def test_the_domain_examples_round_trip_holds(tmp_path: Path) -> None:
    """plant9-domain (domain accounts by SID, a server outside the catalog, a client inside
    a service, a host with its own firewall scope and profiles): its captures, imported,
    built and applied to other fresh PCs, are captured equal in everything dcomc manages."""
    originals, again = _round_trip(tmp_path, ROOT / "examples" / "plant9-domain.yaml",
                                   "plant9.local")
    assert [c.computer for c in originals] == ["ENG-WS1", "UTIL-HIST", "UTIL-SRV1"]
    for original in originals:
        assert managed_differences(original, load_capture(again / original.path.name)) == []
    text = (tmp_path / "imported.yaml").read_text(encoding="utf-8")
    assert "identity: domain" in text and "domain: PLANT9" in text
    assert "sid: S-1-5-21-1004336348-1177238915-682003330-1105" in text   # svc-opc's, found
    assert "service: 'KEPServerEXV6'\n    run_as: 'PLANT9\\svc-opc'" in text
    assert "remote: ['10.9.0.0/24']" in text and "profiles: [domain]" in text
    assert "'Administrators': [local_launch, local_activation]" in text   # OPCEnum shows it


def test_import_of_the_shipped_captures_passes_check(tmp_path: Path) -> None:
    compiled = compile_file(_imported(tmp_path, _shipped()))
    assert sorted(h.name for h in compiled.plan.hosts) == ["HMI01", "HMI02", "SCADA01"]
    assert not [d for d in compiled.diagnostics if "error" in str(d)]


def _ids(compiled: Any, host: str) -> set[str]:
    plan = next(h for h in compiled.plan.hosts if h.name == host)
    return {r.id for r in plan.resources}


def test_round_trip_keeps_what_a_capture_sees(tmp_path: Path) -> None:
    """Build, Apply on the simulated PC, Capture, import: the plan of the imported spec has
    the original's accounts, memberships, service identity, firewall openings and security
    options on every host, with the renamed keys the module docstring lists."""
    original = compile_file(SPEC)
    imported = compile_file(_imported(tmp_path, _shipped()))
    rename = {"plant7-line3": "imported-site", "server-kepware": "server-kepserverex-v6",
              ":kepware": ":kepserverex-v6"}
    for host in ("SCADA01", "HMI01", "HMI02"):
        want = set()
        for rid in _ids(original, host):
            for old, new in rename.items():
                rid = rid.replace(old, new)
            want.add(rid)
        kinds = ("local_user:", "service_logon:", "user_right:", "firewall_rule:",
                 "security_option:", "machine_dcom_value:")
        got = _ids(imported, host)
        assert {r for r in want if r.startswith(kinds)} <= got, host
    text = _imported(tmp_path, _shipped()).read_text(encoding="utf-8")
    assert "product: kepserverex-v6" in text and "service_account: 'opcsvc'" in text
    assert "'OPC Users': [local_launch, remote_launch, local_activation, remote_activation]" in text
    assert "members: ['opcsvc', 'opcuser']" in text


def _capture(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SHIPPED / "SCADA01.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def test_a_brownfield_server_outside_the_catalog_keeps_its_identifiers(tmp_path: Path) -> None:
    data = _capture()
    server = data["Servers"][0]
    server.update(Clsid="{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}", ProgId="Vendor.Mill.2",
                  Bitness=64, Executable=r"C:\Program Files\Mill\mill.exe")
    server["AppIdKey"]["AuthenticationLevel"] = 2
    text = import_text([parse_capture(data, tmp_path / "x.json")])
    assert "progid: 'Vendor.Mill.2'" in text and "bitness: 64" in text
    assert "AuthenticationLevel 2 (connect)" in text and "KB5004442" in text
    path = tmp_path / "mill.yaml"
    path.write_text(text, encoding="utf-8")
    assert [h.name for h in compile_file(path).plan.hosts] == ["SCADA01"]


def _descriptor(data: dict[str, Any], sddl: str) -> dict[str, Any]:
    """A captured descriptor value for `sddl`, as the engine writes one."""
    return {"Exists": True, "Type": "Binary", "Data": to_binary(parse_sddl(sddl)).hex(),
            "Sddl": sddl}


def test_acls_holding_windows_default_are_added_to_it_others_exact(tmp_path: Path) -> None:
    text = import_text(_shipped())
    assert "permissions: exact" not in text and "'S-1-5-10'" not in text
    assert "# permissions: add (the default)" in text
    data = _capture()
    appid = data["Servers"][0]["AppIdKey"]
    appid["AccessPermission"] = _descriptor(data, "O:BAG:BAD:(A;;CCDCLC;;;PS)(A;;CCDCLC;;;BU)")
    text = import_text([parse_capture(data, tmp_path / "x.json")])
    assert "permissions: exact" in text
    assert "'S-1-5-10': [local_access, remote_access]   # not resolved on SCADA01" in text
    assert "'SYSTEM': [local_launch, remote_launch, local_activation, remote_activation]" in text


def test_machine_limits_beyond_windows_default_are_role_blocks(tmp_path: Path) -> None:
    text = import_text(_shipped())
    roles = text[text.index("\nmachine:"):]
    assert ("  server:\n    dcom:\n      launch_limits:\n        'OPC Users': [local_launch, "
            "remote_launch, local_activation, remote_activation]\n      access_limits:\n"
            "        'ANONYMOUS LOGON': [local_access, remote_access]") in roles
    assert "  client:\n    dcom:\n      launch_limits: {}" in roles
    hmi = json.loads((SHIPPED / "HMI02.json").read_text(encoding="utf-8"))
    hmi["Machine"]["Ole"]["MachineLaunchRestriction"] = _descriptor(
        hmi, DEFAULT_LIMITS["launch"] + "(A;;CCDCLCSWRP;;;BU)")
    captures = [*_shipped()[:1], parse_capture(hmi, tmp_path / "HMI02.json"), _shipped()[2]]
    text = import_text(captures)
    host = text[text.index("  HMI02:"):text.index("  SCADA01:")]
    assert "      dcom:\n        launch_limits:\n          'Users': [local_launch" in host
    assert "access_limits" not in host   # as the client role block gives it
    path = tmp_path / "limits.yaml"
    path.write_text(text, encoding="utf-8")
    assert "error" not in " ".join(map(str, compile_file(path).diagnostics))


SID = "S-1-5-21-3623811015-3361044348-30300820-"


def _swap_rids(text: str) -> str:
    """A PC where opcsvc and opcuser were created in the other order."""
    return text.replace(SID + "1000", "@").replace(SID + "1001", SID + "1000").replace(
        "@", SID + "1001")


def _mutated(change: Any) -> Capture:
    data = json.loads((SHIPPED / "SCADA01.json").read_text(encoding="utf-8"))
    change(data)
    return parse_capture(data, SHIPPED / "B.json")


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item.get("Name") == name)


MUTATIONS = {
    "appids: {7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729} (Registry32) AppID": lambda d: d[
        "Servers"][0]["AppIdKey"].update(LaunchPermission=d["Machine"]["Ole"][
            "DefaultLaunchPermission"]),
    "appids: {7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729} (Registry32) service logon": lambda d: d[
        "Servers"][0]["Service"].update(StartName="LocalSystem"),
    "machine: Ole MachineAccessRestriction": lambda d: d["Machine"]["Ole"].update(
        MachineAccessRestriction=d["Machine"]["Ole"]["MachineLaunchRestriction"]),
    "machine: Ole LegacyAuthenticationLevel": lambda d: d["Machine"]["Ole"][
        "LegacyAuthenticationLevel"].update(Data=2),
    "machine: Lsa EveryoneIncludesAnonymous": lambda d: d["Machine"]["Lsa"][
        "EveryoneIncludesAnonymous"].update(Data=1),
    "accounts: group local:opc users": lambda d: _named(d["Accounts"]["Groups"], "OPC Users")[
        "Members"].pop(),
    "accounts: user opcuser": lambda d: _named(d["Accounts"]["Users"], "opcuser").update(
        PasswordNeverExpires=False),
    "rights: SeServiceLogonRight": lambda d: d["Rights"]["SeServiceLogonRight"].pop(0),
    "firewall: rule Why=rpc_endpoint_mapper": lambda d: d["Firewall"]["Rules"][0].update(
        RemoteAddress=["Any"]),
}


@pytest.mark.parametrize("part", sorted(MUTATIONS))
def test_the_comparison_fails_when_a_managed_part_differs(part: str) -> None:
    original = load_capture(SHIPPED / "SCADA01.json")
    found = managed_differences(original, _mutated(MUTATIONS[part]))
    assert found and all(line.startswith(f"SCADA01: {part}") for line in found), found
    assert "in SCADA01.json" in found[0] and "in B.json" in found[0]


def test_the_comparison_ignores_what_dcomc_does_not_manage() -> None:
    """Other RIDs for the same accounts, other rule names, another clock, OS and language."""
    def unmanaged(data: dict[str, Any]) -> None:
        data["Time"] = "2030-01-01T00:00:00Z"
        data["Computer"].update(OsCaption="Windows 11", InstallLanguage="de-DE")
        data["Names"]["S-1-5-32-544"] = "VORDEFINIERT\\Administratoren"
        for rule in data["Firewall"]["Rules"]:
            rule.update(Name=rule["Name"] + "-x", DisplayName="x")
        data["Servers"][0]["Service"].update(State="Stopped", DisplayName="KEPServerEX 6.x")
    original = load_capture(SHIPPED / "SCADA01.json")
    swapped = json.loads(_swap_rids((SHIPPED / "SCADA01.json").read_text(encoding="utf-8")))
    unmanaged(swapped)
    other = parse_capture(swapped, SHIPPED / "B.json")
    assert _named(other.part("Accounts")["Users"], "opcsvc")["Sid"] == SID + "1001"
    assert managed_differences(original, other) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"FormatVersion": 2}, "version 2 is not one this dcomc reads (1); use a newer dcomc"),
    ({"Format": "other"}, "`Format` is not 'dcomc-capture'"),
    ({"Computer": None}, "no `Computer.Name` string"),
    ({"Servers": [{"ProgId": "x"}]}, "Servers[0] has no `Clsid` string"),
    ({"Accounts": []}, "`Accounts` is a list, not an object"),
])
def test_the_reader_refuses_a_malformed_capture(tmp_path: Path, change: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_capture(_capture(**change), tmp_path / "c.json")
    assert str(caught.value).endswith(message)
    assert "\n" not in str(caught.value)


def test_cli_import_writes_checks_and_refuses(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "site.yaml"
    args = ["import", *map(str, sorted(SHIPPED.glob("*.json"))), "-o", str(out)]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "3 hosts imported, passes check" in first.output
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    twice = runner.invoke(main, ["import", str(SHIPPED / "HMI01.json"),
                                 str(SHIPPED / "HMI01.json")])
    assert twice.exit_code == 2 and "a second capture of HMI01" in twice.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    refused = runner.invoke(main, ["import", str(bad)])
    assert refused.exit_code == 2 and "not a capture" in refused.output


def test_no_password_material_in_captures_or_import() -> None:
    for path in sorted(SHIPPED.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "PasswordHash" not in text and "Grüße" not in text
    assert "password: prompt" in import_text(_shipped())


def _catalog(*args: str) -> Any:
    return CliRunner().invoke(main, ["catalog", *args])


def test_catalog_from_captures_prints_unverified_entries_in_the_catalogs_shape(
        tmp_path: Path) -> None:
    data = _capture()
    data["Servers"].append({**data["Servers"][0], "Clsid": "{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}",
                            "ProgId": "Vendor.Mill.2", "Name": "Mill OPC DA", "Bitness": 64,
                            "AppId": None, "Service": None})
    mill = tmp_path / "ALTPC7.json"
    mill.write_text(json.dumps(data), encoding="utf-8")
    result = _catalog("--from", str(mill), str(SHIPPED / "HMI01.json"))
    assert result.exit_code == 0, result.output
    entries = load_data(result.output)
    assert list(entries) == ["kepserverex-v6", "vendor-mill-2", "opcenum"]
    products = {key: Product.model_validate(value) for key, value in entries.items()}
    assert not any(p.verified for p in products.values())
    assert products["vendor-mill-2"].model_dump() == {
        "name": "Mill OPC DA", "progid": "Vendor.Mill.2",
        "clsid": "{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}", "appid": None,
        "executable": r"C:\Program Files (x86)\Kepware\KEPServerEX 6\server_runtime.exe",
        "service": None, "bitness": 64, "verified": False,
        "source": "captured on SCADA01 (2026-03-02T07:02:00.0000000Z) by dcomc catalog --from; "
                  "not checked against a primary source"}
    # what a contributor must look at: the catalog lacks kepserverex-v6's AppID
    assert "kepserverex-v6:\n  # the catalog has appid: null\n" in result.output


def test_catalog_from_notes_what_other_pcs_captured_differently(tmp_path: Path) -> None:
    data = _capture()
    data["Computer"]["Name"] = "SCADA02"
    data["Servers"][0]["Executable"] = r"D:\Kepware\server_runtime.exe"
    other = tmp_path / "SCADA02.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    result = _catalog("--from", str(SHIPPED / "SCADA01.json"), str(other), "--json")
    entry = json.loads(result.output)["products"]["kepserverex-v6"]
    assert entry["differs"] == ["the catalog has appid: null",
                                r"SCADA02 has executable: 'D:\Kepware\server_runtime.exe'"]
    assert entry["source"].startswith("captured on SCADA01 (2026-03-02T07:02:00.0000000Z), "
                                      "SCADA02 (")


@pytest.mark.parametrize(("args", "message"), [
    ((str(SHIPPED / "HMI01.json"),), "give --from with one or more captures"),
    (("--from",), "give --from with one or more captures"),
    (("--from", "/nonexistent/c.json"), "c.json"),
])
def test_catalog_from_refuses_bad_arguments(args: tuple[str, ...], message: str) -> None:
    result = _catalog(*args)
    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1
