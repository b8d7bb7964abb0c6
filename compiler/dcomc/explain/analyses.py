"""The analyses behind `dcomc explain --spec`: a cause's `look_at` entries evaluated on a
compiled plan, each giving findings with a verdict (ok, problem, unknown, or info).

A `look_at` names a resource kind (the concrete resources, filtered by fields, on hosts of
some roles) or an analysis that checks something across hosts (ANALYSES below): whether each
client's run_as account passes the servers' ACLs and launch limits, the authentication levels
against KB5004442, workgroup accounts, callbacks, firewall scope and addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from dcomc.emit.render import describe, principal_text, to_jsonable
from dcomc.explain.knowledge import Cause, LookAt
from dcomc.front.spec import Host
from dcomc.pipeline import Compiled
from dcomc.plan.flows import SiteFlows
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    AppRef,
    FirewallRule,
    GroupMember,
    HostPlan,
    LocalUser,
    MachineDcomValue,
    MachineLimitAddition,
    Principal,
    PrincipalKind,
    ServiceLogon,
)
from dcomc.plan.principals import Resolver
from dcomc.plan.verify import (
    ADMINISTRATORS,
    LEGACY_AUTH_DEFAULT,
    NEEDS,
    PKT_INTEGRITY,
    Grant,
    admission,
    app_acl_holders,
    limit_holders,
    same,
)
from dcomc.windows import sd

Status = Literal["info", "ok", "problem", "unknown"]

@dataclass(frozen=True, slots=True)
class Finding:
    host: str
    resource: str | None
    value: str
    status: Status = "info"
    data: dict[str, Any] | None = None  # structured form of `value` for --json

    def json(self) -> dict[str, Any]:
        out = {"host": self.host, "resource": self.resource, "value": self.value,
               "status": self.status}
        return out | ({"data": self.data} if self.data is not None else {})


def findings(compiled: Compiled, look: LookAt) -> list[Finding]:
    if look.kind is not None:
        return list(_kind_findings(compiled, look))
    assert look.analysis is not None
    hosts = {h.name for h in _hosts(compiled, look.roles)}
    return [f for f in ANALYSES[look.analysis](compiled) if f.host in hosts or f.host == "*"]


def cause_findings(compiled: Compiled, cause: Cause) -> list[Finding]:
    """Every look_at of a cause on the plan. A resource listed plainly and again by an analysis
    (whose text starts with the plain one) is shown once, with the analysis' verdict."""
    found = [f for look in cause.look_at for f in findings(compiled, look)]
    richer = {(f.host, f.resource): f.value for f in found if f.status != "info"}
    return [f for f in found if not (
        f.status == "info" and f.resource is not None
        and richer.get((f.host, f.resource), "").startswith(f.value))]


def _hosts(compiled: Compiled, roles: Iterable[str]) -> list[HostPlan]:
    wanted = set(roles)
    return [h for h in compiled.plan.hosts if not wanted or wanted & set(h.roles)]


def _kind_findings(compiled: Compiled, look: LookAt) -> Iterator[Finding]:
    for host in _hosts(compiled, look.roles):
        for res in host.resources:
            if res.kind == look.kind and all(
                    _matches(getattr(res, key), want) for key, want in look.where.items()):
                yield Finding(host.name, res.id, describe(res), data={
                    k: to_jsonable(v) for k, v in res.fields_dict().items()})


def _matches(value: Any, want: str) -> bool:
    if want == "*":
        return value is not None
    if isinstance(value, Principal):
        return want.casefold() in (value.name.casefold(), (value.sid or "").casefold())
    if isinstance(value, AppRef):
        return want.casefold() == value.key.casefold()
    if value is None:
        return want.casefold() in ("null", "none")
    return str(value).casefold() == want.casefold()


# The grant logic is the flow verifier's (plan/verify.py `admission`, with its holder lists):
# explain and check judge every ACL and limit alike.


@dataclass(frozen=True, slots=True)
class _ClientIdentity:
    host: HostPlan
    client: str
    run_as: str
    principal: Principal | None
    servers: frozenset[str]  # the hosts (folded) whose servers this client calls


