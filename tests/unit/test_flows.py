"""DCOM flows as the model (issue 12 items 1-2): `calls` makes the flows, and the flows decide
where accounts exist, whom each firewall rule admits and where callbacks need the anonymous
fallback. The acceptance site ships as examples/flows/line4-flows.yaml."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from dcomc.diagnostics import CompileError
from dcomc.emit.review import build_view
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan.classes import host_classes
from dcomc.plan.model import (
    FirewallRule,
    GroupMember,
    LocalGroup,
    LocalUser,
    MachineLimitAddition,
    SecurityOption,
)
from dcomc_targets.base import EmitContext, Options

HERE = Path(__file__).parent
NEWCOMER = HERE.parents[1] / "examples" / "flows" / "line4-flows.yaml"
ADDRESSES = {"SRV01": "10.7.3.10", "HIST01": "10.7.3.11",
             **{f"HMI0{i}": f"10.7.3.2{i}" for i in range(1, 7)}}


@pytest.fixture(scope="module")
def newcomer() -> Compiled:
    return compile_file(NEWCOMER, strict=True)


def admitted(rule: FirewallRule) -> set[str]:
    """The hosts of the site a rule's remote addresses admit."""
    nets = [ipaddress.ip_network(r) for r in rule.remote]
    return {h for h, a in ADDRESSES.items() if any(ipaddress.ip_address(a) in n for n in nets)}


def rules(compiled: Compiled, host: str) -> dict[str, FirewallRule]:
    site = compiled.plan.site
    return {r.name.removeprefix(f"dcomc-{site}-"): r
            for r in compiled.plan.host(host).of_kind(FirewallRule)}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- acceptance: the newcomer's site -------------------------------------------------------


def test_service_account_is_an_administrator_only_on_the_server_pcs(newcomer: Compiled) -> None:
    admins = {h.name for h in newcomer.plan.hosts for m in h.of_kind(GroupMember)
              if m.member.name == "opcsvc" and m.group.sid == "S-1-5-32-544"}
    assert admins == {"SRV01", "HIST01"}
    # it still exists on every HMI, so that the servers' callbacks authenticate there
    created = {h.name for h in newcomer.plan.hosts for u in h.of_kind(LocalUser)
               if u.name == "opcsvc"}
    assert created == set(ADDRESSES)


def test_each_server_firewall_admits_exactly_its_callers(newcomer: Compiled) -> None:
    hmis = {f"HMI0{i}" for i in range(1, 6)}
    srv = rules(newcomer, "SRV01")
    assert admitted(srv["server-kepware"]) == hmis | {"HIST01"}
    assert admitted(srv["server-alarms"]) == hmis
    assert admitted(srv["rpc-epmap"]) == hmis | {"HIST01"}
    assert admitted(srv["opcenum"]) == hmis | {"HIST01"}
    hist = rules(newcomer, "HIST01")
    assert admitted(hist["server-historian"]) == {"HMI06"}
    # HIST01 is a client too: its 135 rule also admits the callbacks (the client CIDR scope)
    assert admitted(hist["rpc-epmap"]) == set(ADDRESSES)


def test_the_diagram_has_exactly_the_declared_flows(newcomer: Compiled) -> None:
    ctx = EmitContext(newcomer.plan, Options())
    view = build_view(newcomer.plan, ctx, list(newcomer.findings), {})
    number = {h.name: c.number for c in host_classes(newcomer.plan) for h in c.hosts}
    arrows = {(f["client"], f["server"]) for f in view["diagram"]["flows"]}
    assert len(arrows) == len(view["diagram"]["flows"]) == 3
    assert arrows == {(number["HMI01"], number["SRV01"]), (number["HIST01"], number["SRV01"]),
                      (number["HMI06"], number["HIST01"])}
    assert view["diagram"]["bus"] is None
    assert len(view["flows"]) == 3


def test_flows_of_the_newcomer_site(newcomer: Compiled) -> None:
    flows = {(f.client, f.client_host, f.server, f.server_host) for f in newcomer.plan.flows}
    assert ("trend", "HMI06", "historian", "HIST01") in flows
    assert ("collector", "HIST01", "kepware", "SRV01") in flows
    assert not any(f[0] == "trend" and f[2] != "historian" for f in flows)
    assert len(flows) == 5 * 2 + 1 + 1
    assert all(f.declared for f in newcomer.plan.flows)
    assert not newcomer.verified  # the acceptance site verifies clean
    assert not [d for d in newcomer.diagnostics if d.code == "W618"]


# --- accounts ---------------------------------------------------------------------------


def test_site_group_only_where_an_acl_names_it(newcomer: Compiled) -> None:
    groups = {h.name for h in newcomer.plan.hosts for g in h.of_kind(LocalGroup)}
    assert groups == {"SRV01", "HIST01"}
    members = {(h.name, m.member.name) for h in newcomer.plan.hosts
               for m in h.of_kind(GroupMember) if m.group.name == "OPC Users"}
    assert members == {(h, u) for h in ("SRV01", "HIST01") for u in ("opcuser", "opcsvc")}


