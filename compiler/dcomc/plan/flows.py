"""The site's DCOM flows (who calls whom) and what they decide per host.

A client's `calls` says which servers it calls, optionally on which of their hosts; without
it every client calls every server of the site (the meaning of a spec written before
`calls`). The flows decide, per host (issue 12): which site accounts exist there (a client's
identity where it runs and on the servers it calls, a service account where its service runs
and on the clients it calls back), whom each firewall rule admits, and whether callbacks need
the anonymous fallback (guide §4.2 steps 10-12, §7.2) because the server's identity cannot
authenticate on the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dcomc.diagnostics import Span
from dcomc.front import catalog
from dcomc.front.load import Loaded, NodePath
from dcomc.front.spec import Server, Spec
from dcomc.plan.model import Flow, Principal, PrincipalKind
from dcomc.plan.principals import Resolver

ADMINISTRATORS = "S-1-5-32-544"
# Built-in service identities that a domain authenticates as the computer account; LOCAL
# SERVICE (S-1-5-19) reaches the network anonymously, and in a workgroup none authenticates.
COMPUTER_ACCOUNT_LOGONS = frozenset({"S-1-5-18", "S-1-5-20"})


def fold(name: str) -> str:
    return name.casefold()


def expand_hosts(spec: Spec, loaded: Loaded, names: Iterable[str]) -> list[str]:
    """Host keys for computer names and host range keys (`HMI[01-24]`: each of its hosts),
    as the spec writes them; unknown names are left out (checks report them, E103)."""
    by_name = {fold(h): h for h in spec.hosts}
    by_range: dict[str, list[str]] = {}
    for host, key in loaded.host_ranges.items():
        by_range.setdefault(fold(key), []).append(host)
    out: dict[str, None] = {}  # in first-seen order; a list searched per host was quadratic
    for name in names:
        found = by_range.get(fold(name)) or ([by_name[fold(name)]] if fold(name) in by_name
                                             else [])
        out.update(dict.fromkeys(found))
    return list(out)


def servers_on(spec: Spec) -> dict[str, list[str]]:
    """Server key → the hosts that run it, in spec order."""
    found: dict[str, list[str]] = {key: [] for key in spec.servers}
    for name, host in spec.hosts.items():
        for key in host.servers:
            found.setdefault(key, []).append(name)
    return found


def site_flows(spec: Spec, loaded: Loaded) -> tuple[Flow, ...]:
    """Every flow of the site, ordered by client host, client, server, server host."""
    running = servers_on(spec)
    # what a client calls does not depend on its host: worked out once per client
    called: dict[str, list[tuple[str, list[str], bool, Span | None]]] = {}
    flows: set[Flow] = set()
    for host_name, host in spec.hosts.items():
        for key in host.clients:
            if key not in called:
                called[key] = [
                    (server, targets, declared,
                     loaded.key_span(path) if isinstance(path[-1], str) else loaded.span(path))
                    for server, targets, path, declared in _called(spec, loaded, key, running)]
            for server, targets, declared, span in called[key]:
                flows.update(Flow(key, host_name, server, target, declared, span)
                             for target in targets)
    return tuple(sorted(flows, key=lambda f: (fold(f.client_host), f.client, f.server,
                                              fold(f.server_host))))


def _called(spec: Spec, loaded: Loaded, key: str, running: dict[str, list[str]]
            ) -> Iterator[tuple[str, list[str], NodePath, bool]]:
    """(server, its hosts this client calls, where that is written, declared) per server."""
    calls = spec.clients[key].calls if key in spec.clients else None
    if calls is None:
        for server, hosts in running.items():
            yield server, hosts, ("clients", key), False
    elif isinstance(calls, list):
        for i, server in enumerate(calls):
            yield server, running.get(server, []), ("clients", key, "calls", i), True
    else:
        for server, names in calls.items():
            chosen = {fold(h) for h in expand_hosts(spec, loaded, names)}
            hosts = [h for h in running.get(server, []) if fold(h) in chosen]
            yield server, hosts, ("clients", key, "calls", server), True


class SiteFlows:
    """The flows indexed by host: those served by a host, those a host's clients make."""

    def __init__(self, flows: tuple[Flow, ...]) -> None:
        self.all = flows
        self.served: dict[str, list[Flow]] = {}
        self.made: dict[str, list[Flow]] = {}
        for flow in flows:
            self.served.setdefault(fold(flow.server_host), []).append(flow)
            self.made.setdefault(fold(flow.client_host), []).append(flow)

    def into(self, host: str) -> list[Flow]:
        """Flows to the servers of `host`."""
        return self.served.get(fold(host), [])

    def out_of(self, host: str) -> list[Flow]:
        """Flows from the clients of `host`."""
        return self.made.get(fold(host), [])

    def callers(self, host: str, server: str | None = None) -> set[str]:
        """The other hosts whose clients call `host` (its server `server`, or any)."""
        return {f.client_host for f in self.into(host)
                if not f.local and (server is None or f.server == server)}

    def called_back_by(self, host: str, client: str | None = None) -> set[str]:
        """The other hosts whose servers call back `host` (its client `client`, or any)."""
        return {f.server_host for f in self.out_of(host)
                if not f.local and (client is None or f.client == client)}