def _client_identities(compiled: Compiled) -> list[_ClientIdentity]:
    """Each client on each host, with its identity and the server hosts its flows reach."""
    resolver = Resolver(compiled.spec)
    calls: dict[tuple[str, str], set[str]] = {}
    for flow in compiled.plan.flows:
        calls.setdefault((flow.client_host.casefold(), flow.client), set()).add(
            flow.server_host.casefold())
    spec_hosts: dict[str, Host] = {}  # folded name → the spec's host, the first of a name
    for name, declared in compiled.spec.hosts.items():
        spec_hosts.setdefault(name.casefold(), declared)
    out: list[_ClientIdentity] = []
    for host in _hosts(compiled, ["client"]):
        spec_host = spec_hosts.get(host.name.casefold())
        for key in spec_host.clients if spec_host else []:
            client = compiled.spec.clients.get(key)
            if client is None or not client.run_as:
                continue
            servers = frozenset(calls.get((host.name.casefold(), key), set()))
            out.append(_ClientIdentity(host, key, client.run_as,
                                       resolver.resolve(client.run_as), servers))
    return out


def _rights_text(kind: sd.RightsKind, mask: int | None) -> str:
    if mask is None:
        return ""
    try:
        return ", ".join(sd.mask_to_rights(kind, mask))
    except sd.SDError:
        return hex(mask)


def _client_identity(compiled: Compiled) -> Iterator[Finding]:
    """Each client's run_as account against each server AppID's Launch and Access ACLs, as the
    flow verifier judges them (`admission`): Windows' defaults too where the plan adds to
    them, and the right the flow needs (remote, or local on the server's own PC)."""
    identities = _client_identities(compiled)
    for server in _hosts(compiled, ["server"]):
        for perm in server.of_kind(AppIdPermission):
            for ident in identities:
                if server.name.casefold() not in ident.servers:
                    continue  # no flow: this client does not call this PC
                who = (f"{ident.host.name} client {ident.client} runs as {ident.run_as}: "
                       f"{perm.which} on {perm.app.key}")
                if ident.principal is None:
                    yield Finding(server.name, perm.id, f"{who}: the account is not known to "
                                  "the site", "unknown")
                    continue
                need = _need(perm.which, ident, server)
                grant = admission(ident.principal, app_acl_holders(perm, perm.which), server,
                                  NEEDS[need])
                yield Finding(server.name, perm.id, _grant_text(who, perm.which, grant, need),
                              grant.status,
                              _identity_data(ident, grant, perm.which, app=perm.app.key))


def _need(which: sd.RightsKind, ident: _ClientIdentity, server: HostPlan) -> tuple[str, bool]:
    """The flow's key in NEEDS: the right, and whether the client runs on the server's PC."""
    return which, ident.host.name.casefold() == server.name.casefold()


def _identity_data(ident: _ClientIdentity, grant: Grant, which: sd.RightsKind,
                   **about: str) -> dict[str, Any]:
    rights = _rights_text(which, grant.mask)
    return {"client_host": ident.host.name, "client": ident.client, "run_as": ident.run_as,
            **about, "which": which, "granted": {"ok": True, "problem": False}.get(
                grant.status), "via": grant.via, "rights": rights.split(", ") if rights else []}


def _grant_text(who: str, which: sd.RightsKind, grant: Grant, need: tuple[str, bool]) -> str:
    right = f"{'local' if need[1] else 'remote'} {'activation' if which == 'launch' else 'access'}"
    if grant.status != "ok":
        return f"{who}: {grant.via} ({right})"
    rights = _rights_text(which, grant.mask)
    return f"{who}: granted {grant.via}" + (f": {rights}" if rights else "")


def _launch_limit(compiled: Compiled) -> Iterator[Finding]:
    """Each client's run_as account against each server's machine launch limit: Windows'
    default holders plus what the plan adds (`limit_holders`, as the flow verifier)."""
    identities = _client_identities(compiled)
    for server in _hosts(compiled, ["server"]):
        holders = limit_holders(server, "launch")
        for ident in identities:
            if server.name.casefold() not in ident.servers:
                continue
            who = (f"{ident.host.name} client {ident.client} runs as {ident.run_as}: "
                   "MachineLaunchRestriction")
            if ident.principal is None:
                yield Finding(server.name, None, f"{who}: the account is not known to the site",
                              "unknown")
                continue
            need = _need("launch", ident, server)
            grant = admission(ident.principal, holders, server, NEEDS[need])
            added = grant.label is not None and grant.label.startswith(MachineLimitAddition.kind)
            rid = grant.label if added else None
            yield Finding(server.name, rid, _grant_text(who, "launch", grant, need),
                          grant.status,
                          _identity_data(ident, grant, "launch", limit="MachineLaunchRestriction"))


