"""Security lints over the plan: what catches the insecure "just make it work" recipes.

Each lint has a stable code and a severity (errors always fail a build; warnings fail it only
with --strict, a compiler's warnings-as-errors). They run on the lowered plan, so they judge
what will really be applied — defaults and per-host overrides included — and point at the spec
line that caused it.
Sources: KB5004442 (docs/windows.md#kb5004442), the guide, and the field reports in
docs/windows.md#field-reports (items 1 and 4).

E401 is the one rule that only `--self-contained` applies: a resource an artifact cannot carry
ahead of time (an AppID or SID known only on the PC, a firewall rule naming a service for WiX).
The targets list such resources in their headers and leave them to the engine, which is the
normal case (a workgroup's local accounts get their SIDs on each PC); a site that deploys the
.reg or .inf alone asks `check --self-contained` and `build --self-contained` to refuse them
through this one rule (`pending`), each with its fix.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from dcomc.diagnostics import Diagnostics, Severity, Span
from dcomc.front.spec import Spec
from dcomc.plan.flows import process_mode
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    AppIdRunAs,
    AppIdRunLocation,
    FirewallRule,
    HostPlan,
    MachineDcomValue,
    MachineLimitAddition,
    PrincipalKind,
    Resource,
    RpcPortRange,
    SecurityOption,
    ServiceLogon,
    SitePlan,
    UserRight,
)
from dcomc.windows import sd, sids
from dcomc.windows.limits import DEFAULT_LAUNCH_LIMIT, EVERYONE

PKT_INTEGRITY = 5
ANONYMOUS = "S-1-5-7"
LAUNCH_BITS = 0x1E  # local/remote launch and activation
BUILTIN_LOGONS = frozenset({"S-1-5-18", "S-1-5-19", "S-1-5-20"})  # SYSTEM, LOCAL/NETWORK SERVICE
# Windows' documented default machine launch limit, SID -> the COM rights it grants, is
# DEFAULT_LAUNCH_LIMIT (windows/limits.py, shared with the flow verifier). Everyone's local
# rights reach every account. Only documented entries count: an account the limit does not
# name is treated as not admitted, so a wrong guess shows as a warning, never as a silently
# missing one.
# A link users can open, for messages (the guide itself is named in docs/windows.md#the-guide).
WINDOWS_MD = "docs/windows.md"


@dataclass(frozen=True, slots=True)
class Lint:
    code: str
    severity: Severity
    title: str


LINTS: dict[str, Lint] = {lint.code: lint for lint in (
    Lint("E601", Severity.ERROR, "AppID authentication level below packet integrity "
         "(KB5004442)"),
    Lint("E602", Severity.ERROR, "machine default authentication level below packet "
         "integrity (KB5004442)"),
    Lint("E603", Severity.ERROR, "firewall rule scope longer than Windows Firewall takes"),
    Lint("W611", Severity.WARNING, "Everyone or ANONYMOUS LOGON may launch or activate"),
    Lint("W612", Severity.WARNING, "ANONYMOUS LOGON access that neither OPCEnum nor callbacks "
         "need"),
    Lint("W613", Severity.WARNING, "firewall rule open to any remote address"),
    Lint("W614", Severity.WARNING, "security option on the side the guide does not put it"),
    Lint("W615", Severity.WARNING, "service account whose password expires"),
    Lint("W616", Severity.WARNING, "machine launch-limit edit where Distributed COM Users "
         "membership would do"),
    Lint("W617", Severity.WARNING, "account a workgroup cannot share across PCs"),
    Lint("W618", Severity.WARNING, "client without `calls`: taken to call every server"),
    Lint("W621", Severity.WARNING, "interactive server as the launching user with remote "
         "clients: a server process per client account"),
    Lint("W622", Severity.WARNING, "RunAs on a server that runs as a service, which ignores "
         "it"),
    Lint("W623", Severity.WARNING, "RPC port range smaller than the guidance for the host's "
         "DCOM servers"),
    Lint("E401", Severity.ERROR,
         "--self-contained: a value an artifact cannot carry ahead of time"),
)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    host: str | None
    message: str
    span: Span | None

    @property
    def lint(self) -> Lint:
        return LINTS[self.code]


class Findings(list[Finding]):
    """The lint findings, and beside them (not among them: reports list lints, and these are
    no security finding) what --self-contained refuses as E401."""

    pending: list[Finding]

    def __init__(self, findings: list[Finding], pending: list[Finding]) -> None:
        super().__init__(findings)
        self.pending = pending


def lint(spec: Spec, plan: SitePlan) -> Findings:
    """Every finding; one per code, message and spec place, naming all the hosts it hits."""
    found = [*(f for h in plan.hosts for rule in _HOST_RULES for f in rule(h)),
             *_accounts(spec, plan), *_launch_limits(spec, plan), *_run_as(spec, plan),
             *_rpc_ports(spec, plan)]
    found += _implicit_flows(spec, plan)
    return Findings(_merged(found), _merged(_pending(spec, plan)))


def _merged(found: Iterable[Finding]) -> list[Finding]:
    # the hosts of each finding in first-seen order, as dict keys: a finding on every host of
    # a 10,000-host site searched a list of them for each host
    hosts: dict[tuple[str, str, Span | None], dict[str, None]] = {}
    for finding in found:
        names = hosts.setdefault((finding.code, finding.message, finding.span), {})
        if finding.host:
            names[finding.host] = None
    merged = [Finding(code, ", ".join(names) or None, f"{', '.join(names)}: {message}"
                      if names else message, span)
              for (code, message, span), names in hosts.items()]
    return sorted(merged, key=lambda f: (f.span or Span("", 0, 0), f.code, f.message))


def report(findings: list[Finding], diags: Diagnostics, *, strict: bool,
           self_contained: bool = False) -> None:
    """Findings as diagnostics; with strict, warnings become errors; with self_contained,
    what an artifact cannot carry (E401) is refused."""
    for f in findings:
        if f.lint.severity is Severity.ERROR or strict:
            diags.error(f.span, f.code, f.message)
        else:
            diags.warning(f.span, f.code, f.message)
    if self_contained and isinstance(findings, Findings):
        for f in findings.pending:
            diags.error(f.span, f.code, f.message)


def _finding(code: str, host: HostPlan, resource: Resource, message: str) -> Finding:
    return Finding(code, host.name, message, resource.prov.span)


# --- KB5004442 ------------------------------------------------------------------------------


def _authentication(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(AppIdAuthLevel):
        if r.value is not None and r.value < PKT_INTEGRITY:
            yield _finding("E601", host, r, (
                f"{r.app.key}: AuthenticationLevel {r.level} is below packet_integrity; since "
                "March 2023 (KB5004442) Windows refuses DCOM activations below packet integrity "
                "and the setting cannot be turned off: use packet_integrity or packet_privacy"))
    for r in host.of_kind(MachineDcomValue):
        if r.name == "LegacyAuthenticationLevel" and isinstance(r.data, int) and (
                r.data < PKT_INTEGRITY):
            yield _finding("E602", host, r, (
                f"the machine default authentication level ({r.data}) is below "
                "packet integrity (5); KB5004442 hardening makes activations at that level "
                "fail with 0x80070005: use packet_integrity"))


# --- anonymous and Everyone -----------------------------------------------------------------


def _launch_exposure(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(AppIdPermission):
        if r.which != "launch":
            continue
        for ace in r.aces:
            if ace.principal.sid in (EVERYONE, ANONYMOUS) and ace.mask & LAUNCH_BITS:
                yield _finding("W611", host, r, (
                    f"{r.app.key}: {ace.principal.name} may launch/activate the server; grant "
                    f"a dedicated group instead ({WINDOWS_MD}#field-reports, item 4)"))
    for m in host.of_kind(MachineLimitAddition):
        if m.which == "launch" and m.principal.sid in (EVERYONE, ANONYMOUS):
            yield _finding("W611", host, m, (
                f"the machine launch limit is opened to {m.principal.name}"))


def _anonymous_access(host: HostPlan) -> Iterator[Finding]:
    has_opcenum = any(r.app.key == "opcenum" for r in host.of_kind(AppIdPermission))
    callbacks = "client" in host.roles
    for m in host.of_kind(MachineLimitAddition):
        if m.which == "access" and m.principal.sid == ANONYMOUS and not (has_opcenum or callbacks):
            yield _finding("W612", host, m, (
                "ANONYMOUS LOGON is added to the machine access limit, but this "
                "host neither runs OPCEnum nor receives OPC callbacks (guide §4.2 step 11)"))
    for r in host.of_kind(AppIdPermission):
        if r.which == "access" and r.app.key != "opcenum":
            for ace in r.aces:
                if ace.principal.sid == ANONYMOUS:
                    yield _finding("W612", host, r, (
                        f"{r.app.key}: ANONYMOUS LOGON may call the server; OPC DA clients "
                        "authenticate, only OPCEnum browsing is anonymous"))


# --- firewall and policies ------------------------------------------------------------------


# Windows Firewall's remote scope per rule: Microsoft documents no maximum (INetFwRule
# RemoteAddresses, New-NetFirewallRule -RemoteAddress); administrators report 1,000 entries
# (addresses, ranges or networks) on Windows 10 and Server 2016, more on Windows 11. The lowest
# report is the limit, so that a wrong guess is a build refused with this message, not an
# Apply that fails on the PC (docs/windows.md#firewall-scope-limit).
MAX_SCOPE_ENTRIES = 1000


def _firewall(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(FirewallRule):
        opened = open_to_any(r.remote)
        if opened:
            yield _finding("W613", host, r, (
                f"firewall rule {r.name} allows {opened}; use `site` or "
                "the plant network (guide §5: restore the firewall with exact exceptions)"))
        if len(r.remote) > MAX_SCOPE_ENTRIES:
            yield _finding("E603", host, r, (
                f"firewall rule {r.name} lists {len(r.remote):,} remote addresses and networks; "
                f"Windows Firewall takes at most {MAX_SCOPE_ENTRIES:,} per rule on Windows 10 "
                "and Server 2016: give `remote` the plant's networks instead of single hosts "
                "(a `site` scope is merged into networks already: number its hosts in fewer "
                f"blocks) ({WINDOWS_MD}#firewall-scope-limit)"))


@functools.lru_cache(maxsize=256)
def open_to_any(remote: tuple[str, ...]) -> str | None:
    """What a remote scope effectively opens to everyone, or None: `any` itself, or networks
    that together cover every IPv4 or IPv6 address (0.0.0.0/0, ::/0, or 0.0.0.0/1 plus
    128.0.0.0/1), as the firewall reads the list. Cached: most rules of a site share one scope
    (`site`), which has 80 networks in a 1,000-host site."""
    if "any" in remote:
        return "any remote address"
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for entry in remote:
        try:
            net = ipaddress.ip_network(re.sub(r"%[^/]*", "", entry), strict=False)  # no zone
        except ValueError:
            continue  # check refuses it; nothing to judge
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    whole = [name for name, everything, collapsed in (
        ("IPv4", ipaddress.IPv4Network("0.0.0.0/0"), list(ipaddress.collapse_addresses(v4))),
        ("IPv6", ipaddress.IPv6Network("::/0"), list(ipaddress.collapse_addresses(v6))))
        if everything in collapsed]
    return f"every {' and every '.join(whole)} address (as open as `any`)" if whole else None


def _policy_side(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(SecurityOption):
        if r.value_name == "EveryoneIncludesAnonymous" and r.value and (
                host.roles == ("server",)):
            yield _finding("W614", host, r, (
                "Everyone includes anonymous on a server-only host; the guide "
                "enables it on clients only (§7.2)"))
        if r.value_name == "ForceGuest" and r.value == 0 and host.roles == ("client",):
            yield _finding("W614", host, r, (
                "classic sharing model on a client-only host; the guide sets it "
                "on servers only (§7.1)"))


_HOST_RULES: tuple[Callable[[HostPlan], Iterator[Finding]], ...] = (
    _authentication, _launch_exposure, _anonymous_access, _firewall, _policy_side,
)


# --- accounts -------------------------------------------------------------------------------


def _accounts(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    for host in plan.hosts:
        for r in host.of_kind(ServiceLogon):
            yield from _service_account(spec, host, r)


def _service_account(spec: Spec, host: HostPlan, r: ServiceLogon) -> Iterator[Finding]:
    account = r.account
    user = spec.accounts.users.get(account.name)
    if user is not None and not user.password_never_expires:
        yield _finding("W615", host, r, (
            f"{account.name} runs the service {r.service} but its password expires: the "
            "server stops authenticating the day it does (password_never_expires: true)"))
    if plan_is_workgroup(spec) and account.sid in BUILTIN_LOGONS:
        yield _finding("W617", host, r, (
            f"{r.service} logs on as {sids.display_name(account.sid)}, which cannot authenticate "
            "to another PC of a workgroup; use a site account (guide §3.2)"))
    if plan_is_workgroup(spec) and user is not None and user.existing and (
            account.kind is PrincipalKind.LOCAL):
        yield _finding("W617", host, r, (
            f"{account.name} is an existing local account: dcomc cannot make its password the "
            "same on every PC, which a workgroup needs (guide §2.1)"))


def _implicit_flows(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    """W618: a client without `calls` is taken to call every server on every host, which then
    decides its accounts, firewall openings and callbacks; said once per client, only where
    there is a choice (several servers, or a server on several hosts), and only where local
    accounts follow the flows: in a domain site they are domain accounts, and the flows
    decide only firewall scopes, which the site's `site` scope bounded before `calls`."""
    if plan.identity == "domain" or len(plan.flows) == len(
            {(f.client, f.client_host) for f in plan.flows}):
        return  # one server on one host: every client calls it anyway
    clients: dict[str, list[str]] = {}
    spans: dict[str, Span | None] = {}
    for flow in plan.flows:
        if not flow.declared:
            targets = clients.setdefault(flow.client, [])
            if flow.server not in targets:
                targets.append(flow.server)
            spans.setdefault(flow.client, flow.span)
    for client, servers in clients.items():
        yield Finding("W618", None, (
            f"client '{client}' has no `calls`, so it is taken to call every server of the "
            f"site on every host ({', '.join(servers)}): list the servers it calls (and "
            "optionally their hosts) so that accounts, firewall openings and callbacks follow "
            "the real flows"), spans[client])