SMALL = """\
dcomc: 1
site: {{name: small}}
accounts:
  users:
    opcuser: {{password: prompt, member_of: [Distributed COM Users]{user_hosts}}}
    opcsvc: {{password: prompt, member_of: [Administrators]}}
    spare: {{password: prompt}}
servers:
  kepware:
    product: kepserverex-v6
    service_account: {account}
    launch: {{opcuser: [local_launch, remote_launch, local_activation, remote_activation]}}
    access: {{opcuser: [local_access, remote_access]}}
clients:
  hmi: {{executable: 'C:\\HMI\\hmi.exe', run_as: opcuser{calls}}}
hosts:
  SCADA01: {{address: 10.0.0.10, servers: [kepware]}}
  HMI01: {{address: 10.0.0.21, clients: [hmi]}}
  HMI02: {{address: 10.0.0.22, clients: [hmi]}}
"""


def small(tmp_path: Path, account: str = "opcsvc", calls: str = "", user_hosts: str = ""
          ) -> Compiled:
    return compile_file(write(tmp_path, SMALL.format(account=account, calls=calls,
                                                     user_hosts=user_hosts)))


def test_an_account_no_flow_needs_is_created_nowhere(tmp_path: Path) -> None:
    compiled = small(tmp_path)
    assert not any(u.name == "spare" for h in compiled.plan.hosts for u in h.of_kind(LocalUser))


def test_explicit_hosts_override_the_placement(tmp_path: Path) -> None:
    compiled = small(tmp_path, user_hosts=", hosts: [SCADA01, HMI01, HMI02]")
    assert all(any(u.name == "opcuser" for u in h.of_kind(LocalUser))
               for h in compiled.plan.hosts)


def test_calls_restricted_to_hosts(tmp_path: Path) -> None:
    compiled = small(tmp_path, calls=", calls: {kepware: [SCADA01]}")
    assert {(f.client_host, f.server_host) for f in compiled.plan.flows} == {
        ("HMI01", "SCADA01"), ("HMI02", "SCADA01")}
    assert compiled.plan.flows[0].span is not None and compiled.plan.flows[0].span.line == 15


def test_a_client_that_calls_nothing_opens_nothing(tmp_path: Path) -> None:
    compiled = small(tmp_path, calls=", calls: []")
    assert not compiled.plan.flows
    assert "server-kepware" not in rules(compiled, "SCADA01")
    assert "client-hmi" not in rules(compiled, "HMI01")  # no rule rather than one for anybody


# --- callbacks ------------------------------------------------------------------------------


def fallback(compiled: Compiled, host: str) -> tuple[list[str], list[str]]:
    plan = compiled.plan.host(host)
    anon = [m.prov.guide for m in plan.of_kind(MachineLimitAddition)
            if m.principal.sid == "S-1-5-7"]
    eia = [o.prov.guide for o in plan.of_kind(SecurityOption)
           if o.value_name == "EveryoneIncludesAnonymous"]
    return anon, eia


def test_no_anonymous_fallback_where_the_service_account_authenticates(tmp_path: Path) -> None:
    assert fallback(small(tmp_path), "HMI01") == ([], [])


def test_anonymous_fallback_where_the_server_identity_cannot_authenticate(tmp_path: Path
                                                                         ) -> None:
    # opcsvc kept to the server PC by its own `hosts:`: it cannot authenticate on the HMIs
    compiled = compile_file(write(tmp_path, SMALL.format(
        account="opcsvc", calls="", user_hosts="").replace(
        "member_of: [Administrators]}", "member_of: [Administrators], hosts: [SCADA01]}")))
    anon, eia = fallback(compiled, "HMI01")
    assert len(anon) == len(eia) == 1
    assert re.search(r"anonymous callback fallback: kepware on SCADA01 logs on as opcsvc, "
                     r"which does not exist on HMI01", eia[0])
    assert not compiled.verified  # the fallback is in place


# --- W618 -----------------------------------------------------------------------------------


def test_w618_suggests_calls_only_where_there_is_a_choice(tmp_path: Path) -> None:
    assert not [d for d in small(tmp_path).diagnostics if d.code == "W618"]
    two = SMALL.replace("    access: {{opcuser: [local_access, remote_access]}}\n",
                        "    access: {{opcuser: [local_access, remote_access]}}\n"
                        "  other: {{progid: Example.Other.1, executable: 'C:\\O\\o.exe'}}\n")
    two = two.replace("servers: [kepware]", "servers: [kepware, other]")
    compiled = compile_file(write(tmp_path, two.format(account="opcsvc", calls="",
                                                       user_hosts="")))
    found = [d for d in compiled.diagnostics if d.code == "W618"]
    assert len(found) == 1 and found[0].span is not None and found[0].span.line == 16
    assert "client 'hmi' has no `calls`" in found[0].message
    with pytest.raises(CompileError):
        compile_file(tmp_path / "site.yaml", strict=True)
