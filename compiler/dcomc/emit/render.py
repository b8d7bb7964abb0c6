"""Human and JSON views of a plan (`dcomc plan`), in the spirit of `terraform plan`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from enum import Enum
from typing import Any

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
    RebootNotice,
    Resource,
    RpcPortRange,
    SecurityOption,
    ServiceLogon,
    ServiceStartMode,
    SitePlan,
    UserRight,
)
from dcomc.windows import sd
from dcomc.windows.sd import RightsKind
from dcomc.windows.sids import display_name

# --- JSON ------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for any IR value (dataclasses, enums, tuples)."""
    if isinstance(value, Resource):
        return resource_json(value)
    if isinstance(value, AceSpec):
        return {"principal": to_jsonable(value.principal), "mask": value.mask}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    return value


def resource_json(resource: Resource) -> dict[str, Any]:
    span = resource.prov.span
    return {
        "id": resource.id,
        "kind": resource.kind,
        "phase": resource.phase,
        "guide": resource.prov.guide,
        "source": str(span) if span else None,
        **{k: to_jsonable(v) for k, v in resource.fields_dict().items()},
    }


def plan_json(plan: SitePlan, hosts: list[HostPlan]) -> str:
    return json.dumps(plan_data(plan, hosts), indent=2, ensure_ascii=False)


def plan_data(plan: SitePlan, hosts: list[HostPlan]) -> dict[str, Any]:
    """What plan_json writes, as data: for a caller that adds to it before writing (`plan
    --json`), rather than parse 44 MB of JSON back for 10,000 hosts."""
    return {
        "site": plan.site,
        "identity": plan.identity,
        "domain": plan.domain,
        "hosts": [
            {"name": h.name, "address": h.address, "roles": list(h.roles),
             "resources": [resource_json(r) for r in h.resources]}
            for h in hosts
        ],
    }


# --- text ------------------------------------------------------------------------------------


def principal_text(p: Principal) -> str:
    if p.sid and p.name != p.sid:
        return f"{p.name} ({p.sid})"
    if p.sid:
        return display_name(p.sid)  # its English name when well-known, else the SID
    return f"{p.name} (SID resolved on the PC)"


def app_text(app: AppRef) -> str:
    if app.appid:
        return f"{app.key} AppID {app.appid}"
    via = app.progid or app.clsid
    return f"{app.key} AppID resolved on the PC from {via}"


def acl_text(which: str, aces: tuple[AceSpec, ...]) -> str:
    kind: RightsKind = "launch" if which == "launch" else "access"
    parts = [f"{principal_text(a.principal)}: {', '.join(sd.mask_to_rights(kind, a.mask))}"
             for a in aces]
    return "; ".join(parts)


_DESCRIBE: dict[type[Resource], Callable[[Any], str]] = {
    LocalUser: lambda r: f"local user {r.name!r}, password asked at install"
    + (", never expires" if r.password_never_expires else ""),
    LocalGroup: lambda r: f"local group {r.name!r}",
    GroupMember: lambda r: f"{principal_text(r.member)} member of {principal_text(r.group)}",
    UserRight: lambda r: f"grant {r.right} to {principal_text(r.principal)} (added to holders)",
    ServiceLogon: lambda r: f"service {r.service} logs on as {principal_text(r.account)}",
    AppIdAuthLevel: lambda r: f"{app_text(r.app)}: AuthenticationLevel = "
    + (f"{r.level} ({r.value})" if r.value is not None else "default (value deleted)"),
    AppIdRunLocation: lambda r: f"{app_text(r.app)}: run on this computer only",
    AppIdPermission: lambda r: f"{app_text(r.app)}: {r.which.title()}Permission "
    + ("+= " if r.mode == "add" else "= ") + acl_text(r.which, r.aces)
    + (" (added to the AppID's ACL)" if r.mode == "add" else " (replaces the ACL)"),
    AppIdRunAs: lambda r: f"{app_text(r.app)}: RunAs = "
    + (f"{r.value!r} ({r.identity})" if r.value else f"(deleted: {r.identity})"),
    RpcPortRange: lambda r: f"Rpc\\Internet Ports = {','.join(r.ports)}, "
    "PortsInternetAvailable = 'Y', UseInternetPorts = 'Y' (after a reboot)",
    MachineDcomValue: lambda r: f"Ole\\{r.name} = "
    + (repr(r.data) if r.data is not None else "(deleted)"),
    MachineLimitAddition: lambda r: f"Machine{r.which.title()}Restriction += "
    f"{principal_text(r.principal)}: {', '.join(sd.mask_to_rights(r.which, r.mask))}",
    FirewallRule: lambda r: f"firewall {r.name}: in TCP "
    + (f"port {r.local_port}" if r.local_port else
       f"program {r.program}" if r.program else f"service {r.service}")
    + f", profiles {','.join(r.profiles)}, from {','.join(r.remote)}",
    FirewallRuleGroup: lambda r: f"enable firewall group {r.group} ({r.display_name}), "
    f"profiles {','.join(r.profiles)}",
    ServiceStartMode: lambda r: f"service {r.service} start mode {r.mode}",
    SecurityOption: lambda r: f"{r.policy}: {r.value_name} = {r.value}",
    RebootNotice: lambda r: r.reason,
}


def describe(resource: Resource) -> str:
    return _DESCRIBE[type(resource)](resource)


def plan_text(plan: SitePlan, hosts: list[HostPlan]) -> str:
    lines = [f"Site {plan.site} ({plan.identity}"
             + (f", domain {plan.domain}" if plan.domain else "") + ")"]
    for host in hosts:
        lines += ["", f"Host {host.name} ({host.address}), roles: {', '.join(host.roles)}"]
        for r in host.resources:
            where = f"{r.prov.guide}; {r.prov.span}" if r.prov.span else r.prov.guide
            lines.append(f"  + {r.kind:<22} {describe(r)}")
            lines.append(f"    {'':<22} [{where}]")
        lines.append(f"  {len(host.resources)} resources")
    return "\n".join(lines) + "\n"
