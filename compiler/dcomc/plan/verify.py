"""The flow verifier: for every DCOM flow of the plan, what Windows will check, in the order it
checks it, and the first thing that will fail — with the spec place to fix and the error the
client (or the server calling back) will get.

The walk of one remote flow: the server PC's firewall (TCP 135 and the server's program), the
client's identity on the server PC (workgroup: a local account of the same name, and the same
password source), the authentication levels (KB5004442: activations below Packet Integrity
are refused), the machine launch limit, the AppID's Launch and Activation Permissions, the
machine access limit, the AppID's Access Permissions; then the callbacks: the client PC's
firewall, and the identity the server calls back with — authenticated on the client PC, or
admitted through the anonymous fallback (guide §4.2 steps 10-12, §7.2). A local flow (client
and server on one PC) skips the network and needs local rights.

Errors (E5xx) are certain failures; warnings (W5xx) likely ones, where the PC's current state
decides (an ACL dcomc adds to, a firewall dcomc does not manage). `dcomc explain CODE --spec`
shows the findings that predict CODE. The grant logic here is also what explain's analyses use.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from dcomc.diagnostics import Diagnostics, Severity, Span
from dcomc.front.load import Loaded
from dcomc.front.spec import Spec
from dcomc.plan.flows import Placement, callback_identity
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    FirewallRule,
    Flow,
    GroupMember,
    HostPlan,
    LocalUser,
    MachineDcomValue,
    MachineLimitAddition,
    Principal,
    PrincipalKind,
    SecurityOption,
    SitePlan,
)
from dcomc.plan.principals import Resolver
from dcomc.windows import limits, sids

PKT_INTEGRITY = 5  # RPC_C_AUTHN_LEVEL_PKT_INTEGRITY (docs/windows.md#authentication-levels)
LEGACY_AUTH_DEFAULT = 2  # LegacyAuthenticationLevel when absent (docs/windows.md#machine-defaults)


def _wk(sid: str) -> Principal:
    """A well-known principal, by its SID and the English name of the one table (sids)."""
    return Principal(sids.display_name(sid), PrincipalKind.WELL_KNOWN, sid)


EVERYONE, ANONYMOUS = _wk("S-1-1-0"), _wk("S-1-5-7")
ADMINISTRATORS, SYSTEM = _wk("S-1-5-32-544"), _wk("S-1-5-18")
# Groups every authenticated account is in.
IMPLICIT_GROUPS = frozenset({"S-1-1-0", "S-1-5-11"})  # Everyone, Authenticated Users
# COM rights bits (docs/windows.md#com-rights): what a remote or a local flow needs.
NEEDS: dict[tuple[str, bool], int] = {
    ("launch", False): 0x10, ("launch", True): 0x08,  # remote / local activation
    ("access", False): 0x04, ("access", True): 0x02,  # remote / local access
}
FULL = 0x1F
# Windows' documented starting points (docs/windows.md#machine-defaults, #machine-limits):
# the AppID defaults `permissions: add` keeps, and the machine access limit.
DEFAULT_APP_ACL: dict[str, tuple[tuple[Principal, int], ...]] = {
    "launch": ((ADMINISTRATORS, FULL), (SYSTEM, FULL), (_wk("S-1-5-4"), FULL)),  # INTERACTIVE
    "access": ((_wk("S-1-5-10"), 0x07), (SYSTEM, 0x07)),  # SELF
}
DEFAULT_ACCESS_LIMIT = ((EVERYONE, 0x07), (ANONYMOUS, 0x03))


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str
    windows: tuple[str, ...]  # the error codes and events Windows will produce


RULES: dict[str, Rule] = {r.code: r for r in (
    Rule("E501", Severity.ERROR, "the server PC's firewall does not admit the client PC",
         ("0x800706BA",)),
    Rule("E502", Severity.ERROR, "the client's identity does not exist on the server PC",
         ("0x80070005",)),
    Rule("E503", Severity.ERROR, "an authentication level below packet integrity (KB5004442)",
         ("0x80070005", "10036", "10037", "10038")),
    Rule("E504", Severity.ERROR, "the machine launch limit does not admit the client",
         ("0x80070005", "10016")),
    Rule("E505", Severity.ERROR, "the AppID's launch permissions do not admit the client",
         ("0x80070005", "10016")),
    Rule("E506", Severity.ERROR, "the machine access limit does not admit the caller",
         ("0x80070005", "0x80040202")),
    Rule("E507", Severity.ERROR, "the AppID's access permissions do not admit the client",
         ("0x80070005",)),
    Rule("E508", Severity.ERROR, "the client PC's firewall does not admit the server calling "
         "back", ("0x80040202", "0x800706BA")),
    Rule("E509", Severity.ERROR, "callbacks: the server's identity cannot authenticate on the "
         "client PC and there is no anonymous fallback", ("0x80040202", "0x80070005")),
    Rule("W511", Severity.WARNING, "no firewall rule of the plan lets the flow in: the PC's "
         "own firewall decides", ("0x800706BA", "0x80040202")),
    Rule("W512", Severity.WARNING, "the client's identity is an existing local account: its "
         "password on the server PC cannot be known", ("0x80070005",)),
    Rule("W515", Severity.WARNING, "the AppID's launch permissions admit the client only if "
         "the PC's current ACL does", ("0x80070005", "10016")),
    Rule("W517", Severity.WARNING, "the AppID's access permissions admit the client only if "
         "the PC's current ACL does", ("0x80070005",)),
    Rule("W519", Severity.WARNING, "anonymous callbacks without Everyone includes anonymous: "
         "the client program's own access check decides", ("0x80040202", "0x80070005")),
)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    flows: tuple[Flow, ...]
    problem: str
    span: Span | None

    @property
    def rule(self) -> Rule:
        return RULES[self.code]

    @property
    def message(self) -> str:
        rule = self.rule
        return (f"flow {_flows_text(self.flows)}: {self.problem}; Windows: "
                f"{_windows_text(rule.windows)}")


def _flows_text(flows: tuple[Flow, ...]) -> str:
    """`hmi on HMI01, HMI02 → kepware on SCADA01`, at most six client hosts named."""
    first = flows[0]
    if len(flows) == 1:
        return first.text()
    hosts = [f.client_host for f in flows]
    shown = ", ".join(hosts[:6]) + (f" and {len(hosts) - 6} more" if len(hosts) > 6 else "")
    return f"{first.client} on {shown} → {first.server} on {first.server_host}"


def _windows_text(codes: tuple[str, ...]) -> str:
    hresults = [c for c in codes if c.startswith("0x")]
    events = [c for c in codes if not c.startswith("0x")]
    text = " or ".join(hresults)
    return text + (f", event {'/'.join(events)}" if events else "")


# --- grants: does a holder list admit a principal? --------------------------------------------


def same(a: Principal, b: Principal) -> bool:
    if a.sid and b.sid:
        return a.sid.upper() == b.sid.upper()
    return a.name.casefold() == b.name.casefold()


def groups_of(principal: Principal, host: HostPlan) -> list[tuple[Principal, str]]:
    """Groups the plan makes the principal a member of on this host, with the resource id."""
    return [(m.group, m.id) for m in host.of_kind(GroupMember) if same(m.member, principal)]


@dataclass(frozen=True, slots=True)
class Grant:
    status: Literal["ok", "problem", "unknown"]
    via: str
    mask: int | None = None
    label: str | None = None  # the holder's label: "ACE", a resource id, a default


Holder = tuple[Principal, int | None, str]


def granted(principal: Principal, holders: list[Holder], host: HostPlan, *,
            everyone: bool = True) -> Grant:
    """Does a holder (principal, mask, label) name the principal, directly or via a group the
    plan puts it in on this host, or a group every authenticated account is in (`everyone`:
    false for ANONYMOUS LOGON without Everyone-includes-anonymous)? The first that does, with
    its mask; which rights it gives is `admission`'s question."""
    for _, grant in _grants(principal, holders, groups_of(principal, host), everyone):
        return grant
    if _undecided(principal, holders, set()):
        return Grant("unknown", _DOMAIN_GROUPS)
    return Grant("problem", "not granted")


