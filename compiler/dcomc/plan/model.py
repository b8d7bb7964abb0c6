"""The IR: a frozen, ordered list of typed resources per host — what every target emits from.

Each resource kind is a frozen dataclass with a stable `id`, a `kind` name, a `phase` that
places it in the guide's dependency order, and its provenance (the spec node that caused it
and the guide section it automates). Targets never look at the spec, only at this.

Phases follow the guide's dependencies (issue 2 §5): accounts first (everything else names
them), then the service identity (guide §3 caution: AppID settings are reset when the process
mode changes, so identity and mode go before the AppID), then AppID security, machine DCOM,
firewall, local policies, and last whatever needs a reboot (guide §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Literal

from dcomc.diagnostics import Span


@dataclass(frozen=True, slots=True)
class Provenance:
    span: Span | None
    guide: str


class PrincipalKind(StrEnum):
    WELL_KNOWN = "well_known"  # SID fixed by Windows (Everyone, Administrators, ...)
    LOCAL = "local"  # a local account the site creates; SID differs per PC, resolved on target
    DOMAIN = "domain"  # DOMAIN\name; SID known only if the spec gives it
    SID = "sid"  # a raw SID written in the spec


@dataclass(frozen=True, slots=True, order=True)
class Principal:
    name: str
    kind: PrincipalKind
    sid: str | None = None

    @property
    def static(self) -> bool:
        """True when the SID is known at compile time (no lookup on the target)."""
        return self.sid is not None


@dataclass(frozen=True, slots=True, order=True)
class AceSpec:
    """One allow entry of a COM ACL: principal and COM rights mask (EXECUTE included)."""

    principal: Principal
    mask: int


@dataclass(frozen=True, slots=True)
class AppRef:
    """How the target finds an AppID: given, or resolved ProgID → CLSID → AppID at apply time."""

    key: str
    name: str
    progid: str | None
    clsid: str | None
    appid: str | None
    # None: neither the spec nor the catalog says; the engine uses the one registry view the
    # CLSID is registered in, and refuses a CLSID registered in both (docs/windows.md#wow64).
    bitness: Literal[32, 64] | None


@dataclass(frozen=True, slots=True)
class Resource:
    kind: ClassVar[str] = "resource"
    phase: ClassVar[int] = 0

    id: str
    prov: Provenance = field(compare=False)

    def fields_dict(self) -> dict[str, Any]:
        """The resource's own data (no id, no provenance), for plan output and round trips."""
        return {name: getattr(self, name) for name in data_fields(type(self))}


_DATA_FIELDS: dict[type, tuple[str, ...]] = {}


def data_fields(cls: type[Resource]) -> tuple[str, ...]:
    """The names of a resource kind's own data fields (no id, no provenance), in order; looked
    up once per kind (the emitters ask for every resource)."""
    found = _DATA_FIELDS.get(cls)
    if found is None:
        found = tuple(f.name for f in fields(cls) if f.name not in ("id", "prov"))
        _DATA_FIELDS[cls] = found
    return found


@dataclass(frozen=True, slots=True)
class LocalUser(Resource):
    kind: ClassVar[str] = "local_user"
    phase: ClassVar[int] = 10
    name: str
    description: str
    password_never_expires: bool


@dataclass(frozen=True, slots=True)
class LocalGroup(Resource):
    kind: ClassVar[str] = "local_group"
    phase: ClassVar[int] = 11
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class GroupMember(Resource):
    kind: ClassVar[str] = "group_member"
    phase: ClassVar[int] = 12
    group: Principal
    member: Principal


@dataclass(frozen=True, slots=True)
class UserRight(Resource):
    """A user right added to (never replacing) the holders the right already has."""

    kind: ClassVar[str] = "user_right"
    phase: ClassVar[int] = 20
    right: str
    principal: Principal


@dataclass(frozen=True, slots=True)
class ServiceLogon(Resource):
    kind: ClassVar[str] = "service_logon"
    phase: ClassVar[int] = 21
    service: str
    account: Principal


@dataclass(frozen=True, slots=True)
class AppIdAuthLevel(Resource):
    """AppID AuthenticationLevel; value None deletes it (machine default applies)."""

    kind: ClassVar[str] = "appid_auth_level"
    phase: ClassVar[int] = 30
    app: AppRef
    level: str
    value: int | None


@dataclass(frozen=True, slots=True)
class AppIdRunLocation(Resource):
    """\"Run application on this computer\" only: RemoteServerName and ActivateAtStorage absent."""

    kind: ClassVar[str] = "appid_run_location"
    phase: ClassVar[int] = 31
    app: AppRef


@dataclass(frozen=True, slots=True)
class AppIdPermission(Resource):
    """LaunchPermission or AccessPermission of an AppID. Mode `add` (the guide's Customize):
    the ACEs are added to the AppID's ACL, else the PC's machine default, else Windows'
    documented default; `exact`: the ACL is exactly these ACEs."""

    kind: ClassVar[str] = "appid_permission"
    phase: ClassVar[int] = 32
    app: AppRef
    which: Literal["launch", "access"]
    aces: tuple[AceSpec, ...]
    mode: Literal["add", "exact"]