# --- who runs as whom --------------------------------------------------------------------------


def process_mode(server: Server) -> str:
    return server.process_mode or ("service" if server.service_account else "interactive")


def server_service(server: Server) -> str | None:
    product = catalog.product(server.product) if server.product else None
    return server.service or (product.service if product else None)


def service_account(server: Server) -> str | None:
    """The server's Log On account when it runs as a service, else None (an interactive
    server runs as the launching user: the client's own identity)."""
    return server.service_account if process_mode(server) == "service" else None


def service_logons(spec: Spec, host: str) -> set[str]:
    """Accounts (folded) that log on a service of `host`: its servers' service accounts and
    the run_as of its clients that run inside a service."""
    h = spec.hosts[host]
    found = {fold(a) for k in h.servers if (a := service_account(spec.servers[k]))}
    return found | {fold(c.run_as) for k in h.clients
                    if (c := spec.clients[k]).service and c.run_as}


# --- account placement -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Which site accounts exist on a host: `accounts` holds the keys of accounts.users and
    accounts.groups (folded) placed there."""

    accounts: frozenset[str]

    def has(self, principal: Principal, res: Resolver) -> bool:
        """Whether `principal` is present on the host: a site account placed there, or a
        principal dcomc does not place (well-known, a domain account not listed, a SID)."""
        key = res.user_key(principal.name) or res.group_key(principal.name)
        return key is None or fold(key) in self.accounts


def placement(spec: Spec, res: Resolver, flows: SiteFlows, host: str,
              acl_names: Iterable[str], explicit: ExplicitHosts) -> Placement:
    """The site accounts a host needs: the identities of its flows and services, those its
    ACLs and limits name (`acl_names`) with the members of the groups among them; an
    account's own `hosts:` (`explicit`, from explicit_hosts) overrides all of that."""
    needed = _flow_identities(spec, flows, host) | service_logons(spec, host)
    named = {fold(k) for n in acl_names if (k := res.user_key(n) or res.group_key(n))}
    needed |= named | _members(spec, res, named)
    return Placement(frozenset(_placed(host, needed, explicit)))


def _flow_identities(spec: Spec, flows: SiteFlows, host: str) -> set[str]:
    """Client identities where they run and on the servers they call; service accounts on
    the clients they call back (so that the callbacks authenticate)."""
    found = {fold(c.run_as) for k in spec.hosts[host].clients
             if (c := spec.clients[k]).run_as}
    for flow in flows.into(host):
        run_as = spec.clients[flow.client].run_as
        if run_as:
            found.add(fold(run_as))
    for flow in flows.out_of(host):
        account = service_account(spec.servers[flow.server])
        if account:
            found.add(fold(account))
    return found


def _members(spec: Spec, res: Resolver, names: set[str]) -> set[str]:
    """Site users that are members of the site groups among `names` (an ACL that names a
    group admits its members, so they must exist where it does)."""
    groups = {fold(g) for g in spec.accounts.groups if fold(g) in names}
    found = {fold(m) for g, group in spec.accounts.groups.items() if fold(g) in groups
             for m in group.members}
    found |= {fold(u) for u, user in spec.accounts.users.items()
              if any(fold(g) in groups for g in user.member_of)}
    return {n for n in found if res.user_key(n) is not None}


ExplicitHosts = tuple[tuple[str, frozenset[str] | None], ...]