def admission(principal: Principal, holders: list[Holder], host: HostPlan, need: int, *,
              everyone: bool = True) -> Grant:
    """Whether a holder gives the principal the right `need` (a holder with mask None gives
    all): the first that does (directly before via a group, as `granted` looks); `unknown`
    when the plan cannot tell (a domain group might hold a domain account); else `problem`,
    naming the holder that names it without the right, if one does. The flow verifier and
    `dcomc explain` judge every ACL and limit by this one function."""
    naming: set[int] = set()
    first = None
    for index, grant in _grants(principal, holders, groups_of(principal, host), everyone):
        if grant.mask is None or grant.mask & need:
            return grant
        naming.add(index)
        first = first or grant
    if _undecided(principal, holders, naming):
        return Grant("unknown", _DOMAIN_GROUPS)
    if first is not None:
        return Grant("problem", f"named {first.via.removeprefix('directly ')}, without the "
                     "right needed", first.mask, first.label)
    return Grant("problem", "not granted")


_DOMAIN_GROUPS = "not named; membership of domain groups is not in the plan"


def _grants(principal: Principal, holders: list[Holder], groups: list[tuple[Principal, str]],
            everyone: bool) -> Iterator[tuple[int, Grant]]:
    """Every holder that names the principal, with its index: directly, then via a group of
    the principal on the host (groups_of), then via a group every authenticated account is
    in."""
    for index, (holder, mask, label) in enumerate(holders):
        if same(holder, principal):
            yield index, Grant("ok", f"directly ({label})", mask, label)
    for index, (holder, mask, label) in enumerate(holders):
        for group, member_id in groups:
            if same(holder, group):
                yield index, Grant("ok", f"via {group.name} ({member_id}; {label})", mask,
                                   label)
    for index, (holder, mask, label) in enumerate(holders):
        if everyone and holder.sid in IMPLICIT_GROUPS and (
                principal.sid != ANONYMOUS.sid or holder.sid == EVERYONE.sid):
            yield index, Grant("ok", f"via {holder.name}, which every authenticated account "
                                     f"is in ({label})", mask, label)


