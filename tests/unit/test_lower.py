"""The per-host plans of the shipped examples: every step of the guide that applies, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcomc.diagnostics import CompileError
from dcomc.emit.render import plan_json, plan_text
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    AppIdRunAs,
    AppIdRunLocation,
    FirewallRule,
    FirewallRuleGroup,
    GroupMember,
    HostPlan,
    LocalGroup,
    LocalUser,
    MachineDcomValue,
    MachineLimitAddition,
    PrincipalKind,
    RebootNotice,
    RpcPortRange,
    SecurityOption,
    ServiceLogon,
    ServiceStartMode,
    UserRight,
)
from dcomc.windows import sd

ROOT = Path(__file__).resolve().parents[2]
EXE = "C:\\Program Files\\Example\\opc.exe"
ALL_LAUNCH = 0x1F
LOCAL_REMOTE_ACCESS = 0x07


def ids(host: HostPlan) -> list[str]:
    return [r.id for r in host.resources]


def test_examples_are_identical_to_shared() -> None:
    shared = ROOT.parent / "shared" / "examples"
    if not shared.is_dir():
        pytest.skip("../shared is not beside this checkout")
    for spec in shared.glob("*.yaml"):
        assert (ROOT / "examples" / spec.name).read_bytes() == spec.read_bytes()


def test_plan_order_follows_guide_dependencies(plant7: Compiled) -> None:
    for host in plant7.plan.hosts:
        phases = [r.phase for r in host.resources]
        assert phases == sorted(phases)
        assert isinstance(host.resources[-1], RebootNotice)
        assert len(set(ids(host))) == len(ids(host))


def test_plant7_server_host(plant7: Compiled) -> None:
    host = plant7.plan.host("SCADA01")
    assert host.roles == ("server",)
    assert {u.name for u in host.of_kind(LocalUser)} == {"opcuser", "opcsvc"}
    assert all(u.password_never_expires for u in host.of_kind(LocalUser))
    assert [g.name for g in host.of_kind(LocalGroup)] == ["OPC Users"]
    members = {(m.group.name, m.member.name) for m in host.of_kind(GroupMember)}
    assert members == {("OPC Users", "opcuser"), ("OPC Users", "opcsvc"),
                       ("Administrators", "opcsvc")}
    admin = next(m for m in host.of_kind(GroupMember) if m.group.name == "Administrators")
    assert admin.group.sid == "S-1-5-32-544"  # well-known groups by SID, never by name
    assert admin.member.kind is PrincipalKind.LOCAL and admin.member.sid is None

    logon = host.of_kind(ServiceLogon)
    assert [(s.service, s.account.name) for s in logon] == [("KEPServerEXV6", "opcsvc")]
    rights = host.of_kind(UserRight)
    assert [(r.right, r.principal.name) for r in rights] == [("SeServiceLogonRight", "opcsvc")]
    # the right is granted before the service is switched to the account
    assert ids(host).index(rights[0].id) < ids(host).index(logon[0].id)


def test_plant7_appids(plant7: Compiled) -> None:
    host = plant7.plan.host("SCADA01")
    levels = {a.app.key: (a.level, a.value) for a in host.of_kind(AppIdAuthLevel)}
    assert levels == {"kepware": ("default", None), "opcenum": ("packet_integrity", 5)}
    assert {r.app.key for r in host.of_kind(AppIdRunLocation)} == {"kepware", "opcenum"}
    perms = {(p.app.key, p.which): p for p in host.of_kind(AppIdPermission)}
    launch = perms[("kepware", "launch")]
    assert [(a.principal.name, a.mask) for a in launch.aces] == [("OPC Users", ALL_LAUNCH)]
    access = perms[("kepware", "access")]
    assert [(a.principal.name, a.mask) for a in access.aces] == [("OPC Users", 0x07)]
    # the KEPServerEX AppID is not known: it stays unknown and is resolved on the PC
    assert launch.app.appid is None and launch.app.progid == "Kepware.KEPServerEX.V6"
    assert perms[("opcenum", "launch")].app.appid == "{13486D44-4821-11D2-A494-3CB306C10000}"
    # AppID settings come after the service identity (guide §3 caution)
    first_appid = min(ids(host).index(r.id) for r in host.of_kind(AppIdAuthLevel))
    assert ids(host).index("service_logon:KEPServerEXV6") < first_appid


def test_plant7_machine_dcom(plant7: Compiled) -> None:
    for host in plant7.plan.hosts:
        values = {v.name: v.data for v in host.of_kind(MachineDcomValue)}
        assert values == {"EnableDCOM": "Y", "LegacyAuthenticationLevel": 5,
                          "LegacyImpersonationLevel": 2}
        limits = {(m.which, m.principal.sid or m.principal.name): m.mask
                  for m in host.of_kind(MachineLimitAddition)}
        assert limits[("access", "S-1-5-7")] == LOCAL_REMOTE_ACCESS
        if "server" in host.roles:
            assert limits[("launch", "OPC Users")] == ALL_LAUNCH
        else:
            assert ("launch", "OPC Users") not in limits


def test_plant7_firewall(plant7: Compiled) -> None:
    # `remote: site` is the hosts whose flows need the rule: the HMIs on the server PC,
    # the server PC on the HMIs (callbacks), never the PC itself (issue 12)
    site = ("10.7.3.21", "10.7.3.22")
    server = {r.name: r for r in plant7.plan.host("SCADA01").of_kind(FirewallRule)}
    assert set(server) == {"dcomc-plant7-line3-rpc-epmap", "dcomc-plant7-line3-opcenum",
                           "dcomc-plant7-line3-server-kepware"}
    epmap = server["dcomc-plant7-line3-rpc-epmap"]
    assert (epmap.protocol, epmap.local_port, epmap.remote) == ("TCP", "135", site)
    assert epmap.profiles == ("domain", "private")
    assert server["dcomc-plant7-line3-opcenum"].program == "%SystemRoot%\\SysWOW64\\OpcEnum.exe"
    kep = server["dcomc-plant7-line3-server-kepware"].program
    assert kep == "C:\\Program Files (x86)\\Kepware\\KEPServerEX 6\\server_runtime.exe"
    client = {r.name: r for r in plant7.plan.host("HMI01").of_kind(FirewallRule)}
    assert set(client) == {"dcomc-plant7-line3-rpc-epmap", "dcomc-plant7-line3-client-hmi"}
    assert client["dcomc-plant7-line3-client-hmi"].program.endswith("\\hmi.exe")
    assert {r.remote for r in client.values()} == {("10.7.3.10",)}
    assert not plant7.plan.host("HMI01").of_kind(FirewallRuleGroup)  # network_discovery: false


def test_plant7_policies(plant7: Compiled) -> None:
    server = {o.value_name: o.value for o in plant7.plan.host("SCADA01").of_kind(SecurityOption)}
    client = {o.value_name: o.value for o in plant7.plan.host("HMI02").of_kind(SecurityOption)}
    assert server == {"ForceGuest": 0}  # classic, §7.1, server only
    assert client == {"EveryoneIncludesAnonymous": 1}  # §7.2, client only


def test_plant9_domain_creates_no_accounts(plant9: Compiled) -> None:
    for host in plant9.plan.hosts:
        assert not host.of_kind(LocalUser) and not host.of_kind(LocalGroup)


def test_plant9_dual_role_host(plant9: Compiled) -> None:
    host = plant9.plan.host("UTIL-HIST")
    assert host.roles == ("server", "client")
    # the server and the client name the same service and account: one Log On resource
    logons = host.of_kind(ServiceLogon)
    assert [(s.service, s.account.sid) for s in logons] == [
        ("KEPServerEXV6", "S-1-5-21-1004336348-1177238915-682003330-1105")]
    names = {r.name for r in host.of_kind(FirewallRule)}
    assert "dcomc-plant9-utilities-client-historian-collector" in names
    assert "dcomc-plant9-utilities-server-historian" in names
    collector = next(r for r in host.of_kind(FirewallRule) if r.name.endswith("collector"))
    assert (collector.program, collector.service) == (None, "KEPServerEXV6")
    options = {o.value_name: o.value for o in host.of_kind(SecurityOption)}
    assert options == {"ForceGuest": 0, "EveryoneIncludesAnonymous": 1}
    assert [g.group for g in host.of_kind(FirewallRuleGroup)] == ["@FirewallAPI.dll,-32752"]
    modes = {s.service: s.mode for s in host.of_kind(ServiceStartMode)}
    assert modes == {"fdPHost": "auto", "FDResPub": "auto", "SSDPSRV": "auto",
                     "upnphost": "manual"}


def test_plant9_static_descriptors(plant9: Compiled) -> None:
    host = plant9.plan.host("UTIL-SRV1")
    boilers = {p.which: p for p in host.of_kind(AppIdPermission) if p.app.key == "boilers"}
    assert boilers["launch"].app.appid == "{6F1C2A7E-3B9D-4E5F-8A21-0C4D7E9B1F36}"
    launch = {a.principal.sid: a.mask for a in boilers["launch"].aces}
    assert launch == {"S-1-5-21-1004336348-1177238915-682003330-2210": 0x1F,
                      "S-1-5-32-544": sd.rights_to_mask("launch", ["local_launch",
                                                                   "local_activation"])}
    access = {a.principal.sid: a.mask for a in boilers["access"].aces}
    assert access["S-1-5-18"] == 0x03  # SYSTEM local access only
    assert all(a.principal.static for p in boilers.values() for a in p.aces)


def test_plant9_host_override(plant9: Compiled) -> None:
    eng = plant9.plan.host("ENG-WS1")
    assert {r.remote for r in eng.of_kind(FirewallRule)} == {("10.9.0.0/24",)}
    srv = plant9.plan.host("UTIL-SRV1")
    # without `calls` every client calls every server: UTIL-SRV1 admits both client PCs
    assert {r.remote for r in srv.of_kind(FirewallRule)} == {("10.9.0.6", "10.9.8.40")}
    assert {r.profiles for r in srv.of_kind(FirewallRule)} == {("domain",)}


def test_plan_is_deterministic() -> None:
    path = ROOT / "examples" / "plant9-domain.yaml"
    first, second = compile_file(path).plan, compile_file(path).plan
    assert plan_json(first, list(first.hosts)) == plan_json(second, list(second.hosts))


def test_plan_views(plant7: Compiled) -> None:
    plan = plant7.plan
    text = plan_text(plan, list(plan.hosts))
    assert "Host SCADA01 (10.7.3.10), roles: server" in text
    assert "grant SeServiceLogonRight to opcsvc" in text
    data = json.loads(plan_json(plan, [plan.host("HMI01")]))
    assert [h["name"] for h in data["hosts"]] == ["HMI01"]
    first = data["hosts"][0]["resources"][0]
    assert first["source"].endswith("plant7-workgroup.yaml:18:7") and first["guide"] == "§2.2"


def test_compile_error_carries_all(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("dcomc: 1\nsite: {name: x}\nhosts:\n  H1: {address: 10.0.0.1}\n"
                    "  H2: {address: nope, servers: [s]}\n", encoding="utf-8")
    with pytest.raises(CompileError) as info:
        compile_file(spec)
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["E101", "E220", "E310"]


# --- issue 12 items 5-7: RunAs, bitness, a fixed RPC port range --------------------------------


def opc(name: str, **keys: Any) -> dict[str, Any]:
    """An OPC server entry with a ProgID and an executable, plus `keys`."""
    return {"progid": f"Example.{name}OPC.1", "executable": EXE, **keys}


def derived(tmp_path: Path, change: Any) -> Compiled:
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    change(spec)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return compile_file(path)


def test_run_as_lowers_to_the_appid_value(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["servers"]["panel"] = opc("Panel", run_as="interactive_user")
        s["servers"]["trend"] = opc("Trend", run_as="launching_user")
        s["hosts"]["SCADA01"]["servers"] += ["panel", "trend"]
    host = derived(tmp_path, change).plan.host("SCADA01")
    runs = {r.app.key: r for r in host.of_kind(AppIdRunAs)}
    assert set(runs) == {"panel", "trend"}  # kepware says nothing: its RunAs is left alone
    assert (runs["panel"].identity, runs["panel"].value) == ("interactive_user", "Interactive User")
    assert (runs["trend"].identity, runs["trend"].value) == ("launching_user", None)
    assert runs["panel"].prov.guide == "§3, §4.1" and runs["panel"].prov.span is not None
    # after the AppID's permissions, before the machine-wide values
    order = [r.kind for r in host.resources]
    assert order.index("appid_permission") < order.index("appid_run_as") < order.index(
        "machine_dcom_value")


def test_bitness_is_unknown_unless_spec_or_catalog_say(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["servers"]["panel"] = {"progid": "Example.PanelOPC.1", "executable": EXE}
        s["servers"]["wide"] = opc("Wide", bitness=64)
        s["hosts"]["SCADA01"]["servers"] += ["panel", "wide"]
    host = derived(tmp_path, change).plan.host("SCADA01")
    bits = {r.app.key: r.app.bitness for r in host.of_kind(AppIdAuthLevel)}
    assert bits == {"panel": None, "wide": 64, "kepware": 32, "opcenum": 32}


def test_rpc_ports_lower_to_values_a_port_rule_and_a_reboot(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["machine"]["server"]["rpc_ports"] = "5000-5200"
        s["machine"]["server"]["firewall"]["open"] = "rpc_ports"
    plan = derived(tmp_path, change).plan
    scada = plan.host("SCADA01")
    [ports] = scada.of_kind(RpcPortRange)
    assert ports.ports == ("5000-5200",) and ports.prov.span is not None
    rules = {r.name: r for r in scada.of_kind(FirewallRule)}
    assert set(rules) == {"dcomc-plant7-line3-rpc-epmap", "dcomc-plant7-line3-rpc-ports"}
    assert rules["dcomc-plant7-line3-rpc-ports"].local_port == "5000-5200"
    assert rules["dcomc-plant7-line3-rpc-ports"].program is None
    [reboot] = scada.of_kind(RebootNotice)
    assert "RPC port range" in reboot.reason
    hmi = plan.host("HMI01")  # the client role keeps Windows' range and its program rule
    assert hmi.of_kind(RpcPortRange) == []
    assert any(r.program for r in hmi.of_kind(FirewallRule))
    assert "RPC port range" not in hmi.of_kind(RebootNotice)[0].reason


def test_a_dual_role_host_uses_both_ranges(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["machine"]["server"]["rpc_ports"] = "6000-6100"
        s["machine"]["server"]["firewall"]["open"] = "rpc_ports"
        s["machine"]["client"]["rpc_ports"] = "5000-5100"
        s["hosts"]["SCADA01"]["clients"] = ["hmi"]
    scada = derived(tmp_path, change).plan.host("SCADA01")
    [ports] = scada.of_kind(RpcPortRange)
    assert ports.ports == ("5000-5100", "6000-6100")  # numeric order
    rules = {r.name: r for r in scada.of_kind(FirewallRule)}
    # the server role's programs (kepware, OPCEnum) become the range, open to its callers
    rule = rules["dcomc-plant7-line3-rpc-ports"]
    assert rule.local_port == "5000-5100,6000-6100"
    assert set(rule.remote) == {"10.7.3.21", "10.7.3.22"}
    assert not any(r.program for r in rules.values())


def test_rpc_ports_in_plan_text_and_json(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["machine"]["server"]["rpc_ports"] = "5000-5200"
        s["servers"]["panel"] = opc("Panel", run_as="interactive_user")
        s["hosts"]["SCADA01"]["servers"] += ["panel"]
    compiled = derived(tmp_path, change)
    text = plan_text(compiled.plan, list(compiled.plan.hosts))
    assert "Rpc\\Internet Ports = 5000-5200" in text
    assert "RunAs = 'Interactive User' (interactive_user)" in text
    data = json.loads(plan_json(compiled.plan, list(compiled.plan.hosts)))
    assert "rpc_port_range" in json.dumps(data)


def test_the_reg_carries_run_as_and_the_rpc_values(tmp_path: Path) -> None:
    from dcomc_targets.base import EmitContext, Options
    from dcomc_targets.regfile import RPC_INTERNET_KEY, RegOp, RegTarget

    def change(s: dict[str, Any]) -> None:
        s["machine"]["server"]["rpc_ports"] = "5000-5200"
        s["servers"]["panel"] = opc("Panel", run_as="interactive_user",
                                    appid="{6F1C2A7E-3B9D-4E5F-8A21-0C4D7E9B1F36}")
        s["hosts"]["SCADA01"]["servers"] += ["panel"]
    compiled = derived(tmp_path, change)
    host = compiled.plan.host("SCADA01")
    ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
    target = RegTarget()
    [artifact] = target.emit(host, ctx)
    read = target.read(artifact.data)
    assert read == target.expected(host, ctx)
    ops = {(op.key, op.name): op for op in read.ops}
    multi = "5000-5200\0\0".encode("utf-16-le").hex()
    assert ops[(RPC_INTERNET_KEY, "Ports")] == RegOp(RPC_INTERNET_KEY, "Ports", "hex(7)", multi)
    assert ops[(RPC_INTERNET_KEY, "UseInternetPorts")].data == "Y"
    assert ops[(RPC_INTERNET_KEY, "PortsInternetAvailable")].data == "Y"
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\AppID\\{6F1C2A7E-3B9D-4E5F-8A21-0C4D7E9B1F36}"
    assert ops[(key, "RunAs")].data == "Interactive User"