@dataclass(frozen=True, slots=True)
class AppIdRunAs(Resource):
    """The AppID's RunAs value (the Identity tab): "Interactive User", or value None, absent,
    which is "the launching user" (docs/windows.md#runas)."""

    kind: ClassVar[str] = "appid_run_as"
    phase: ClassVar[int] = 33
    app: AppRef
    identity: Literal["interactive_user", "launching_user"]
    value: str | None


@dataclass(frozen=True, slots=True)
class MachineDcomValue(Resource):
    """A value under HKLM\\SOFTWARE\\Microsoft\\Ole; data None deletes it."""

    kind: ClassVar[str] = "machine_dcom_value"
    phase: ClassVar[int] = 40
    name: str
    type: Literal["REG_SZ", "REG_DWORD"]
    data: str | int | None


@dataclass(frozen=True, slots=True)
class MachineLimitAddition(Resource):
    """Rights ADDED to MachineAccessRestriction / MachineLaunchRestriction (never replaced)."""

    kind: ClassVar[str] = "machine_limit_addition"
    phase: ClassVar[int] = 41
    which: Literal["access", "launch"]
    principal: Principal
    mask: int


@dataclass(frozen=True, slots=True)
class RpcPortRange(Resource):
    """The RPC dynamic ports restricted to `ports` (HKLM\\SOFTWARE\\Microsoft\\Rpc\\Internet:
    Ports, PortsInternetAvailable Y, UseInternetPorts Y); effective after a reboot
    (docs/windows.md#rpc-ports)."""

    kind: ClassVar[str] = "rpc_port_range"
    phase: ClassVar[int] = 42
    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallRule(Resource):
    kind: ClassVar[str] = "firewall_rule"
    phase: ClassVar[int] = 50
    name: str
    display_name: str
    description: str
    protocol: Literal["TCP", "any"]
    local_port: str | None
    program: str | None
    service: str | None
    profiles: tuple[str, ...]
    remote: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallRuleGroup(Resource):
    """A built-in rule group, named by its resource string (never its localized name)."""

    kind: ClassVar[str] = "firewall_rule_group"
    phase: ClassVar[int] = 51
    group: str
    display_name: str
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceStartMode(Resource):
    kind: ClassVar[str] = "service_start_mode"
    phase: ClassVar[int] = 52
    service: str
    mode: Literal["auto", "manual"]


@dataclass(frozen=True, slots=True)
class SecurityOption(Resource):
    """A security option backed by a registry value (secedit [Registry Values])."""

    kind: ClassVar[str] = "security_option"
    phase: ClassVar[int] = 60
    name: str
    key: str
    value_name: str
    value: int
    policy: str


@dataclass(frozen=True, slots=True)
class RebootNotice(Resource):
    kind: ClassVar[str] = "reboot"
    phase: ClassVar[int] = 90
    reason: str


RESOURCE_KINDS: tuple[type[Resource], ...] = (
    LocalUser, LocalGroup, GroupMember, UserRight, ServiceLogon, AppIdAuthLevel,
    AppIdRunLocation, AppIdPermission, AppIdRunAs, MachineDcomValue, MachineLimitAddition,
    RpcPortRange, FirewallRule, FirewallRuleGroup, ServiceStartMode, SecurityOption,
    RebootNotice,
)


@dataclass(frozen=True, slots=True)
class HostPlan:
    name: str
    address: str
    roles: tuple[str, ...]
    resources: tuple[Resource, ...]
    # resources by kind, in plan order: every target asks for kinds, host after host
    _by_kind: dict[type, tuple[Resource, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[type, list[Resource]] = {}
        for r in self.resources:
            index.setdefault(type(r), []).append(r)
        object.__setattr__(self, "_by_kind", {k: tuple(v) for k, v in index.items()})

    def of_kind(self, cls: type[Resource]) -> list[Any]:
        if cls in RESOURCE_KINDS:  # a leaf kind: no subclass to look for
            return list(self._by_kind.get(cls, ()))
        return [r for r in self.resources if isinstance(r, cls)]


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """One DCOM flow: a client on a host calls a server on a host (and the server calls the
    client back). `declared`: written in the client's `calls`, not the implicit "every client
    calls every server" of a spec without it. `span` is where the flow is written (the
    `calls` entry, else the client's key)."""

    client: str
    client_host: str
    server: str
    server_host: str
    declared: bool = field(compare=False)
    span: Span | None = field(compare=False)

    @property
    def local(self) -> bool:
        """Client and server on one PC: no network, no firewall, local rights."""
        return self.client_host.casefold() == self.server_host.casefold()

    def text(self) -> str:
        return f"{self.client} on {self.client_host} → {self.server} on {self.server_host}"


@dataclass(frozen=True, slots=True)
class SitePlan:
    site: str
    description: str | None
    identity: str
    domain: str | None
    hosts: tuple[HostPlan, ...]
    flows: tuple[Flow, ...] = ()

    def host(self, name: str) -> HostPlan:
        for host in self.hosts:
            if host.name.casefold() == name.casefold():
                return host
        raise KeyError(name)


def sort_key(resource: Resource) -> tuple[int, str]:
    return (resource.phase, resource.id)