def _undecided(principal: Principal, holders: list[Holder], naming: set[int]) -> bool:
    """Whether a holder that does not name the principal might still hold it: a domain
    account in a domain group, or a group the plan knows only by SID."""
    return any(index not in naming and (principal.kind is PrincipalKind.DOMAIN or holder.kind in (
        PrincipalKind.DOMAIN, PrincipalKind.SID)) for index, (holder, _, _) in enumerate(holders))


def lacks(principal: Principal, holders: list[Holder], host: HostPlan, need: int, *,
          everyone: bool = True) -> bool:
    """Whether the plan can tell that no holder gives the principal the right `need`."""
    return admission(principal, holders, host, need, everyone=everyone).status == "problem"


def app_acl_holders(perm: AppIdPermission | None, which: str) -> list[Holder]:
    """Who an AppID's launch or access ACL names: its ACEs, and Windows' defaults where the
    plan adds to them (`permissions: add`, or no ACL of the plan's: the PC's own applies)."""
    holders: list[Holder] = [(a.principal, a.mask, "ACE") for a in perm.aces] if perm else []
    if perm is None or perm.mode == "add":
        holders += [(p, m, "Windows' default") for p, m in DEFAULT_APP_ACL[which]]
    return holders


# --- the walk --------------------------------------------------------------------------------

Step = tuple[str, str, Span | None]  # code, problem, where to fix


