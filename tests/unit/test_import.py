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

import copy
import json
import os
import random
import subprocess
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle
from dcomc.front.catalog import Product, captured_entries, key_from, product
from dcomc.front.importer import import_text
from dcomc.front.load import load_data
from dcomc.pipeline import compile_file
from dcomc.readback.capture import (
    Capture,
    CaptureError,
    load_capture,
    managed,
    managed_differences,
    parse_capture,
)
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


def test_a_machine_default_launch_acl_is_reproduced_where_it_applies(tmp_path: Path) -> None:
    """A PC whose DefaultLaunchPermission grants Users more than Windows' default, and whose
    server has no LaunchPermission of its own (so the default applies to it), and no OPCEnum:
    the import writes the default's principals into that server's launch ACL (the spec has
    no machine setting for the value itself: a comment says so) and `opcenum: false`, and the
    round trip gives the server the same launch ACL and the PC no OPCEnum."""
    data = _capture()
    launch = data["Servers"][0]["AppIdKey"]["LaunchPermission"]
    data["Machine"]["Ole"]["DefaultLaunchPermission"] = _descriptor(
        data, launch["Sddl"] + "(A;;0x1f;;;S-1-5-32-545)")
    data["Servers"][0]["AppIdKey"]["LaunchPermission"] = {"Exists": False, "Type": None,
                                                          "Data": None}
    data["OpcEnum"] = None
    limit = data["Machine"]["Ole"]["MachineLaunchRestriction"]   # Users may launch: the limit
    data["Machine"]["Ole"]["MachineLaunchRestriction"] = _descriptor(  # lets it too
        data, limit["Sddl"] + "(A;;0x1f;;;S-1-5-32-545)")
    original = parse_capture(data, tmp_path / "SCADA01.json")
    captures = [*_shipped()[:2], original]
    text = import_text(captures)
    assert "'Users': [local_launch, remote_launch, local_activation, remote_activation]" in text
    assert "'OPC Users': [local_launch, remote_launch" in text
    assert "its DefaultLaunchPermission applies, written here" in text
    assert "the PC sets DefaultLaunchPermission" in text
    assert "opcenum: false" in text
    assert managed_differences(original, load_capture(SHIPPED / "SCADA01.json"))  # compared
    again = _engine_captures(tmp_path, _imported(tmp_path, captures))
    assert managed_differences(original, load_capture(again / "SCADA01.json")) == []
    assert load_capture(again / "SCADA01.json").data["OpcEnum"] is None