def _auth_level(compiled: Compiled) -> Iterator[Finding]:
    """Planned authentication levels against Packet Integrity (docs/windows.md#kb5004442)."""
    for host in compiled.plan.hosts:
        for level in host.of_kind(AppIdAuthLevel):
            if level.value is None:
                yield Finding(host.name, level.id, describe(level)
                              + ": the process's own or the machine default level applies")
            elif level.value < PKT_INTEGRITY:
                yield Finding(host.name, level.id, describe(level)
                              + ": below Packet Integrity (5)", "problem")
            else:
                yield Finding(host.name, level.id, describe(level), "ok")
        legacy = [v for v in host.of_kind(MachineDcomValue)
                  if v.name == "LegacyAuthenticationLevel"]
        if not legacy:
            yield Finding(host.name, None, "Ole\\LegacyAuthenticationLevel is not set by the "
                          "plan: the PC's value applies (2, CONNECT, when absent)", "unknown")
        for value in legacy:
            data = value.data if isinstance(value.data, int) else None
            if value.data is None:
                yield Finding(host.name, value.id, describe(value) + ": Windows default "
                              f"{LEGACY_AUTH_DEFAULT} (CONNECT), below Packet Integrity (5)",
                              "problem")
            elif data is not None and data < PKT_INTEGRITY:
                yield Finding(host.name, value.id, describe(value)
                              + ": below Packet Integrity (5)", "problem")
            else:
                yield Finding(host.name, value.id, describe(value), "ok")


def _local_user(host: HostPlan, name: str) -> LocalUser | None:
    return next((u for u in host.of_kind(LocalUser) if u.name.casefold() == name.casefold()),
                None)


def _workgroup_accounts(compiled: Compiled) -> Iterator[Finding]:
    """The local accounts clients and services use, on every host that takes part."""
    plan = compiled.plan
    if plan.identity == "domain":
        yield Finding("*", None, "domain site: the accounts are domain accounts, no local "
                      "copies are needed (guide §2.1)")
        return
    servers, clients = _hosts(compiled, ["server"]), _hosts(compiled, ["client"])
    # account (folded) → its name, who uses it, the hosts it must exist on (in order)
    names: dict[str, str] = {}
    uses: dict[str, list[str]] = {}
    needed_on: dict[str, dict[str, HostPlan]] = {}

    def need(account: Principal, why: str, hosts: list[HostPlan]) -> None:
        key = account.name.casefold()
        names.setdefault(key, account.name)
        if why not in uses.setdefault(key, []):
            uses[key].append(why)
        for host in hosts:
            needed_on.setdefault(key, {}).setdefault(host.name, host)

    flows = SiteFlows(compiled.plan.flows)
    for ident in _client_identities(compiled):
        if ident.principal is not None and ident.principal.kind is PrincipalKind.LOCAL:
            called = [s for s in servers if s.name.casefold() in ident.servers]
            need(ident.principal, f"run_as of client {ident.client}", [ident.host, *called])
    for server in servers:
        # the client hosts the server's callbacks reach: those whose clients call it
        callers = flows.callers(server.name)
        for logon in server.of_kind(ServiceLogon):
            if logon.account.kind is PrincipalKind.LOCAL:
                reached = [c for c in clients if c.name in callers]
                need(logon.account, f"Log On account of service {logon.service}",
                     [server, *reached])
    for key in sorted(names):
        why = "; ".join(uses[key])
        for host in needed_on[key].values():
            user = _local_user(host, names[key])
            if user is not None:
                yield Finding(host.name, user.id, f"{describe(user)} ({why})", "ok")
            else:
                yield Finding(host.name, None, f"{names[key]} ({why}) is not created on "
                              f"{host.name} by the plan: it must exist there with the same "
                              "password (guide §2.1)", "problem")
    yield Finding("*", None, "passwords are asked at install and never in the plan: they must "
                  "be the same on every PC (guide §2.1); the plan cannot check them")