class _Walk:
    """The checks of one site plan; `flow` walks one flow and yields what fails, in order."""

    def __init__(self, spec: Spec, loaded: Loaded, plan: SitePlan) -> None:
        self.spec, self.loaded, self.plan, self.res = spec, loaded, plan, Resolver(spec)
        self.hosts = {h.name.casefold(): h for h in plan.hosts}

    def host(self, name: str) -> HostPlan:
        return self.hosts[name.casefold()]

    def flow(self, flow: Flow) -> Iterator[Step]:
        checks: list[Callable[[Flow], Iterator[Step]]] = [
            self._server_firewall, self._identity, self._auth_levels, self._launch_limit,
            self._launch_acl, self._access_limit, self._access_acl, self._client_firewall,
            self._callback]
        for check in checks:
            yield from check(flow)

    def client_principal(self, flow: Flow) -> Principal | None:
        run_as = self.spec.clients[flow.client].run_as
        return self.res.resolve(run_as) if run_as else None

    # --- network ---------------------------------------------------------------------------

    def _server_firewall(self, flow: Flow) -> Iterator[Step]:
        if flow.local:
            return
        server, client = self.host(flow.server_host), self.host(flow.client_host)
        program = self._server_program(flow)
        yield from _opening(server, client, flow, "135", program,
                            f"{flow.server_host}'s firewall", "E501")

    def _server_program(self, flow: Flow) -> str | None:
        rules: list[FirewallRule] = self.host(flow.server_host).of_kind(FirewallRule)
        return next((r.program for r in rules if r.name.endswith(f"-server-{flow.server}")),
                    None)

    def _client_firewall(self, flow: Flow) -> Iterator[Step]:
        if flow.local:
            return
        client, server = self.host(flow.client_host), self.host(flow.server_host)
        own = [r for r in client.of_kind(FirewallRule)
               if r.name.endswith(f"-client-{flow.client}")]
        program = own[0].program or own[0].service if own else None
        yield from _opening(client, server, flow, "135", program,
                            f"{flow.client_host}'s firewall (callbacks)", "E508")

    # --- identity and authentication ------------------------------------------------------

    def _identity(self, flow: Flow) -> Iterator[Step]:
        principal = self.client_principal(flow)
        if flow.local or principal is None or principal.kind is not PrincipalKind.LOCAL:
            return  # a domain account is authenticated by the domain on every PC
        user = self.spec.accounts.users.get(self.res.user_key(principal.name) or "")
        span = self._run_as_span(flow)
        if user is not None and user.existing:
            yield ("W512", f"{principal.name} is an existing local account: dcomc cannot make "
                   f"its password on {flow.server_host} the same (guide §2.1)", span)
        elif not any(u.name.casefold() == principal.name.casefold()
                     for u in self.host(flow.server_host).of_kind(LocalUser)):
            yield ("E502", f"the client runs as {principal.name}, which the plan does not "
                   f"create on {flow.server_host}: a workgroup needs the same account, with "
                   "the same password, on both PCs (guide §2.1)", span)

    def _run_as_span(self, flow: Flow) -> Span | None:
        """Where the account's placement is written: its `hosts:` if given, else the flow."""
        run_as = self.spec.clients[flow.client].run_as or ""
        key = self.res.user_key(run_as)
        if key is not None and self.spec.accounts.users[key].hosts is not None:
            return self.loaded.span(("accounts", "users", key, "hosts"))
        return flow.span

    def _auth_levels(self, flow: Flow) -> Iterator[Step]:
        for level in self.host(flow.server_host).of_kind(AppIdAuthLevel):
            if level.app.key == flow.server and level.value is not None and (
                    level.value < PKT_INTEGRITY):
                yield ("E503", f"{flow.server}'s AuthenticationLevel is {level.level}, below "
                       "packet_integrity: since March 2023 Windows refuses such activations "
                       "(KB5004442)", level.prov.span)
                return
        for value in self.host(flow.client_host).of_kind(MachineDcomValue):
            if value.name != "LegacyAuthenticationLevel":
                continue
            data = LEGACY_AUTH_DEFAULT if value.data is None else value.data
            if isinstance(data, int) and data < PKT_INTEGRITY:
                yield ("E503", f"the default authentication level of {flow.client_host} is "
                       f"{data}, below packet integrity (5): a client that keeps the default "
                       "activates below it (KB5004442)", value.prov.span)

    # --- launch and access --------------------------------------------------------------

    def _launch_limit(self, flow: Flow) -> Iterator[Step]:
        yield from self._limit(flow, "launch", "E504")

    def _access_limit(self, flow: Flow) -> Iterator[Step]:
        yield from self._limit(flow, "access", "E506")

    def _limit(self, flow: Flow, which: Literal["launch", "access"], code: str
               ) -> Iterator[Step]:
        principal = self.client_principal(flow)
        if principal is None:
            return
        host = self.host(flow.server_host)
        if lacks(principal, limit_holders(host, which), host, NEEDS[(which, flow.local)]):
            added = [m for m in host.of_kind(MachineLimitAddition) if m.which == which]
            span = added[0].prov.span if added else flow.span
            limit = "MachineLaunchRestriction" if which == "launch" else (
                "MachineAccessRestriction")
            yield (code, f"{flow.server_host}'s machine {which} limit ({limit}) does not give "
                   f"{principal.name} {_right_name(which, flow.local)}: add it to "
                   f"`{which}_limits` or, for launch, make it a member of Distributed COM "
                   "Users (docs/windows.md#machine-limits)", span)

    def _launch_acl(self, flow: Flow) -> Iterator[Step]:
        yield from self._acl(flow, "launch", "E505", "W515")

    def _access_acl(self, flow: Flow) -> Iterator[Step]:
        yield from self._acl(flow, "access", "E507", "W517")

    def _acl(self, flow: Flow, which: Literal["launch", "access"], error: str,
             warning: str) -> Iterator[Step]:
        principal = self.client_principal(flow)
        if principal is None:
            return
        host = self.host(flow.server_host)
        perm = next((p for p in host.of_kind(AppIdPermission)
                     if p.app.key == flow.server and p.which == which), None)
        if not lacks(principal, app_acl_holders(perm, which), host, NEEDS[(which, flow.local)]):
            return
        right = _right_name(which, flow.local)
        span = perm.prov.span if perm else flow.span
        if perm is not None and perm.mode == "exact":
            yield (error, f"{flow.server}'s {which} permissions (exact) do not give "
                   f"{principal.name} {right}", span)
        else:
            yield (warning, f"neither `servers.{flow.server}.{which}` nor Windows' default "
                   f"gives {principal.name} {right}: only a current ACL of the AppID on "
                   f"{flow.server_host} could (guide §4.1)", span)

    # --- callbacks ------------------------------------------------------------------------

    def _callback(self, flow: Flow) -> Iterator[Step]:
        if flow.local:
            return
        client = self.host(flow.client_host)
        placed = Placement(frozenset(u.name.casefold() for u in client.of_kind(LocalUser)))
        found = callback_identity(self.spec, self.res, flow, placed)
        if found.authenticates:
            return
        eia = any(o.value_name == "EveryoneIncludesAnonymous" and o.value
                  for o in client.of_kind(SecurityOption))
        anon = [m for m in client.of_kind(MachineLimitAddition)
                if m.which == "access" and m.principal.sid == ANONYMOUS.sid]
        if not eia and not anon:
            yield ("E509", f"{found.why}, and {flow.client_host} has no anonymous fallback "
                   "(ANONYMOUS LOGON in `access_limits`, `everyone_includes_anonymous`; guide "
                   "§4.2 steps 10-12, §7.2): run the service as a site account", flow.span)
            return
        if lacks(ANONYMOUS, limit_holders(client, "access"), client, NEEDS[("access", False)],
                 everyone=eia):
            yield ("E506", f"{found.why}, so it calls back as ANONYMOUS LOGON, which "
                   f"{flow.client_host}'s machine access limit admits locally only",
                   anon[0].prov.span if anon else flow.span)
        elif not eia:
            yield ("W519", f"{found.why}, so it calls back as ANONYMOUS LOGON, and "
                   f"`everyone_includes_anonymous` is off on {flow.client_host}",
                   anon[0].prov.span)