def _calls_spec(tmp_path: Path) -> Path:
    """plant7 with a second server PC: HMI01's hmi calls the server on SCADA01 only, HMI02's
    trend the one on SCADA02 only (`calls` by host)."""
    hmi = "    run_as: opcuser" + " " * 23 + "# the client must run as the authenticated user\n"
    assert hmi in SPEC.read_text(encoding="utf-8")
    text = SPEC.read_text(encoding="utf-8").replace(hmi, """    run_as: opcuser
    calls: {kepware: [SCADA01]}
  trend:
    executable: 'C:\\Trend\\trend.exe'
    run_as: opcuser
    calls: {kepware: [SCADA02]}
""").replace("""    servers: [kepware]                    # a host with servers is a server host
""", """    servers: [kepware]
  SCADA02:
    address: 10.7.3.11
    servers: [kepware]
""").replace("""  HMI02:
    address: 10.7.3.22
    clients: [hmi]""", """  HMI02:
    address: 10.7.3.22
    clients: [trend]""")
    path = tmp_path / "calls.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_calls_are_read_from_the_servers_rules_and_round_trip(tmp_path: Path) -> None:
    """Which client calls which server: the servers' rules admit their callers (`remote:
    site`), so the import writes `calls` by host, and the round trip holds."""
    spec = _calls_spec(tmp_path)
    assert "calls: {kepware: [SCADA02]}" in spec.read_text(encoding="utf-8")
    originals, again = _round_trip(tmp_path, spec)
    for original in originals:
        assert managed_differences(original, load_capture(again / original.path.name)) == []
    text = (tmp_path / "imported.yaml").read_text(encoding="utf-8")
    assert "  hmi:\n" in text and "  trend:\n" in text
    assert "    calls:" in text and "      kepserverex-v6: [SCADA01]\n" in text
    assert "      kepserverex-v6: [SCADA02]\n" in text


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
    ({"Format": "other"}, "Format: not 'dcomc-capture'"),
    ({"Computer": None}, "Computer: null, not an object"),
    ({"Computer": {"Domain": "x"}}, "Computer: no `Name`"),
    ({"Servers": [{"ProgId": "x"}]}, "Servers[0]: no `Clsid`"),
    ({"Accounts": []}, "Accounts: a list, not an object"),
    ({"Accounts": {"Users": ["x"]}}, "Accounts.Users[0]: a string, not an object"),
    ({"Accounts": {"Users": [{"Name": "a", "Sid": "S-1-x"}]}}, "Accounts.Users[0].Sid: not a SID"),
    ({"Servers": [{"Clsid": "{X}", "Bitness": "64"}]}, "Servers[0].Bitness: a string, not a whole"),
    ({"Rights": {"SeServiceLogonRight": [{}]}}, "Rights.SeServiceLogonRight[0]: an object, not a"),
    ({"Firewall": {"Rules": [{"Why": "program", "RemoteAddress": [1]}]}},
     "Firewall.Rules[0].RemoteAddress[0]: a number, not a string"),
])
def test_the_reader_refuses_a_malformed_capture(tmp_path: Path, change: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(CaptureError) as caught:
        parse_capture(_capture(**change), tmp_path / "c.json")
    assert [line for line in caught.value.details if message in line], caught.value.details
    assert all(line.startswith(f"{tmp_path / 'c.json'}: error: ") and "\n" not in line
               for line in caught.value.details)


def test_a_json_problem_is_placed_where_the_parser_found_it(tmp_path: Path) -> None:
    """A syntax error gets its line and column; a problem that is not one (NaN) is named
    without a place, never at the place of a syntax error further down."""
    from dcomc.readback.capture import load_captures

    broken, nan = tmp_path / "broken.json", tmp_path / "nan.json"
    broken.write_text('{\n  "Format": "dcomc-capture",\n  "b": }\n', encoding="utf-8")
    nan.write_text('{"Format": NaN,\n"x": 1,\n"b": }\n', encoding="utf-8")
    with pytest.raises(CaptureError) as caught:
        load_captures([broken, nan])
    first, second = caught.value.details
    assert first.startswith(f"{broken}:3:8: error: not a JSON capture")
    assert second.startswith(f"{nan}: error: not a JSON capture") and "NaN" in second


def test_a_newline_in_a_captured_description_is_refused_not_changed(tmp_path: Path) -> None:
    """The spec cannot hold a newline in a description (E201): the import refuses the
    capture, naming the value, rather than write something else; text with a character a
    line must not show raw (a bidi control) is written double-quoted and reads back as is."""
    data = _capture()
    _named(data["Accounts"]["Users"], "opcsvc")["Description"] = "Line one\nLine two"
    with pytest.raises(CaptureError) as caught:
        parse_capture(data, tmp_path / "c.json")
    assert caught.value.details == [
        f"{tmp_path / 'c.json'}: error: Accounts.Users[3].Description: a control character "
        "(a newline?) the spec cannot hold: Line one\\x0aLine two"]
    _named(data["Accounts"]["Users"], "opcsvc")["Description"] = "Dienst \u202eKonto ü"
    path = _imported(tmp_path, [parse_capture(data, tmp_path / "c.json")])
    assert 'description: "Dienst \\u202eKonto \\u00fc"' in path.read_text(encoding="utf-8")
    assert load_data(path.read_text(encoding="utf-8"))["accounts"]["users"]["opcsvc"][
        "description"] == "Dienst \u202eKonto ü"


def test_cli_import_lists_every_problem_of_every_capture_and_writes_nothing(
        tmp_path: Path) -> None:
    first, second, broken = tmp_path / "A.json", tmp_path / "B.json", tmp_path / "C.json"
    first.write_text(json.dumps(_capture(Accounts={"Users": ["x"], "Groups": 5})),
                     encoding="utf-8")
    second.write_text(json.dumps(_capture(Servers=[{"Clsid": 7}])), encoding="utf-8")
    broken.write_text('{"Format": "dcomc-capture",\n  "FormatVersion": 1,\n  oops}',
                      encoding="utf-8")
    out = tmp_path / "site.yaml"
    result = CliRunner().invoke(main, ["import", str(first), str(second), str(broken),
                                       "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    lines = result.output.splitlines()
    assert lines == [
        f"{first}: error: Accounts.Users[0]: a string, not an object",
        f"{first}: error: Accounts.Groups: a number, not an object",
        f"{second}: error: Servers[0].Clsid: a number, not a string",
        f"{broken}:3:3: error: not a JSON capture (Expecting property name enclosed in double "
        "quotes: line 3 column 3 (char 52))",
        "error: 4 problems in 3 captures; none is used"]


def _wrong(rng: random.Random) -> Any:
    """A value of a random shape: scalars of every JSON type, lists and objects of them."""
    pick = rng.randrange(9)
    scalars = [None, True, 0, -1, 2**40, 1.5, "", "x", "S-1-5-32-544", "\n", "{7BC0}"]
    if pick < 5:
        return rng.choice(scalars)
    if pick < 7:
        return [_wrong(rng) for _ in range(rng.randrange(3))]
    return {rng.choice(["Name", "Sid", "Data", "Exists", "Clsid", "x"]): _wrong(rng)
            for _ in range(rng.randrange(3))}


def _same_kind(value: Any, rng: random.Random) -> Any:
    """Another value of the same JSON type: a shape the reader accepts, odd content."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([0, -1, 7, 2**31, 6])
    if isinstance(value, str):
        return rng.choice(["", "x", "..", "S-1-5-21-1-2-3-1001", "C:\\a b\\c.EXE", "Any",
                           "10.0.0.0/255.0.0.0", "ZZ", "{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}"])
    return _wrong(rng)


def _mutate(data: Any, rng: random.Random) -> None:
    """Replaces one node, anywhere in the capture, with a value of a random shape (or, for a
    scalar, half the time another value of its type)."""
    node, key = data, None
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = rng.choice(keys)
        child = node[key]
        if not isinstance(child, dict | list) or not child or rng.random() < 0.3:
            break
        node = child
    if key is not None:
        old = node[key]
        scalar = not isinstance(old, dict | list) and old is not None
        node[key] = _same_kind(old, rng) if scalar and rng.random() < 0.5 else _wrong(rng)


def test_random_wrong_shapes_never_end_in_a_traceback(tmp_path: Path) -> None:
    """Property: a capture with nodes of random wrong shapes is imported (exit 0) or refused
    with problems named by their file and JSON path (exit 2, nothing written); never a
    traceback. DCOMC_FUZZ_EXAMPLES sets the number of cases (200)."""
    rng = random.Random(16)
    originals = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SHIPPED.glob("*.json"))]
    runner = CliRunner()
    count = int(os.environ.get("DCOMC_FUZZ_EXAMPLES") or 200)
    exits: Counter[int] = Counter()
    for case in range(count):
        paths = []
        for n, original in enumerate(rng.sample(originals, rng.randrange(1, 4))):
            data = copy.deepcopy(original)   # one to three PCs, one of them mutated
            for _ in range(rng.randrange(1, 4) if n == 0 else 0):
                _mutate(data, rng)
            paths.append(tmp_path / f"case{case}-{n}.json")
            paths[-1].write_text(json.dumps(data), encoding="utf-8")
        path, out = paths[0], tmp_path / f"case{case}.yaml"
        result = runner.invoke(main, ["import", *map(str, paths), "-o", str(out)])
        assert result.exit_code in (0, 2), (case, result.output, path.read_text())
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            case, path.read_text(), "".join(traceback.format_exception(result.exception)))
        if result.exit_code == 2 and "none is used" in result.output:
            assert not out.exists()
            assert all(line.startswith((f"{path}: error: ", "error: "))
                       for line in result.output.splitlines())
        exits[result.exit_code] += 1
    assert exits[2] > count // 4 and exits[0] > count // 10, exits


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


def _client_rule(data: dict[str, Any], program: str, name: str) -> None:
    data["Firewall"]["Rules"].append({
        "Why": "program", "Name": name, "DisplayName": name, "Group": "", "Enabled": True,
        "Direction": "Inbound", "Action": "Allow", "Profile": "Domain, Private",
        "Protocol": "TCP", "LocalPort": ["Any"], "Program": program, "Service": "Any",
        "RemoteAddress": ["10.7.3.10"]})


def test_client_keys_are_the_executables_name_once_per_program(tmp_path: Path) -> None:
    """A client is keyed by its executable's name (`client-hmi.exe` is `client-hmi`, never
    `client-client-hmi`); one program on two PCs (any case) is one client; two programs of one
    name are `hmi` and `hmi-2`, the same every run."""
    hmi1 = json.loads((SHIPPED / "HMI01.json").read_text(encoding="utf-8"))
    hmi2 = json.loads((SHIPPED / "HMI02.json").read_text(encoding="utf-8"))
    _client_rule(hmi1, r"C:\Tools\client-hmi.exe", "a")
    _client_rule(hmi2, r"C:\TOOLS\CLIENT-HMI.EXE", "b")
    _client_rule(hmi2, r"D:\Other\hmi.exe", "c")
    captures = [parse_capture(hmi1, tmp_path / "HMI01.json"),
                parse_capture(hmi2, tmp_path / "HMI02.json")]
    text = import_text(captures)
    assert "client-client" not in text
    assert "    clients: [client-hmi, hmi]\n" in text        # HMI01
    assert "    clients: [client-hmi, hmi, hmi-2]\n" in text  # HMI02
    assert "  hmi-2:\n" in text and "executable: 'D:\\Other\\hmi.exe'" in text
    assert import_text(captures) == text


def test_a_client_run_as_guess_marks_only_the_account_it_names(tmp_path: Path) -> None:
    """The client's run_as is guessed once, on the first PC that has it: a user found only on
    a later PC with the same client is not made a site account by that guess."""
    hmi2 = json.loads((SHIPPED / "HMI02.json").read_text(encoding="utf-8"))
    hmi2["Accounts"]["Users"].append({
        "Name": "aaron", "Sid": SID + "1007", "Description": "", "Disabled": False,
        "PasswordNeverExpires": False, "PasswordExpired": False})
    hmi2["Names"][SID + "1007"] = "HMI02\\aaron"
    text = import_text([_shipped()[0], parse_capture(hmi2, tmp_path / "HMI02.json"),
                        _shipped()[2]])
    assert "run_as: 'opcuser'" in text and "aaron" not in text
    alone = import_text([parse_capture(hmi2, tmp_path / "HMI02.json")])
    assert "run_as: 'aaron'" in alone and "    'aaron':\n" in alone   # needed: named


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


def test_catalog_keys_come_from_what_a_server_has() -> None:
    """A server without a ProgID (or with one of punctuation only) is keyed by its
    executable's name, else by its CLSID; never `server` and `-2`."""
    base = {"Clsid": "{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}", "ProgId": "", "Bitness": 32,
            "Executable": r"C:\Mill\Mill Server.EXE"}
    found = [("PC", "t", base),
             ("PC", "t", {**base, "Clsid": "{1B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}",
                          "ProgId": "..."}),
             ("PC", "t", {**base, "Clsid": "{2B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}",
                          "ProgId": None, "Executable": None}),
             ("PC", "t", {**base, "Clsid": "{3B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}",
                          "ProgId": "--", "Executable": ""})]
    assert list(captured_entries(found)) == [
        "mill-server", "mill-server-2", "2b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "3b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"]
    assert key_from(("!!", None, ""), {"client"}, "client") == "client-2"
    assert key_from(("x" * 39 + "-y",), (), "server") == "x" * 39   # no trailing -


@pytest.mark.parametrize(("args", "message"), [
    ((str(SHIPPED / "HMI01.json"),), "give --from with one or more captures"),
    (("--from",), "give --from with one or more captures"),
    (("--from", "/nonexistent/c.json"), "/nonexistent/c.json: error: cannot read the capture"),
])
def test_catalog_from_refuses_bad_arguments(args: tuple[str, ...], message: str) -> None:
    result = _catalog(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    # one line per problem, then (for captures) the count
    assert result.output.count("\n") == (2 if "c.json" in message else 1)


def test_a_shapes_required_keys_travel_with_it() -> None:
    """A required key is marked in the shape itself (not in a table keyed by the shape's
    identity): a copy of a shape requires what the original requires."""
    from dcomc.readback import capture

    for shape in (capture.ACCOUNT, copy.deepcopy(capture.ACCOUNT)):
        assert capture._problems({}, shape, "Accounts.Users[0]") == [
            "Accounts.Users[0]: no `Name`", "Accounts.Users[0]: no `Sid`"]
    assert capture._problems({"Computer": {}}, copy.deepcopy(capture.CAPTURE), "") == [
        "Computer: no `Name`"]
    assert capture._problems({"Name": "PC", "Sid": "S-1-5-21-1-2-3-1001"}, capture.ACCOUNT,
                             "x") == []