def explicit_hosts(spec: Spec, loaded: Loaded) -> ExplicitHosts:
    """Each site account's key (users, then groups) with the hosts (folded) of its `hosts:`,
    None without one: what placement takes, worked out once per site by its caller (once
    per host, it expanded every account's host list again for each host)."""
    accounts: list[tuple[str, list[str] | None]] = [
        *((u, user.hosts) for u, user in spec.accounts.users.items()),
        *((g, group.hosts) for g, group in spec.accounts.groups.items())]
    return tuple((key, None if hosts is None else frozenset(
        fold(h) for h in expand_hosts(spec, loaded, hosts))) for key, hosts in accounts)


def _placed(host: str, needed: set[str], explicit: ExplicitHosts) -> set[str]:
    """Site account keys (folded) placed on `host`: an account's `hosts:` when given, else
    whether `needed` (which may hold other names) has it."""
    placed: set[str] = set()
    for key, hosts in explicit:
        if hosts is not None:
            if fold(host) in hosts:
                placed.add(fold(key))
        elif fold(key) in needed:
            placed.add(fold(key))
    return placed


def service_accounts(spec: Spec) -> frozenset[str]:
    """The service accounts (folded) of every server of the site: what admin_applies takes,
    worked out once per site by its caller (once per host, it cost a loop over every server
    for each of 10,000 hosts)."""
    return frozenset(fold(a) for s in spec.servers.values() if (a := service_account(s)))


def admin_applies(spec: Spec, group: Principal, member: Principal, host: str,
                  accounts: frozenset[str]) -> bool:
    """`member_of: [Administrators]` of a server's service account (`accounts`: the site's,
    from service_accounts) applies only where one of its services runs (guide §3.2): on an
    HMI it would be a local administrator with the site's shared password for nothing."""
    if group.sid != ADMINISTRATORS:
        return True
    if fold(member.name) not in accounts:
        return True
    return fold(member.name) in service_logons(spec, host)


# --- callbacks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackIdentity:
    """Whether the identity a server calls back with authenticates on the client's host."""

    authenticates: bool
    why: str


def callback_identity(spec: Spec, res: Resolver, flow: Flow,
                      placed_on_client: Placement) -> CallbackIdentity:
    server = spec.servers[flow.server]
    account = service_account(server)
    if account is None:
        return CallbackIdentity(True, f"{flow.server} on {flow.server_host} runs as the "
                                "launching user, the client's own identity")
    principal = res.resolve(account)
    if principal is None:
        return CallbackIdentity(False, f"{flow.server} on {flow.server_host} logs on as "
                                f"{account}, unknown")
    return _authenticates(spec, res, flow, principal, placed_on_client)


def _authenticates(spec: Spec, res: Resolver, flow: Flow, principal: Principal,
                   placed: Placement) -> CallbackIdentity:
    who = f"{flow.server} on {flow.server_host} logs on as {principal.name}"
    domain = spec.site.identity != "workgroup"
    if principal.kind is PrincipalKind.DOMAIN:
        return CallbackIdentity(True, f"{who}, a domain account")
    if principal.kind is PrincipalKind.WELL_KNOWN or principal.kind is PrincipalKind.SID:
        ok = domain and principal.sid in COMPUTER_ACCOUNT_LOGONS
        return CallbackIdentity(ok, f"{who}, which reaches {flow.client_host} as "
                                + ("the computer account" if ok else "ANONYMOUS LOGON"))
    key = res.user_key(principal.name)
    if key is not None and spec.accounts.users[key].existing:
        return CallbackIdentity(False, f"{who}, an existing local account whose copy on "
                                f"{flow.client_host} dcomc cannot know")
    if not placed.has(principal, res):
        return CallbackIdentity(False, f"{who}, which does not exist on {flow.client_host}")
    return CallbackIdentity(True, f"{who}, created on {flow.client_host} too")


def fallback_reasons(spec: Spec, res: Resolver, flows: SiteFlows, host: str,
                     placed: Placement) -> list[str]:
    """Why the callbacks into `host` need the anonymous fallback (empty: they do not)."""
    reasons: list[str] = []
    for flow in flows.out_of(host):
        if flow.local:
            continue
        found = callback_identity(spec, res, flow, placed)
        if not found.authenticates and found.why not in reasons:
            reasons.append(found.why)
    return reasons