def limit_holders(host: HostPlan, which: Literal["launch", "access"]) -> list[Holder]:
    """Who passes a machine limit: Windows' default holders, then the plan's additions."""
    holders: list[Holder]
    if which == "launch":
        holders = [(_wk(sid), mask, "Windows default limit" if sid == EVERYONE.sid else
                    "Windows default limit, docs/windows.md#machine-limits")
                   for sid, mask in limits.DEFAULT_LAUNCH_LIMIT.items()]
    else:
        holders = [(p, m, "Windows default limit") for p, m in DEFAULT_ACCESS_LIMIT]
    holders += [(m.principal, m.mask, m.id) for m in host.of_kind(MachineLimitAddition)
                if m.which == which]
    return holders


def _right_name(which: str, local: bool) -> str:
    where = "local" if local else "remote"
    return f"{where} activation" if which == "launch" else f"{where} access"


def _opening(host: HostPlan, peer: HostPlan, flow: Flow, port: str, program: str | None,
             what: str, code: str) -> Iterator[Step]:
    """TCP 135 and the program's rule of `host` admit `peer`'s address."""
    rules = host.of_kind(FirewallRule)
    wanted = [("TCP 135", [r for r in rules if r.local_port == port])]
    if program is not None:  # or the RPC port range that stands for the programs
        wanted.append((program, [r for r in rules if program in (r.program, r.service)
                                 or r.name.endswith("-rpc-ports")]))
    for name, found in wanted:
        if not found:
            yield ("W511", f"{what}: the plan has no rule for {name}, so the PC's own firewall "
                   f"must admit {peer.name} ({peer.address})", flow.span)
            return
        if not any(admits(r.remote, peer.address) for r in found):
            yield (code, f"{what}: the rule for {name} does not admit {peer.name} "
                   f"({peer.address}); add it to `firewall.remote` or leave `remote: site`",
                   found[0].prov.span)
            return
    if program is None:
        yield ("W511", f"{what}: the plan has no program rule for this flow, so the PC's own "
               f"firewall must admit {peer.name} ({peer.address})", flow.span)