def _callback_identity(compiled: Compiled) -> Iterator[Finding]:
    """Each server service's Log On account on the client hosts it calls back (workgroup: a
    local copy)."""
    flows = SiteFlows(compiled.plan.flows)
    client_hosts = _hosts(compiled, ["client"])
    for server in _hosts(compiled, ["server"]):
        callers = flows.callers(server.name)  # once per server, not a set per client host
        clients = [c for c in client_hosts if c.name in callers]
        for logon in server.of_kind(ServiceLogon):
            account = logon.account
            who = f"{server.name} service {logon.service} logs on as {principal_text(account)}"
            if account.kind is PrincipalKind.WELL_KNOWN:
                yield Finding(server.name, logon.id, f"{who}: a built-in account, not a "
                              "specific user (guide §3.2)", "problem")
                continue
            if account.kind is not PrincipalKind.LOCAL:
                yield Finding(server.name, logon.id, f"{who}: a domain account, authenticated "
                              "by the domain on every client", "ok")
                continue
            for client in clients:
                if client.name == server.name:
                    continue
                user = _local_user(client, account.name)
                if user is None:
                    yield Finding(client.name, None, f"{who}: no local account "
                                  f"{account.name!r} on {client.name} (guide §2.1)", "problem")
                    continue
                admin = [m.id for m in client.of_kind(GroupMember)
                         if same(m.member, account) and m.group.sid == ADMINISTRATORS.sid]
                note = (f"; it is a local administrator there ({admin[0]}): remote UAC "
                        "filtering applies (docs/windows.md#security-options)") if admin else ""
                yield Finding(client.name, user.id, f"{who}: exists on {client.name}{note}",
                              "ok")


def _peers(compiled: Compiled, flows: SiteFlows, host: HostPlan) -> list[HostPlan]:
    """The hosts whose flows reach `host`: its servers' callers, its clients' servers."""
    names = {n.casefold() for n in (flows.callers(host.name) | flows.called_back_by(host.name))}
    return [h for h in compiled.plan.hosts if h.name.casefold() in names]


def _firewall_scope(compiled: Compiled) -> Iterator[Finding]:
    """Each firewall rule's remote addresses against the peers that must reach the host."""
    flows = SiteFlows(compiled.plan.flows)  # once, not once per host
    for host in compiled.plan.hosts:
        rules = host.of_kind(FirewallRule)
        if not any(r.local_port == "135" for r in rules):
            yield Finding(host.name, None, "no TCP 135 rule in the plan: the PC's own firewall "
                          "configuration must allow it (guide §5)", "unknown")
        peers = _peers(compiled, flows, host)
        for rule in rules:
            if "any" in (r.casefold() for r in rule.remote):
                yield Finding(host.name, rule.id, f"{describe(rule)}: any remote address")
                continue
            try:
                nets = [ipaddress.ip_network(r, strict=False) for r in rule.remote]
            except ValueError:
                yield Finding(host.name, rule.id, f"{describe(rule)}: remote "
                              "addresses not checked (not all are addresses)", "unknown")
                continue
            outside = [f"{p.name} ({p.address})" for p in peers
                       if not any(_in(p.address, n) for n in nets)]
            if outside:
                yield Finding(host.name, rule.id, f"{describe(rule)}: does not admit "
                              f"{', '.join(outside)}", "problem")
            else:
                yield Finding(host.name, rule.id, f"{describe(rule)}: admits every peer "
                              f"({', '.join(p.name for p in peers) or 'none'})", "ok")


def _in(address: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


def _addresses(compiled: Compiled) -> Iterator[Finding]:
    for host in compiled.plan.hosts:
        yield Finding(host.name, None, f"{host.address}, roles: {', '.join(host.roles)}")


ANALYSES: dict[str, Callable[[Compiled], Iterator[Finding]]] = {
    "client_identity": _client_identity,
    "launch_limit": _launch_limit,
    "auth_level": _auth_level,
    "workgroup_accounts": _workgroup_accounts,
    "callback_identity": _callback_identity,
    "firewall_scope": _firewall_scope,
    "addresses": _addresses,
}


