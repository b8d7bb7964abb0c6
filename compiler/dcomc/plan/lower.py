"""Stage 4, lower: a checked spec → one sorted plan of resources per host.

Machine settings of a host come from layers, first found wins: the host's own `machine:`
override, then the spec's `machine.<role>`, then the guide's defaults (`ROLE_DEFAULTS`).
Sections merge key by key; a leaf value (a list, a principal map) is taken whole from the first
layer that sets it. A host with both roles gets both: its role-specific resources from each
role's settings, and the shared machine-wide ones combined (flags ORed, levels maxed, maps and
lists united) — never weaker than what either role alone asks for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dcomc.diagnostics import Span
from dcomc.front import catalog
from dcomc.front.load import Loaded, NodePath
from dcomc.front.spec import (
    AUTH_LEVEL_VALUES,
    IMPERSONATION_VALUES,
    RUN_AS_VALUES,
    Host,
    Server,
    Spec,
)
from dcomc.plan.flows import (
    ADMINISTRATORS,
    ExplicitHosts,
    Placement,
    SiteFlows,
    admin_applies,
    explicit_hosts,
    fallback_reasons,
    placement,
    server_service,
    service_account,
    service_accounts,
    site_flows,
)
from dcomc.plan.model import (
    AceSpec,
    AppIdAuthLevel,
    AppIdPermission,
    AppIdRunAs,
    AppIdRunLocation,
    AppRef,
    FirewallRule,
    FirewallRuleGroup,
    GroupMember,
    HostPlan,
    LocalGroup,
    LocalUser,
    MachineDcomValue,
    MachineLimitAddition,
    Principal,
    Provenance,
    RebootNotice,
    Resource,
    RpcPortRange,
    SecurityOption,
    ServiceLogon,
    ServiceStartMode,
    SitePlan,
    UserRight,
    sort_key,
)
from dcomc.plan.principals import Resolver
from dcomc.windows import sd

Role = Literal["server", "client"]

# The guide's defaults per role; every key the spec may leave out has its value here.
ROLE_DEFAULTS: dict[Role, dict[str, Any]] = {
    "server": {
        "opcenum": True,
        "dcom": {
            "enable": True,
            "authentication_level": "packet_integrity",  # §4.2 step 6
            "impersonation_level": "identify",  # §4.2 step 7
            "access_limits": {"ANONYMOUS LOGON": ["local_access", "remote_access"]},  # §4.2 s.10
            # launch_limits: no fixed default; see _launch_limits (§4.2 steps 13-21).
        },
        "firewall": {
            "open": "programs", "rpc_endpoint_mapper": True, "opcenum": True,
            "server_executables": True, "client_executables": False,
            "profiles": ["domain", "private"], "remote": "site",
        },
        "network_discovery": False,
        "security_policy": {"sharing_model": "classic"},  # §7.1: server side only
    },
    "client": {
        "opcenum": False,
        "dcom": {
            "enable": True,
            "authentication_level": "packet_integrity",
            "impersonation_level": "identify",
            "access_limits": {"ANONYMOUS LOGON": ["local_access", "remote_access"]},
            "launch_limits": {},
        },
        "firewall": {
            "open": "programs", "rpc_endpoint_mapper": True, "opcenum": False,
            "server_executables": False, "client_executables": True,
            "profiles": ["domain", "private"], "remote": "site",
        },
        "network_discovery": False,
        "security_policy": {"everyone_includes_anonymous": True},  # §7.2: client side only
    },
}

NETWORK_DISCOVERY_GROUP = "@FirewallAPI.dll,-32752"
# Services the guide's §6 note names; UPnP Device Host starts on demand, so it stays manual.
NETWORK_DISCOVERY_SERVICES: tuple[tuple[str, Literal["auto", "manual"]], ...] = (
    ("fdPHost", "auto"), ("FDResPub", "auto"), ("SSDPSRV", "auto"), ("upnphost", "manual"),
)
LSA_KEY = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Lsa"
_ANONYMOUS = "S-1-5-7"


@dataclass(frozen=True, slots=True)
class Setting:
    """An effective setting and where it came from (None: the built-in default)."""

    value: Any
    path: NodePath | None


def lower(spec: Spec, loaded: Loaded) -> SitePlan:
    flows = SiteFlows(site_flows(spec, loaded))
    resolver = Resolver(spec)  # one for the site: its lookup tables do not depend on the host
    shared: dict[Any, list[Resource]] = {}  # resources hosts have alike, lowered once
    accounts = service_accounts(spec)  # the site's, not each host's: one pass over the servers
    scopes: dict[frozenset[str], tuple[str, ...]] = {}  # `site` scopes by peer hosts, see _remote
    explicit = explicit_hosts(spec, loaded)  # accounts' `hosts:`, expanded once for the site
    hosts = tuple(
        _Host(spec, loaded, name, host, flows, resolver, shared, accounts, scopes,
              explicit).plan()
        for name, host in sorted(spec.hosts.items(), key=lambda kv: kv[0].casefold())
    )
    s = spec.site
    return SitePlan(s.name, s.description, s.identity, s.domain, hosts, flows.all)


def site_scope(addresses: Iterable[str]) -> tuple[str, ...]:
    """The `site` firewall scope: the hosts' addresses, adjacent ones collapsed into networks
    (10.7.3.0/24 instead of 256 addresses), so that a rule's remote list stays short and
    readable however large the site is."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for address in addresses:
        net = ipaddress.ip_network(address)
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [
        *ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    return tuple(str(n.network_address) if n.num_addresses == 1 else str(n) for n in nets)


class _Host:
    """Lowers one host. Methods named after the guide chapters they implement."""

    def __init__(
        self, spec: Spec, loaded: Loaded, name: str, host: Host, flows: SiteFlows,
        resolver: Resolver, shared: dict[Any, list[Resource]],
        service_accounts: frozenset[str], scopes: dict[frozenset[str], tuple[str, ...]],
        explicit: ExplicitHosts,
    ) -> None:
        self.spec, self.loaded, self.name, self.host = spec, loaded, name, host
        self.explicit = explicit
        self.service_accounts = service_accounts
        self.scopes = scopes
        self.flows = flows
        self.res = resolver
        self._placed: Placement | None = None
        self._fallback: str | None = None
        self._shared = shared
        roles: list[Role] = []
        if host.servers:
            roles.append("server")
        if host.clients:
            roles.append("client")
        self.roles = tuple(roles)
        self.out: list[Resource] = []
        self._layer_cache: dict[Role, list[tuple[Any, NodePath | None]]] = {}

    def plan(self) -> HostPlan:
        for step in (self._accounts, self._service_identity, self._appids, self._machine_dcom,
                     self._rpc_ports, self._firewall, self._policies, self._reboot):
            step()
        unique: dict[str, Resource] = {}
        for resource in self.out:  # the first cause of a resource is its provenance
            unique.setdefault(resource.id, resource)
        ordered = tuple(sorted(unique.values(), key=sort_key))
        return HostPlan(self.name, self.host.address, self.roles, ordered)

    # --- helpers ----------------------------------------------------------------------------

    def prov(self, path: NodePath | None, guide: str) -> Provenance:
        span: Span | None = self.loaded.span(path) if path is not None else None
        if path is None:
            span = self.loaded.key_span(("hosts", self.name))
        return Provenance(span, guide)

    def principal(self, name: str) -> Principal:
        found = self.res.resolve(name)
        if found is None:  # check.py refuses such specs before lowering
            raise AssertionError(f"unresolved principal {name!r} after checking")
        return found

    def _layers(self, role: Role) -> list[tuple[Any, NodePath | None]]:
        """First found wins: host override, machine.<role>, built-in defaults (dumped once)."""
        if role not in self._layer_cache:
            layers: list[tuple[Any, NodePath | None]] = []
            if self.host.machine is not None:
                layers.append((self.host.machine.model_dump(exclude_none=True),
                               ("hosts", self.name, "machine")))
            role_layer = getattr(self.spec.machine, role)
            if role_layer is not None:
                layers.append((role_layer.model_dump(exclude_none=True), ("machine", role)))
            layers.append((ROLE_DEFAULTS[role], None))
            self._layer_cache[role] = layers
        return self._layer_cache[role]

    def setting(self, role: Role, *keys: str) -> Setting:
        for data, base in self._layers(role):
            found, value = dig(data, keys)
            if found:
                return Setting(value, (*base, *keys) if base is not None else None)
        return Setting(None, None)

    def combined(self, *keys: str) -> list[Setting]:
        """The setting from each of the host's roles (for machine-wide resources)."""
        return [self.setting(role, *keys) for role in self.roles]

    # --- §2 users and groups ----------------------------------------------------------------

    def placed(self) -> Placement:
        """The site accounts this host needs (flows.placement), worked out once."""
        if self._placed is None:
            self._placed = placement(self.spec, self.res, self.flows, self.name,
                                     self._acl_names(), self.explicit)
        return self._placed

    def _acl_names(self) -> list[str]:
        """Every principal this host's AppID ACLs and machine limits name."""
        names = [n for k in self.host.servers for n in (*self.spec.servers[k].launch,
                                                       *self.spec.servers[k].access)]
        for role in self.roles:
            for which in ("access_limits", "launch_limits"):
                names += list(self.setting(role, "dcom", which).value or {})
        return names

    def fallback_note(self) -> str:
        """Why this host's callbacks need the anonymous fallback (guide §4.2 steps 10-12,
        §7.2), as provenance text; "" when every server calling back authenticates here."""
        if self._fallback is None:
            reasons = fallback_reasons(self.spec, self.res, self.flows, self.name,
                                       self.placed()) if "client" in self.roles else []
            self._fallback = ("; anonymous callback fallback: " + "; ".join(reasons)
                              if reasons else "")
        return self._fallback

    def _accounts(self) -> None:
        # §2.1: an account exists where a flow, a service or an ACL of this host needs it
        # (flows.placement); hosts that need the same accounts share one lowering.
        placed = self.placed()
        admins = frozenset(self._admin_members())
        accounts = self._shared.get((placed, admins))
        if accounts is None:
            accounts = self._shared[(placed, admins)] = self._lower_accounts(placed, admins)
        self.out.extend(accounts)

    def _admin_members(self) -> Iterator[str]:
        """Users whose `member_of: [Administrators]` applies on this host (flows.admin_applies:
        a service account's only where its service runs)."""
        for name, user in self.spec.accounts.users.items():
            member = self.principal(name)
            for group in user.member_of:
                if not admin_applies(self.spec, self.principal(group), member, self.name,
                                     self.service_accounts):
                    yield name

    def _lower_accounts(self, placed: Placement, not_admin: frozenset[str]) -> list[Resource]:
        out: list[Resource] = []
        for name, user in self.spec.accounts.users.items():
            path: NodePath = ("accounts", "users", name)
            if not placed.has(self.principal(name), self.res):
                continue
            if not user.existing:
                out.append(LocalUser(f"local_user:{name}", self.prov(path, "§2.2"), name,
                                     user.description or "", user.password_never_expires))
            out += [self._member(group, name, (*path, "member_of", i))
                    for i, group in enumerate(user.member_of)
                    if not (name in not_admin and self.principal(group).sid == ADMINISTRATORS)]
        for name, group_def in self.spec.accounts.groups.items():
            gpath: NodePath = ("accounts", "groups", name)
            if not placed.has(self.principal(name), self.res):
                continue
            if not group_def.existing:
                out.append(LocalGroup(f"local_group:{name}", self.prov(gpath, "§2.3"), name,
                                      group_def.description or ""))
            out += [self._member(name, member, (*gpath, "members", i))
                    for i, member in enumerate(group_def.members)
                    if placed.has(self.principal(member), self.res)]
        return [r for r in out if not isinstance(r, GroupMember)
                or placed.has(r.group, self.res)]

    def _member(self, group: str, member: str, path: NodePath) -> GroupMember:
        g, m = self.principal(group), self.principal(member)
        return GroupMember(f"group_member:{g.name}/{m.name}", self.prov(path, "§2.4"), g, m)

    # --- §3 server runtime: service identity ------------------------------------------------

    def _service_identity(self) -> None:
        for key in self.host.servers:
            server = self.spec.servers[key]
            service, account = server_service(server), service_account(server)
            if service and account:
                path: NodePath = ("servers", key, "service_account")
                self._logon(service, account, path, "§3.2")
        for key in self.host.clients:
            client = self.spec.clients[key]
            if client.service and client.run_as:
                self._logon(client.service, client.run_as, ("clients", key, "run_as"),
                            "§5.2 step 4, §2.1 note")

    def _logon(self, service: str, account: str, path: NodePath, guide: str) -> None:
        principal = self.principal(account)
        # Win32_Service.Change grants no "Log on as a service" (docs/windows.md#service-logon).
        self.out.append(UserRight(f"user_right:SeServiceLogonRight/{principal.name}",
                                  self.prov(path, guide), "SeServiceLogonRight", principal))
        self.out.append(ServiceLogon(f"service_logon:{service}", self.prov(path, guide),
                                     service, principal))

    # --- §4.1 application DCOM settings -----------------------------------------------------

    def _appids(self) -> None:
        for key in self.host.servers:
            server = self.spec.servers[key]
            app = _app_ref(key, server)
            base: NodePath = ("servers", key)
            level = server.authentication_level
            self._appid(app, level, base, _aces(self, server.launch, "launch"),
                        _aces(self, server.access, "access"), server.permissions)
            if server.run_as is not None:
                self._run_as(app, server.run_as, (*base, "run_as"))
        if "server" in self.roles and self.setting("server", "opcenum").value:
            self._opcenum()

    def _appid(
        self, app: AppRef, level: str, base: NodePath,
        launch: tuple[AceSpec, ...], access: tuple[AceSpec, ...],
        mode: Literal["add", "exact"],
    ) -> None:
        value = AUTH_LEVEL_VALUES[level] if level != "default" else None
        self.out.append(AppIdAuthLevel(f"appid_auth_level:{app.key}",
                                       self.prov((*base, "authentication_level"), "§4.1 step 6"),
                                       app, level, value))
        self.out.append(AppIdRunLocation(f"appid_run_location:{app.key}",
                                         self.prov(base, "§4.1 steps 7-8"), app))
        for which, aces, guide in (("launch", launch, "§4.1 steps 10-18"),
                                   ("access", access, "§4.1 steps 19-28")):
            if aces:
                self.out.append(AppIdPermission(f"appid_permission:{app.key}/{which}",
                                                self.prov((*base, which), guide),
                                                app, which, aces,  # type: ignore[arg-type]
                                                mode))

    def _run_as(self, app: AppRef, identity: str, path: NodePath) -> None:
        # The Identity tab (guide §3, §4.1); an account ("this user") is refused by check.
        choice: Literal["interactive_user", "launching_user"] = (
            "interactive_user" if identity == "interactive_user" else "launching_user")
        self.out.append(AppIdRunAs(f"appid_run_as:{app.key}", self.prov(path, "§3, §4.1"),
                                   app, choice, RUN_AS_VALUES[choice]))

    def _opcenum(self) -> None:
        # OPCEnum registers itself with Everyone allowed and AuthenticationLevel None
        # (docs/windows.md#catalog). dcomc narrows it to the principals of this host's servers and
        # raises it to the machine default level (KB5004442, docs/windows.md#kb5004442).
        product = catalog.products()[catalog.OPCENUM]
        app = AppRef(catalog.OPCENUM, product.name, product.progid, product.clsid,
                     product.appid, product.bitness)
        level = self.setting("server", "dcom", "authentication_level")
        servers = [self.spec.servers[k] for k in self.host.servers]
        launch = _union(_aces(self, s.launch, "launch") for s in servers)
        access = _union(_aces(self, s.access, "access") for s in servers)
        path = self.setting("server", "opcenum").path
        # Exact: OPCEnum's own ACL lets Everyone in, which adding to would keep.
        self._appid(app, str(level.value), path or ("hosts", self.name), launch, access,
                    "exact")

    # --- §4.2 machine-wide DCOM -------------------------------------------------------------

    def _machine_dcom(self) -> None:
        enable = self.combined("dcom", "enable")
        auth = self.combined("dcom", "authentication_level")
        imp = self.combined("dcom", "impersonation_level")
        auth_level = max((s.value for s in auth), key=AUTH_LEVEL_VALUES.__getitem__)
        imp_level = max((s.value for s in imp), key=IMPERSONATION_VALUES.__getitem__)
        values: list[tuple[str, Literal["REG_SZ", "REG_DWORD"], str | int | None, Setting, str]] = [
            ("EnableDCOM", "REG_SZ", "Y" if any(s.value for s in enable) else "N",
             _first_set(enable), "§4.2 step 5"),
            ("LegacyAuthenticationLevel", "REG_DWORD", _level_or_delete(auth_level,
             AUTH_LEVEL_VALUES), _first_set(auth), "§4.2 step 6"),
            ("LegacyImpersonationLevel", "REG_DWORD", _level_or_delete(imp_level,
             IMPERSONATION_VALUES), _first_set(imp), "§4.2 step 7"),
        ]
        for name, rtype, data, setting, guide in values:
            self.out.append(MachineDcomValue(f"machine_dcom_value:{name}",
                                             self.prov(setting.path, guide), name, rtype, data))
        self._limits("access", "§4.2 steps 9-12")
        self._limits("launch", "§4.2 steps 13-21")

    def _limits(self, which: Literal["access", "launch"], guide: str) -> None:
        masks: dict[Principal, tuple[int, NodePath | None]] = {}
        for role in self.roles:
            for principal, mask, path in self._role_limits(role, which):
                old_mask, old_path = masks.get(principal, (0, None))
                masks[principal] = (old_mask | mask, old_path or path)
        for principal, (mask, path) in masks.items():
            rid = f"machine_limit_addition:{which}/{principal.sid or principal.name}"
            note = self.fallback_note() if path is None and principal.sid == _ANONYMOUS else ""
            self.out.append(MachineLimitAddition(rid, self.prov(path, guide + note), which,
                                                 principal, mask))

    def _role_limits(self, role: Role, which: Literal["access", "launch"]
                     ) -> Iterator[tuple[Principal, int, NodePath | None]]:
        setting = self.setting(role, "dcom", f"{which}_limits")
        if role == "client" and setting.path is None and not self.fallback_note():
            return  # the anonymous callback fallback, only where callbacks need it
        if setting.value is None and which == "launch" and role == "server":
            # §4.2 steps 13-21 add "the user or group" of §4.1 to the launch limit: by default
            # every principal that may launch one of this host's servers.
            for key in self.host.servers:
                server = self.spec.servers[key]
                for ace in _aces(self, server.launch, "launch"):
                    yield ace.principal, ace.mask, ("servers", key, "launch")
            return
        for name, rights in (setting.value or {}).items():
            mask = sd.rights_to_mask(which, rights)
            path = (*setting.path, name) if setting.path else None
            yield self.principal(name), mask, path

    # --- §5 a fixed RPC port range ----------------------------------------------------------

    def rpc_ranges(self) -> tuple[tuple[str, ...], NodePath | None]:
        """The host's RPC port ranges (each role's, for a host with both) and where the first
        comes from; () when RPC keeps Windows' dynamic range."""
        found = [s for s in self.combined("rpc_ports") if s.value]
        ranges = tuple(sorted({str(s.value) for s in found}, key=_range_start))
        return ranges, found[0].path if found else None

    def _rpc_ports(self) -> None:
        ranges, path = self.rpc_ranges()
        if ranges:
            self.out.append(RpcPortRange("rpc_port_range", self.prov(path, "§5"), ranges))

    # --- §5 firewall, §6 network discovery --------------------------------------------------

    def _firewall(self) -> None:
        _Firewall(self).emit()

    # --- §7 local security policy, §4.3 reboot ----------------------------------------------

    def _policies(self) -> None:
        sharing = [s for s in self.combined("security_policy", "sharing_model") if s.value]
        if sharing:
            classic = any(s.value == "classic" for s in sharing)
            chosen = next(s for s in sharing if (s.value == "classic") == classic)
            self.out.append(SecurityOption(
                "security_option:ForceGuest", self.prov(chosen.path, "§7.1"), "ForceGuest",
                LSA_KEY, "ForceGuest", 0 if classic else 1,
                "Network access: Sharing and security model for local accounts"))
        anon = [s for s in self.combined("security_policy", "everyone_includes_anonymous")
                if s.value is not None and (s.path is not None or self.fallback_note())]
        if anon:
            on = any(s.value for s in anon)
            chosen = next(s for s in anon if bool(s.value) == on)
            note = self.fallback_note() if chosen.path is None else ""
            self.out.append(SecurityOption(
                "security_option:EveryoneIncludesAnonymous",
                self.prov(chosen.path, "§7.2" + note),
                "EveryoneIncludesAnonymous", LSA_KEY, "EveryoneIncludesAnonymous", int(on),
                "Network access: Let Everyone permissions apply to anonymous users"))

    def _reboot(self) -> None:
        reason = "DCOM machine settings may only take effect after a reboot (guide §4.3)"
        if self.rpc_ranges()[0]:  # RPC reads its port range when it starts
            reason += "; the RPC port range takes effect only after a reboot"
        self.out.append(RebootNotice("reboot", self.prov(None, "§4.3"), reason))


class _Firewall:
    """Firewall rules of one host (guide §5.1 server side, §5.2 client side, §6)."""

    def __init__(self, host: _Host) -> None:
        self.h = host
        self.site = host.spec.site.name

    def emit(self) -> None:
        h = self.h
        epmap = [s for s in h.combined("firewall", "rpc_endpoint_mapper") if s.value]
        if epmap:
            self._rule("rpc-epmap", "RPC endpoint mapper (TCP 135)", list(h.roles), epmap[0],
                       "§5.1 step 3, §5.2 step 3", local_port="135")
        # `open: rpc_ports`: the role's program rules become one rule for the port range.
        by_ports = [r for r in h.roles if h.setting(r, "firewall", "open").value == "rpc_ports"]
        if "server" in h.roles and "server" not in by_ports:
            self._server_rules()
        if "client" in h.roles and "client" not in by_ports:
            self._client_rules()
        self._port_rule([r for r in by_ports if self._opens_programs(r)])
        self._network_discovery()

    def _opens_programs(self, role: Role) -> bool:
        """Whether the role's settings would open any program (what the port range replaces)."""
        h = self.h
        if role == "client":
            return bool(h.setting("client", "firewall", "client_executables").value)
        opcenum = h.setting("server", "firewall", "opcenum").value and h.setting(
            "server", "opcenum").value
        return bool(opcenum or h.setting("server", "firewall", "server_executables").value)

    def _port_rule(self, roles: list[Role]) -> None:
        ranges, _ = self.h.rpc_ranges()
        if not roles or not ranges:  # check refuses open: rpc_ports without a range (E320)
            return
        origin = self.h.setting(roles[0], "firewall", "open")
        self._rule("rpc-ports", f"RPC dynamic ports {','.join(ranges)}", roles, origin,
                   "§5", local_port=",".join(ranges))

    def _server_rules(self) -> None:
        h = self.h
        on = h.setting("server", "firewall", "opcenum")
        if on.value and h.setting("server", "opcenum").value:
            exe = catalog.products()[catalog.OPCENUM].executable
            self._rule("opcenum", "OPCEnum (OpcEnum.exe)", ["server"], on, "§5.1 step 4",
                       program=exe)
        on = h.setting("server", "firewall", "server_executables")
        if not on.value:
            return
        for key in h.host.servers:
            exe = _server_executable(h.spec.servers[key])
            if exe:
                path = Setting(True, ("servers", key))
                self._rule(f"server-{key}", f"OPC server {key}", ["server"], path,
                           "§5.1 step 5", program=exe, peers=h.flows.callers(h.name, key))

    def _client_rules(self) -> None:
        h = self.h
        if not h.setting("client", "firewall", "client_executables").value:
            return
        for key in h.host.clients:
            client = h.spec.clients[key]
            path = Setting(True, ("clients", key))
            # OPC callbacks make the client a DCOM server too: it needs an inbound
            # rule (docs/windows.md#callbacks); a client inside a service is allowed by name.
            program, service = (client.executable, None) if client.executable else (
                None, client.service)
            self._rule(f"client-{key}", f"OPC client {key}", ["client"], path, "§5.2 step 4",
                       program=program, service=service,
                       peers=h.flows.called_back_by(h.name, key))

    def _rule(self, key: str, title: str, roles: list[Role], origin: Setting, guide: str,
              *, local_port: str | None = None, program: str | None = None,
              service: str | None = None, peers: set[str] | None = None) -> None:
        profiles = sorted({p for r in roles
                           for p in self.h.setting(r, "firewall", "profiles").value})
        remote = self._remote(roles, peers)
        if not remote:
            return  # no flow needs it: a rule without remote addresses would admit everyone
        name = f"dcomc-{self.site}-{key}"
        desc = f"dcomc site {self.site}: {title}, inbound (DCOM guide {guide})"
        self.h.out.append(FirewallRule(
            f"firewall_rule:{name}", self.h.prov(origin.path, guide), name,
            f"dcomc {self.site}: {title}", desc, "TCP", local_port, program, service,
            tuple(profiles), remote))

    def _remote(self, roles: list[Role], peers: set[str] | None) -> tuple[str, ...]:
        """`any`, the spec's addresses, or for `site` the addresses of the hosts whose flows
        need the rule: `peers`, by default a server's callers and a client's calling-back
        servers."""
        found: set[str] = set()
        for role in roles:
            value = self.h.setting(role, "firewall", "remote").value
            if value == "any":
                return ("any",)
            if value != "site":
                found.update(value)
                continue
            hosts = frozenset(peers if peers is not None else self._peers(role))
            found.update(self._site_scope(hosts))
        return tuple(sorted(found))

    def _site_scope(self, hosts: frozenset[str]) -> tuple[str, ...]:
        """site_scope of these hosts' addresses, collapsed once per distinct set of hosts for
        the whole site: the hosts of a cell, or every client of a site, have the same peers,
        and collapsing 10,000 addresses again for each of their rules was most of lowering."""
        scope = self.h.scopes.get(hosts)
        if scope is None:
            scope = self.h.scopes[hosts] = site_scope(
                self.h.spec.hosts[p].address for p in hosts)
        return scope

    def _peers(self, role: Role) -> set[str]:
        flows, name = self.h.flows, self.h.name
        return flows.callers(name) if role == "server" else flows.called_back_by(name)

    def _network_discovery(self) -> None:
        h = self.h
        wanted = [s for s in h.combined("network_discovery") if s.value]
        if not wanted:
            return  # false leaves network discovery as it is
        origin = wanted[0]
        profiles = sorted({p for r in h.roles for p in h.setting(r, "firewall", "profiles").value})
        h.out.append(FirewallRuleGroup(f"firewall_rule_group:{NETWORK_DISCOVERY_GROUP}",
                                       h.prov(origin.path, "§6"), NETWORK_DISCOVERY_GROUP,
                                       "Network Discovery", tuple(profiles)))
        for service, mode in NETWORK_DISCOVERY_SERVICES:
            h.out.append(ServiceStartMode(f"service_start_mode:{service}",
                                          h.prov(origin.path, "§6 note"), service, mode))


# --- small pure helpers ---------------------------------------------------------------------


def dig(data: Any, keys: Iterable[str]) -> tuple[bool, Any]:
    """(found, value) at a key path in nested dicts."""
    node = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _aces(host: _Host, mapping: Mapping[str, Sequence[str]],
          which: Literal["launch", "access"]) -> tuple[AceSpec, ...]:
    masks: dict[Principal, int] = {}
    for name, rights in mapping.items():
        principal = host.principal(name)
        masks[principal] = masks.get(principal, 0) | sd.rights_to_mask(which, rights)
    return tuple(AceSpec(p, m) for p, m in sorted(masks.items()))


def _union(acls: Iterable[tuple[AceSpec, ...]]) -> tuple[AceSpec, ...]:
    masks: dict[Principal, int] = {}
    for acl in acls:
        for ace in acl:
            masks[ace.principal] = masks.get(ace.principal, 0) | ace.mask
    return tuple(AceSpec(p, m) for p, m in sorted(masks.items()))


def _range_start(text: str) -> int:
    return int(text.split("-")[0])


def _first_set(settings: list[Setting]) -> Setting:
    return next((s for s in settings if s.path is not None), settings[0])


def _level_or_delete(level: str, table: dict[str, int]) -> int | None:
    """`default` deletes the value, so Windows' own default applies."""
    return None if level == "default" else table[level]


def _server_executable(server: Server) -> str | None:
    product = catalog.product(server.product) if server.product else None
    return server.executable or (product.executable if product else None)


def _app_ref(key: str, server: Server) -> AppRef:
    product = catalog.product(server.product) if server.product else None
    return AppRef(
        key=key,
        name=product.name if product else key,
        progid=server.progid or (product.progid if product else None),
        clsid=server.clsid or (product.clsid if product else None),
        appid=server.appid or (product.appid if product else None),
        bitness=server.bitness or (product.bitness if product else None),
    )