def admits(remote: Iterable[str], address: str) -> bool:
    ip = _address(address)
    if ip is None:
        return False
    scope = _scope(tuple(remote))
    if scope.any:
        return True
    version, value = ip
    starts, ends = scope.v4 if version == 4 else scope.v6
    i = bisect.bisect_right(starts, value) - 1
    return i >= 0 and value <= ends[i]


@dataclass(frozen=True, slots=True)
class _Scope:
    """A remote list parsed: whether it holds `any`, and per IP version its networks as
    merged, sorted [start, end] integer ranges (starts, ends), searched by bisection."""

    any: bool
    v4: tuple[list[int], list[int]]
    v6: tuple[list[int], list[int]]


# Each host's address is asked about for every flow it is in (clients x servers of them with
# `--flows all`): parsed once. Bounded like _scope, a little above a large site's hosts.
@functools.lru_cache(maxsize=16384)
def _address(text: str) -> tuple[int, int] | None:
    """(IP version, the address as an integer), None when it is not an address."""
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    return ip.version, int(ip)


# The verifier asks about the same few remote lists for every flow (a `site` scope of 800
# networks, for each of clients x servers flows): each distinct list is parsed once, not once
# per flow. Bounded, as the lists of a long-running process's many specs would pile up.
@functools.lru_cache(maxsize=4096)
def _scope(remote: tuple[str, ...]) -> _Scope:
    ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for entry in remote:
        if entry.casefold() == "any":
            return _Scope(True, ([], []), ([], []))
        try:
            # the zone (`%12`, `%eth0`) goes, the prefix stays: `fe80::%1/64` is a network
            net = ipaddress.ip_network(re.sub(r"%[^/]*", "", entry), strict=False)
        except ValueError:
            continue  # not a network (a keyword Windows knows): admits no address here
        ranges[net.version].append((int(net.network_address), int(net.broadcast_address)))
    return _Scope(False, _merged(ranges[4]), _merged(ranges[6]))


def _merged(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(ranges):
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


# --- the verifier ------------------------------------------------------------------------------


def verify(spec: Spec, loaded: Loaded, plan: SitePlan) -> list[Finding]:
    """Per flow, the first failure (after a warning, also the first error), merged across the
    flows that fail alike."""
    walk = _Walk(spec, loaded, plan)
    found: dict[tuple[str, str, Span | None, str, str, str], list[Flow]] = {}
    for flow in plan.flows:
        for code, problem, span in _first(walk.flow(flow)):
            key = (code, problem, span, flow.client, flow.server, flow.server_host)
            found.setdefault(key, []).append(flow)
    out = [Finding(key[0], tuple(flows), key[1], key[2]) for key, flows in found.items()]
    return sorted(out, key=lambda f: (f.span or Span("", 0, 0), f.code, f.problem))


def _first(steps: Iterator[Step]) -> list[Step]:
    """The first step that fails; when it is only likely (a warning), also the first certain
    failure after it, which a warning must not hide."""
    out: list[Step] = []
    for step in steps:
        error = RULES[step[0]].severity is Severity.ERROR
        if error or not out:
            out.append(step)
        if error:
            break
    return out


def report(findings: list[Finding], diags: Diagnostics, *, strict: bool) -> None:
    """Findings as diagnostics; with strict, warnings become errors."""
    for f in findings:
        if f.rule.severity is Severity.ERROR or strict:
            diags.error(f.span, f.code, f.message)
        else:
            diags.warning(f.span, f.code, f.message)