def plan_is_workgroup(spec: Spec) -> bool:
    return spec.site.identity == "workgroup"


# --- W616: launch-limit edits -----------------------------------------------------------------


def _launch_limits(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    """Only entries the spec writes under `launch_limits` (never dcomc's default, which is the
    guide's §4.2 steps 13-21), only for accounts that can join Distributed COM Users, only for
    remote rights Windows' default limit does not already grant, and not for an account the
    host's own servers let launch (the guide adds exactly that)."""
    for host in plan.hosts:
        written = _written_launch_limits(spec, host)
        for m in host.of_kind(MachineLimitAddition):
            entry = _written_entry(written, m.principal.name)
            if m.which != "launch" or entry is None or m.principal.kind not in (
                    PrincipalKind.LOCAL, PrincipalKind.DOMAIN):
                continue
            where, mask = entry
            if not _beyond_default(m.principal.sid, mask) or _server_grants(
                    spec, host, m.principal.name, mask):
                continue
            yield _finding("W616", host, m, (
                f"{m.principal.name} is added to the machine launch limit ({where}) for remote "
                "launch or activation, but launches none of this host's servers; Windows' "
                "default limit already admits Distributed COM Users remotely "
                f"({WINDOWS_MD}#machine-limits): {_join_dcom_users(spec, m.principal.name)}, "
                f"and remove {m.principal.name} from {where}"))


def _written_launch_limits(spec: Spec, host: HostPlan) -> dict[str, Mapping[str, Sequence[str]]]:
    """The launch_limits mappings the spec writes for this host: its own override, else the
    `machine.<role>` of each of its roles (as lowering layers them)."""
    own = spec.hosts[host.name].machine
    if own is not None and own.dcom is not None and own.dcom.launch_limits is not None:
        return {f"hosts.{host.name}.machine.dcom.launch_limits": own.dcom.launch_limits}
    found: dict[str, Mapping[str, Sequence[str]]] = {}
    for role in host.roles:
        layer = getattr(spec.machine, role, None) if spec.machine is not None else None
        if layer is not None and layer.dcom is not None and layer.dcom.launch_limits:
            found[f"machine.{role}.dcom.launch_limits"] = layer.dcom.launch_limits
    return found


def _written_entry(written: dict[str, Mapping[str, Sequence[str]]],
                   name: str) -> tuple[str, int] | None:
    for where, entries in written.items():
        for key, rights in entries.items():
            if key.casefold() == name.casefold():
                return where, sd.rights_to_mask("launch", rights)
    return None


def _beyond_default(sid: str | None, mask: int) -> bool:
    """Whether `mask` asks for a launch right Windows' default limit does not grant the SID
    (an unknown SID gets only Everyone's local rights)."""
    granted = DEFAULT_LAUNCH_LIMIT[EVERYONE] | DEFAULT_LAUNCH_LIMIT.get(sid or "", 0)
    return bool(mask & LAUNCH_BITS & ~granted)


def _server_grants(spec: Spec, host: HostPlan, name: str, mask: int) -> bool:
    """Whether the host's servers' `launch` lists grant `name` these rights: then the entry is
    the guide's own step (§4.2 steps 13-21), not an edit beyond it."""
    granted = 0
    for key in spec.hosts[host.name].servers:
        for who, rights in spec.servers[key].launch.items():
            if who.casefold() == name.casefold():
                granted |= sd.rights_to_mask("launch", rights)
    return not mask & LAUNCH_BITS & ~granted


def _join_dcom_users(spec: Spec, name: str) -> str:
    """How this spec makes `name` a member of Distributed COM Users."""
    users = {u.casefold(): u for u in spec.accounts.users}
    groups = {g.casefold(): g for g in spec.accounts.groups}
    if name.casefold() in users:
        return (f"add `Distributed COM Users` to accounts.users.{users[name.casefold()]}"
                ".member_of")
    group = spec.accounts.groups.get(groups.get(name.casefold(), ""))
    if group is not None and not group.existing and "\\" not in name:
        members = ", ".join(group.members) or "its members"
        return ("a local group cannot join another one: add `Distributed COM Users` to the "
                f"member_of of {members}")
    return (f"make {name} a member of Distributed COM Users on these PCs (dcomc adds only "
            "site users to it, through member_of)")


# --- W621, W622: the Identity tab (RunAs) -----------------------------------------------------


def _run_as(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    client_hosts = {h.name for h in plan.hosts if "client" in h.roles}
    for host in plan.hosts:
        for r in host.of_kind(AppIdRunAs):
            server = spec.servers.get(r.app.key)
            if server is None:
                continue
            if process_mode(server) == "service":
                yield _finding("W622", host, r, (
                    f"{r.app.key} runs as a Windows service, whose Log On account is its "
                    "identity: COM ignores RunAs for it; remove run_as "
                    f"({WINDOWS_MD}#runas)"))
            elif r.identity == "launching_user" and client_hosts - {host.name}:
                yield _finding("W621", host, r, (
                    f"{r.app.key} runs interactively as the launching user: Windows starts "
                    "a server process for each client account, under its identity, so remote "
                    "clients do not share one server; use run_as: interactive_user "
                    f"({WINDOWS_MD}#runas)"))


# --- W623: a fixed RPC port range -------------------------------------------------------------

# Microsoft suggests at least 100 ports for a restricted RPC range (docs/windows.md#rpc-ports);
# that is for the PC's own RPC services. dcomc's rule: 100 plus one port for each DCOM server
# process of the host (its servers, OPCEnum, each client that receives callbacks).
RPC_PORTS_BASE = 100


def _rpc_ports(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    for host in plan.hosts:
        for r in host.of_kind(RpcPortRange):
            have = sum(_range_size(text) for text in r.ports)
            own = spec.hosts[host.name]
            opcenum = any(a.app.key == "opcenum" for a in host.of_kind(AppIdAuthLevel))
            processes = len(own.servers) + len(own.clients) + int(opcenum)
            need = RPC_PORTS_BASE + processes
            if have < need:
                yield _finding("W623", host, r, (
                    f"the RPC port range {','.join(r.ports)} has {have} ports; Microsoft "
                    f"suggests at least {RPC_PORTS_BASE} for the PC's own RPC services, and "
                    f"this host's {processes} DCOM server processes need one each: give at "
                    f"least {need} ({WINDOWS_MD}#rpc-ports)"))


def _range_size(text: str) -> int:
    low, _, high = text.partition("-")
    return int(high or low) - int(low) + 1


# --- E401: what an artifact cannot carry (--self-contained only) ------------------------------


def _pending(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    for host in plan.hosts:
        for r in host.resources:
            found = pending(r)
            if found is not None:
                artifact, why = found
                yield _finding("E401", host, r, (
                    f"{artifact} cannot carry {r.id}: {why}: {_fix(spec, r)}; or build "
                    "without --self-contained and let Invoke-DcomConfig.ps1 resolve it on the "
                    "PC"))


def pending(resource: Resource) -> tuple[str, str] | None:
    """(artifact, why) when an artifact can only list `resource` for the engine to apply on the
    PC, else None. The targets leave exactly these out (a test compares the two); the one case
    they add, a machine limit with --replace-machine-limits, only build knows."""
    if isinstance(resource, AppIdAuthLevel | AppIdRunLocation | AppIdPermission | AppIdRunAs):
        if not resource.app.appid:
            via = resource.app.progid or resource.app.clsid
            return "the .reg", f"the AppID is resolved on the PC from {via}"
        if isinstance(resource, AppIdPermission):
            unknown = [a.principal.name for a in resource.aces if not a.principal.static]
            if unknown:
                return "the .reg", f"the SID of {', '.join(unknown)} is known only on the PC"
    elif isinstance(resource, UserRight) and resource.principal.sid is None:
        return "the secedit INF", f"the SID of {resource.principal.name} is known only on the PC"
    elif isinstance(resource, FirewallRule) and resource.service is not None:
        return "the WiX firewall fragment", (
            f"WiX's FirewallException cannot name a service ({WINDOWS_MD}#firewall)")
    return None


def _fix(spec: Spec, r: Resource) -> str:
    """How the spec makes `r` compilable."""
    if isinstance(r, AppIdAuthLevel | AppIdRunLocation | AppIdPermission | AppIdRunAs) and (
            not r.app.appid):
        return (f"give `servers.{r.app.key}.appid` (the AppID value under HKCR\\CLSID\\{{CLSID}} "
                "on a PC where the server is installed)")
    if isinstance(r, FirewallRule):
        return "give the client its `executable:` (the program the service runs)"
    names = [a.principal for a in r.aces] if isinstance(r, AppIdPermission) else (
        [r.principal] if isinstance(r, UserRight) else [])
    return "; ".join(_sid_fix(spec, p.name, p.kind) for p in names if not p.static)


def _sid_fix(spec: Spec, name: str, kind: PrincipalKind) -> str:
    if kind is PrincipalKind.LOCAL:
        return (f"{name} is a local account, whose SID each PC makes when it creates it: grant "
                "a principal with a fixed SID instead (a well-known group such as Distributed "
                "COM Users, or a domain account with `sid:`)")
    section = "users" if name.casefold() in {u.casefold() for u in spec.accounts.users} else (
        "groups")
    return f"give `accounts.{section}.{name}.sid` (list {name} there with `existing: true`)"
