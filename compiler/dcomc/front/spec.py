"""Stage 2, spec: the pydantic mirror of a site spec (format version 1).

These models only check shape: keys, types and enumerations. Everything that needs the whole
spec (references, principals, names, formats) is in `dcomc.checks`, which reports with spans.
Every field carries its meaning and the guide section it automates; `docs/spec.md` and the
JSON Schema (`dcomc schema`) are generated from these descriptions, so they cannot drift apart.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from dcomc.checks.names import DESCRIPTION_MAX, GROUP_NAME_MAX, USER_NAME_MAX
from dcomc.diagnostics import Diagnostics, did_you_mean
from dcomc.front import catalog
from dcomc.front.load import Loaded, NodePath

AuthLevel = Literal[
    "default", "none", "connect", "call", "packet", "packet_integrity", "packet_privacy"
]
ImpersonationLevel = Literal["default", "anonymous", "identify", "impersonate", "delegate"]
LaunchRight = Literal["local_launch", "remote_launch", "local_activation", "remote_activation"]
AccessRight = Literal["local_access", "remote_access"]
Profile = Literal["domain", "private", "public"]

# Values of RPC_C_AUTHN_LEVEL_* and RPC_C_IMP_LEVEL_* (docs/windows.md#authentication-levels).
AUTH_LEVEL_VALUES: dict[str, int] = {
    "default": 0, "none": 1, "connect": 2, "call": 3,
    "packet": 4, "packet_integrity": 5, "packet_privacy": 6,
}
IMPERSONATION_VALUES: dict[str, int] = {
    "default": 0, "anonymous": 1, "identify": 2, "impersonate": 3, "delegate": 4,
}
# servers.<s>.run_as → the AppID RunAs value (None: no value, "the launching user").
RUN_AS_VALUES: dict[str, str | None] = {
    "interactive_user": "Interactive User", "launching_user": None,
}
RPC_PORTS_PATTERN = r"^[0-9]{1,5}-[0-9]{1,5}$"


# --- what the JSON Schema says beyond the models ----------------------------------------------
# The models accept what `check` refuses with its own codes, messages and spans (E1xx-E3xx);
# the JSON Schema (`dcomc schema`, for editors) refuses as much of that as a schema can say.
# So these keywords reach the schema only, never validation. The patterns are ECMA-262 and
# Python alike (editors run the first, tests the second), ASCII-only ([0-9], not \d), and
# tests/unit/test_schema.py holds each to the check it mirrors and lists the codes it catches.


class SchemaOnly:
    """JSON Schema keywords added to a type's schema, never to its validation; `label` names
    the format in docs/spec.md. A callable value is called when the schema is made (the
    catalog is read then, not when this module is imported)."""

    def __init__(self, label: str = "", **keywords: Any) -> None:
        self.label, self.keywords = label, keywords

    def __get_pydantic_json_schema__(self, core: Any, handler: Any) -> Any:
        schema = handler(core)
        schema.update({k: v() if callable(v) else v for k, v in self.keywords.items()})
        return schema


_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zeros, as ipaddress
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = "[0-9A-Fa-f]{1,4}"


def _ipv6_forms(groups: int, tail: str) -> list[str]:
    """`groups` 16-bit groups (then `tail`, an embedded IPv4), written out or with one `::`
    standing for at least one group: a regex cannot count, so each split is spelt out."""
    forms = [f"(?:{_H16}:){{{groups - 1}}}{_H16}" + (f":{tail}" if tail else "")]
    for left in range(groups):
        head = f"(?:{_H16}:){{{left - 1}}}{_H16}" if left else ""
        room = groups - 1 - left  # groups that may follow the ::
        if tail:
            rest = f"(?:{_H16}:){{0,{room}}}{tail}"
        else:
            rest = f"(?:{_H16}(?::{_H16}){{0,{room - 1}}})?" if room else ""
        forms.append(f"{head}::{rest}")
    return forms


IPV6 = "(?:" + "|".join(_ipv6_forms(8, "") + _ipv6_forms(6, IPV4)) + ")"
_ZONE = "%[A-Za-z0-9._-]{1,64}"  # checks.hosts says why a zone is held to this
ADDRESS_PATTERN = f"^(?:{IPV4}|{IPV6}(?:{_ZONE})?)$"
NETWORK_PATTERN = (f"^(?:{IPV4}(?:/(?:3[0-2]|[12]?[0-9]))?|{IPV6}(?:{_ZONE})?(?:/(?:12[0-8]|"
                   "1[01][0-9]|[1-9]?[0-9]))?)$")
GUID_PATTERN = r"^\{[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\}$"
PROGID_PATTERN = r"^[A-Za-z][A-Za-z0-9.]{0,38}$"
SID_PATTERN = r"^S-1-[0-9]{1,15}(?:-[0-9]{1,10}){0,15}$"
# Device names Windows reserves in every folder, in any case (no inline flags in ECMA-262).
_DEVICE = ("(?:[Cc][Oo][Nn]|[Pp][Rr][Nn]|[Aa][Uu][Xx]|[Nn][Uu][Ll]|[Cc][Oo][Mm][0-9]"
           "|[Ll][Pp][Tt][0-9])")
HOST_PATTERN = rf"^(?!{_DEVICE}$)(?![0-9]+$)[A-Za-z0-9](?:[A-Za-z0-9-]{{0,13}}[A-Za-z0-9])?$"
_RANGE = r"\[[0-9]{1,9}-[0-9]{1,9}\]"
HOST_RANGE_PATTERN = rf"^(?=[A-Za-z0-9\[])(?!.*-$)[A-Za-z0-9-]{{0,14}}{_RANGE}[A-Za-z0-9-]{{0,14}}$"
ADDRESS_RANGE_PATTERN = rf"^[0-9A-Fa-f.:]*{_RANGE}[0-9A-Fa-f.:]*$"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SITE_NAME_PATTERN = rf"^(?!{_DEVICE}(?:\.|$))(?!.*\.$){KEY_PATTERN[1:]}"
DOMAIN_PATTERN = r'^[^\\/:*?"<>|]{0,15}$'
# An account: not blank, padded, only dots and spaces, or ending in a dot; no character the
# SAM refuses; optionally after a NetBIOS `DOMAIN\`.
_ACCOUNT_CHAR = r'[^"/\\\[\]:;|=,+*?<>@]'


def account_pattern(limit: int) -> str:
    return (rf'^(?:[^\\/:*?"<>|]{{1,15}}\\)?(?!\s)(?![. ]*$){_ACCOUNT_CHAR}{{1,{limit}}}'
            r"(?<![.\s])$")


# What WiX's binder reads as a variable in any text (dcomc_targets.quoting.wix_text refuses it).
WIX_VARIABLE_PATTERN = r"[!$]\((?:loc|wix|bind|bindpath)\."
EXECUTABLE_PATTERN = (rf"^(?!.*\\\.\.?(?:\\|$))(?!.*{WIX_VARIABLE_PATTERN})"
                      r'(?:[A-Za-z]:|%[A-Za-z_][A-Za-z0-9_]*%)(?:\\[^\\/:*?"<>|]+)*'
                      r'\\[^\\/:*?"<>|]*\.[Ee][Xx][Ee]$')
SERVICE_PATTERN = r'^(?!\s)(?!.*\s$)[^/\\"]{1,256}$'


def _catalog_keys() -> list[str]:
    return list(catalog.products())


def _string(label: str, pattern: str) -> SchemaOnly:
    return SchemaOnly(label, pattern=pattern)


def _names(pattern: str) -> SchemaOnly:
    """The keys of a map (users, servers...) held to `pattern`."""
    return SchemaOnly(propertyNames={"pattern": pattern})


def _present(key: str) -> dict[str, Any]:
    """`key` is given, and not null (a YAML `key:` with no value is null: left out)."""
    return {"required": [key], "properties": {key: {"not": {"type": "null"}}}}


def _absent(*keys: str) -> dict[str, Any]:
    return {"properties": {key: {"type": "null"} for key in keys}}


def _when(key: str, value: Any, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"required": [key], "properties": {key: {"const": value}}}, "then": then}


Guid = Annotated[str, _string("GUID in braces", GUID_PATTERN)]
Executable = Annotated[str, _string("full path of an .exe", EXECUTABLE_PATTERN)]
ServiceName = Annotated[str, _string("service name", SERVICE_PATTERN)]
Sid = Annotated[str, _string("SID", SID_PATTERN)]
HostNames = Annotated[list[str], SchemaOnly(minItems=1)]
AccountHosts = Annotated[list[str], SchemaOnly(minItems=1)]
LaunchRights = Annotated[list[LaunchRight], SchemaOnly(minItems=1)]
AccessRights = Annotated[list[AccessRight], SchemaOnly(minItems=1)]


def doc(description: str, guide: str | None = None, default: Any = None, **kw: Any) -> Any:
    """A pydantic Field whose description also names the guide section it automates."""
    extra: dict[str, Any] | None = {"guide": guide} if guide else None
    if "default_factory" in kw:
        return Field(description=description, json_schema_extra=extra, **kw)
    return Field(default, description=description, json_schema_extra=extra, **kw)


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt `acess:` must not silently grant nothing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Model):
    model_config = ConfigDict(json_schema_extra={"anyOf": [  # E301
        {"properties": {"identity": {"const": "workgroup"}}},
        {"required": ["domain"], "properties": {"domain": {"type": "string", "minLength": 1}}},
    ]})

    name: Annotated[str, _string("1-64 letters, digits, . _ -", SITE_NAME_PATTERN)] = doc(
        "Site name (letters, digits, . _ -); names the bundle folder, firewall rules and "
        "backups.", default=...)
    description: str | None = doc("Free text shown in reports and artifact headers.")
    identity: Literal["workgroup", "domain", "mixed"] = doc(
        "How accounts authenticate: identical local accounts on every PC (workgroup), domain "
        "accounts (domain), or both (mixed: local accounts are still created).",
        "§2.1",
        default="workgroup",
    )
    domain: Annotated[str, _string("NetBIOS domain name", DOMAIN_PATTERN)] | None = doc(
        "NetBIOS domain name; required for domain and mixed sites (E301).", "§2.1"
    )


class User(_Model):
    model_config = ConfigDict(json_schema_extra={  # E207, E208
        "if": {"required": ["existing"], "properties": {"existing": {"const": True}}},
        "then": _absent("password"),
        "else": {"allOf": [_present("password"), _absent("sid")]},
    })

    description: Annotated[str, SchemaOnly(maxLength=DESCRIPTION_MAX)] | None = doc(
        "Account description (at most 48 characters).", "§2.2")
    password: Annotated[str, SchemaOnly("only `prompt`", enum=["prompt"])] | None = doc(
        "Only `prompt`: the password is asked for at install time and never written anywhere. "
        "Required for accounts dcomc creates (E207); omit it for `existing` accounts. A literal "
        "password is an error (E206) and is never echoed.",
        "§2.1",
    )
    existing: bool = doc(
        "The account already exists (domain account, or created by other means): reference it, "
        "never create it.",
        "§2.1",
        default=False,
    )
    sid: Sid | None = doc(
        "The account's SID when known; lets security descriptors be compiled ahead of time."
    )
    password_never_expires: bool = doc(
        "Set \"Password never expires\": an expired service password stops the plant line.",
        "§2.2",
        default=True,
    )
    member_of: list[str] = doc(
        "Groups (site groups or well-known groups such as Administrators) this user joins. "
        "`Administrators` of a server's service account applies only on the hosts where its "
        "service runs.",
        "§2.4",
        default_factory=list,
    )
    hosts: AccountHosts | None = doc(
        "The hosts this account is created on (and its memberships applied there), by "
        "computer name or host range key. Default: where a flow, a service or an ACL needs it: "
        "a client's `run_as` on the client's hosts and on the server hosts it calls; a service "
        "account on its server's hosts and on the client hosts the server calls back; an "
        "account that an ACL or machine limit of the host names, with the members of such a "
        "group.",
        "§2.1",
    )


class Group(_Model):
    model_config = ConfigDict(json_schema_extra={  # E127, E208
        "if": {"required": ["existing"], "properties": {"existing": {"const": True}}},
        "then": {"properties": {"members": {"maxItems": 0}}},
        "else": _absent("sid"),
    })

    description: str | None = doc("Group description.", "§2.3")
    members: list[str] = doc("Users or groups added to this group.", "§2.4", default_factory=list)
    existing: bool = doc("The group already exists: reference it, never create it.", "§2.1",
                         default=False)
    sid: Sid | None = doc("The group's SID when known.")
    hosts: AccountHosts | None = doc(
        "The hosts this group is created on, by computer name or host range key. Default: "
        "where an AppID ACL or a machine limit of the host names it.",
        "§2.3",
    )


class Accounts(_Model):
    users: Annotated[dict[str, User], _names(account_pattern(USER_NAME_MAX))] = doc(
        "Users by account name.", "§2.2", default_factory=dict)
    groups: Annotated[dict[str, Group], _names(account_pattern(GROUP_NAME_MAX))] = doc(
        "Groups by name.", "§2.3", default_factory=dict)


class Server(_Model):
    model_config = ConfigDict(json_schema_extra={
        "anyOf": [_present(key) for key in ("product", "progid", "clsid", "appid")],  # E111
        "allOf": [_when("process_mode", "service", _present("service_account")),  # E116
                  _when("process_mode", "interactive", _absent("service_account"))],
    })

    product: Annotated[str, SchemaOnly("a catalog key", enum=_catalog_keys)] | None = doc(
        "A product of the built-in catalog (`dcomc catalog`): fills progid, clsid, appid, "
        "executable and service. Keys given here override the catalog's.",
        "§4.1",
    )
    progid: Annotated[str, _string("ProgID", PROGID_PATTERN)] | None = doc(
        "ProgID of the OPC server class, e.g. `Example.BoilerOPC.1`.", "§4.1")
    clsid: Guid | None = doc("CLSID `{...}` of the server class.", "§4.1")
    appid: Guid | None = doc(
        "AppID `{...}`. When unknown it is resolved on the target (ProgID → CLSID → AppID), "
        "never guessed.",
        "§4.1",
    )
    executable: Executable | None = doc(
        "Full path of the server executable (firewall rule).", "§5.1")
    service: ServiceName | None = doc("Name of the Windows service that runs the server.",
                                      "§3.2")
    bitness: Literal[32, 64] | None = doc(
        "32 or 64: where the CLSID is registered on 64-bit Windows (32-bit servers live under "
        "Wow6432Node). Default: the catalog's value, else 32 (most OPC DA servers)."
    )
    process_mode: Literal["service", "interactive"] | None = doc(
        "Runs as a Windows service or interactively. Default: service when a service_account "
        "is given, otherwise interactive. Changing it resets the AppID settings (guide §3 "
        "caution), so the service identity is applied before them.",
        "§3",
    )
    service_account: str | None = doc(
        "Log On account of the server's service (must be in Administrators).", "§3.2"
    )
    authentication_level: AuthLevel = doc(
        "AppID AuthenticationLevel; `default` leaves the machine default in force.",
        "§4.1 step 6",
        default="default",
    )
    launch: dict[str, LaunchRights] = doc(
        "Launch and Activation Permissions: principal → rights, added to the AppID's ACL "
        "(see `permissions`).",
        "§4.1 steps 10-18",
        default_factory=dict,
    )
    access: dict[str, AccessRights] = doc(
        "Access Permissions: principal → rights, added to the AppID's ACL (see `permissions`).",
        "§4.1 steps 19-28",
        default_factory=dict,
    )
    permissions: Literal["add", "exact"] = doc(
        "`add` (as the guide's Customize does): `launch` and `access` are added to what the "
        "AppID has — its own ACL, else the PC's machine default, else Windows' documented "
        "default (Administrators, SYSTEM, INTERACTIVE may launch; the server itself and "
        "SYSTEM may call), so those keep their rights. `exact`: each ACL is exactly the "
        "spec's list.",
        "§4.1 steps 10-28",
        default="add",
    )
    run_as: Annotated[str, SchemaOnly("`interactive_user` or `launching_user`", enum=list(
            RUN_AS_VALUES))] | None = doc(
        "The Identity tab: `interactive_user` (AppID RunAs \"Interactive User\": the server "
        "runs in the desktop session of whoever is logged on, one process for all clients) or "
        "`launching_user` (RunAs absent: a process per caller, under the caller's identity). "
        "Left out, RunAs stays as it is. \"This user\" (an account) is refused (E231): its "
        "password would have to reach the LSA secret the SCM reads. Ignored by a service-mode "
        "server (W622).",
        "§3, §4.1",
    )


class Client(_Model):
    model_config = ConfigDict(json_schema_extra={
        "anyOf": [_present("executable"), _present("service")],  # E118
        "allOf": [_present("run_as")],  # E119
    })

    description: str | None = doc("Free text.")
    executable: Executable | None = doc(
        "Full path of the client executable (firewall rule).", "§5.2")
    service: ServiceName | None = doc(
        "The client runs inside this Windows service; its Log On account is set to run_as.",
        "§5.2 step 4",
    )
    run_as: str | None = doc(
        "The authenticated user the client runs as (required, E119): a site user or a "
        "DOMAIN\\name account.",
        "§2.1 note",
    )
    calls: list[str] | dict[str, HostNames] | None = doc(
        "The servers this client calls (its DCOM flows): a list of server keys, or a map "
        "server key → the hosts running it that this client calls (computer names or host "
        "range keys). Absent: every server of the site, on every host (lint W618). The flows "
        "decide where accounts exist, whom the firewall admits and where callbacks need the "
        "anonymous fallback, and each is verified (E5xx, W5xx).",
        "§2.1, §5",
    )


class Dcom(_Model):
    enable: bool | None = doc("EnableDCOM (Y/N).", "§4.2 step 5")
    authentication_level: AuthLevel | None = doc(
        "Default Authentication Level (LegacyAuthenticationLevel).",
        "§4.2 step 6",
    )
    impersonation_level: ImpersonationLevel | None = doc(
        "Default Impersonation Level (LegacyImpersonationLevel).", "§4.2 step 7"
    )
    access_limits: dict[str, AccessRights] | None = doc(
        "\"Edit Limits\" on Access: principal → rights, ADDED to what Windows already allows. "
        "Default: ANONYMOUS LOGON local and remote access (OPCEnum, callbacks).",
        "§4.2 steps 9-12",
    )
    launch_limits: dict[str, LaunchRights] | None = doc(
        "\"Edit Limits\" on Launch and Activation: principal → rights, ADDED to the limit. "
        "Server default: every principal of the `launch` lists of the host's servers; client "
        "default: none.",
        "§4.2 steps 13-21",
    )


class Firewall(_Model):
    open: Literal["programs", "rpc_ports"] | None = doc(
        "How the DCOM servers of the host (its servers, OPCEnum, callback-receiving clients) "
        "are let in: `programs` (a rule per executable, any port) or `rpc_ports` (one rule for "
        "the TCP range of `rpc_ports`, which then must be set: E320). TCP 135 keeps its own "
        "rule.",
        "§5",
    )
    rpc_endpoint_mapper: bool | None = doc("Allow TCP 135 inbound.", "§5.1 step 3, §5.2 step 3")
    opcenum: bool | None = doc(
        "Allow OpcEnum.exe inbound (server hosts with OPCEnum).", "§5.1 step 4"
    )
    server_executables: bool | None = doc(
        "Allow each server executable of the host inbound.", "§5.1 step 5"
    )
    client_executables: bool | None = doc(
        "Allow each client executable inbound (OPC callbacks).", "§5.2 step 4"
    )
    profiles: Annotated[list[Profile], SchemaOnly(minItems=1)] | None = doc(
        "Firewall profiles the rules apply to.", "§5"
    )
    remote: Literal["site", "any"] | Annotated[list[Annotated[str, _string(
            "address or network", NETWORK_PATTERN)]], SchemaOnly(minItems=1)] | None = doc(
        "Remote addresses allowed: `site` (the addresses of the site's hosts whose flows "
        "need the rule: a server's callers, a client's calling-back servers), `any`, or a "
        "list of addresses and networks (10.9.0.0/24).",
        "§5",
    )


class SecurityPolicy(_Model):
    sharing_model: Literal["classic", "guest_only"] | None = doc(
        "Network access: Sharing and security model for local accounts (ForceGuest).",
        "§7.1",
    )
    everyone_includes_anonymous: bool | None = doc(
        "Network access: Let Everyone permissions apply to anonymous users.",
        "§7.2",
    )


class RoleMachine(_Model):
    opcenum: bool | None = doc(
        "Configure OPCEnum (browse support) on server hosts: its AppID is narrowed to the "
        "principals of the host's servers and raised to the machine authentication level.",
        "§1.2",
    )
    dcom: Dcom | None = doc("Machine-wide DCOM defaults and limits.", "§4.2")
    firewall: Firewall | None = doc("Firewall exceptions.", "§5")
    network_discovery: bool | None = doc(
        "Turn on network discovery (rule group and services); false leaves it as it is.", "§6"
    )
    rpc_ports: Annotated[str, _string("port range lo-hi", RPC_PORTS_PATTERN)] | None = doc(
        "A fixed RPC dynamic port range `lo-hi` (1024-65535), e.g. `5000-5100`, for zone "
        "firewalls between plant network levels: the RPC `Internet` values (Ports, "
        "PortsInternetAvailable, UseInternetPorts), effective after a reboot. Left out, RPC "
        "keeps Windows' range (49152-65535). On a host with both roles, both ranges are used.",
        "§5",
    )
    security_policy: SecurityPolicy | None = doc("Local security policies.", "§7")


class Machine(_Model):
    server: RoleMachine | None = doc("Settings of hosts that run servers.",
                                     "§1.2, §4.2, §5.1, §6, §7.1")
    client: RoleMachine | None = doc("Settings of hosts that run clients.", "§4.2, §5.2, §6, §7.2")


class Host(_Model):
    model_config = ConfigDict(json_schema_extra={"anyOf": [  # E310
        {"required": [role], "properties": {role: {"minItems": 1}}}
        for role in ("servers", "clients")]})

    address: Annotated[str, _string("IPv4 or IPv6 address", ADDRESS_PATTERN)] = doc(
        "IPv4 or IPv6 address of the host (the `site` firewall scope); in a host range, "
        "one `[first-last]` range with as many numbers as the key's (see Host ranges).", "§5",
        default=...)
    description: str | None = doc("Free text.")
    servers: list[str] = doc("Servers (keys of `servers`) on this host.", default_factory=list)
    clients: list[str] = doc("Clients (keys of `clients`) on this host.", default_factory=list)
    machine: RoleMachine | None = doc(
        "Per-host override, merged key by key over `machine.<role>` for every role of the "
        "host; a list or principal map given here replaces the role's whole."
    )


class Spec(_Model):
    dcomc: Literal[1] = doc("Spec format version.", default=...)
    site: Site = doc("The site.", default=...)
    accounts: Accounts = doc("Users and groups.", "§2", default_factory=Accounts)
    servers: Annotated[dict[str, Server], _names(KEY_PATTERN)] = doc(
        "OPC server applications by key.", "§3, §4.1", default_factory=dict)
    clients: Annotated[dict[str, Client], _names(KEY_PATTERN)] = doc(
        "OPC client applications by key.", "§5.2", default_factory=dict)
    hosts: dict[str, Host] = doc("The PCs of the site by computer name (at most 15 "
                                 "characters).", "§2.1", default=...)
    machine: Machine = doc("Machine-wide settings per role.", "§4.2-§7", default_factory=Machine)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec format, for editors (`# yaml-language-server: $schema=`)."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dcomc site spec, format 1"
    _host_keys(schema)
    return schema


def _host_keys(schema: dict[str, Any]) -> None:
    """`hosts` keys are computer names (E213) or host ranges (`HMI[01-24]`, front.expand),
    whose address holds a range too; pydantic cannot say that a key picks the value's schema."""
    hosts = schema["properties"]["hosts"]
    host = hosts.pop("additionalProperties")
    ranged = copy.deepcopy(schema["$defs"]["Host"])
    ranged["title"] = "HostRange"
    ranged["description"] = ("Hosts made from a range: `HMI[01-24]` with `address: "
                             "10.7.3.[21-44]` is HMI01 at 10.7.3.21 ... HMI24 at 10.7.3.44.")
    ranged["properties"]["address"] = {
        **ranged["properties"]["address"], "pattern": ADDRESS_RANGE_PATTERN,
        "description": "The addresses of the range's hosts: one [first-last] range with as "
                       "many numbers as the key's, e.g. 10.7.3.[21-44]."}
    schema["$defs"]["HostRange"] = ranged
    hosts["patternProperties"] = {HOST_PATTERN: host,
                                  HOST_RANGE_PATTERN: {"$ref": "#/$defs/HostRange"}}
    hosts["additionalProperties"] = False


# --- validation of loaded data, with spans -----------------------------------------------------


def parse(loaded: Loaded, diags: Diagnostics) -> Spec | None:
    """Validate loaded data against the models; every pydantic error becomes a diagnostic."""
    try:
        return Spec.model_validate(loaded.data)
    except ValidationError as exc:
        _report(exc, loaded, diags)
        return None


def _report(exc: ValidationError, loaded: Loaded, diags: Diagnostics) -> None:
    grouped: dict[NodePath, list[ErrorDetails]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = _data_path(loaded.data, err["loc"])
        grouped.setdefault(path, []).append(err)
    for path, errors in grouped.items():
        first = errors[0]
        if first["type"] == "extra_forbidden":
            diags.error(loaded.key_span(path), "E003", _unknown_key(path))
        elif first["type"] == "missing":
            diags.error(loaded.key_span(path[:-1]), "E004",
                        f"missing required key '{_dotted(_as_written(path, loaded))}'")
        elif path and path[-1] == "password":  # never echo it, whatever its type
            diags.error(loaded.span(path), "E206", "a spec never holds a password; write "
                        "`password: prompt` (asked at install time)")
        else:
            msgs = sorted({_message(e) for e in errors})
            diags.error(loaded.span(path), "E004",
                        f"'{_dotted(_as_written(path, loaded))}': {' or '.join(msgs)}"
                        f"{_choice_hint(errors, _value_at(loaded.data, path))}")


def _as_written(path: NodePath, loaded: Loaded) -> NodePath:
    """A host range's key instead of the hosts it made: an error in the range is then one
    diagnostic (identical ones are merged), not one per host."""
    if len(path) >= 2 and path[0] == "hosts" and path[1] in loaded.host_ranges:
        return ("hosts", loaded.host_ranges[str(path[1])], *path[2:])
    return path


def _data_path(data: Any, loc: tuple[int | str, ...]) -> NodePath:
    """pydantic's loc without the union-branch tags it inserts (they are not in the data)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            path.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
    return tuple(path)


def _unknown_key(path: NodePath) -> str:
    key = str(path[-1])
    model = _model_at(path[:-1])
    return f"unknown key '{key}'{_key_hint(key, model) if model is not None else ''}"


@functools.lru_cache(maxsize=1024)
def _key_hint(key: str, model: type[BaseModel]) -> str:
    """The closest allowed key and the list of them; cached, since a spec that misspells a
    key on every host repeats it thousands of times (difflib is slow)."""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return hint + f" (allowed here: {', '.join(model.model_fields)})"


def _model_at(path: NodePath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` (for key suggestions)."""
    model: type[BaseModel] = Spec
    skip_next = False
    for part in path:
        if skip_next:  # the user-chosen key of a dict[str, Model]
            skip_next = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model, skip_next = inner
    return model


def _model_in(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """(model, is-dict-of-models) found in a field annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) is dict and len(args) == 2:
        inner = _model_in(args[1])
        return (inner[0], True) if inner else None
    for arg in args:
        inner = _model_in(arg)
        if inner:
            return inner
    return None


def _dotted(path: NodePath) -> str:
    return ".".join(str(p) for p in path) or "(document)"


def _value_at(data: Any, path: NodePath) -> Any:
    for part in path:
        data = data[part]
    return data


def _choice_hint(errors: list[ErrorDetails], value: Any) -> str:
    """A did-you-mean for a misspelt choice ('domian' → 'domain'), from pydantic's list of
    the allowed values."""
    choices = [c for e in errors if e["type"] in ("literal_error", "enum")
               for c in re.findall(r"'([^']*)'", str((e.get("ctx") or {}).get("expected", "")))]
    return did_you_mean(value, choices) if isinstance(value, str) and choices else ""


def _message(err: ErrorDetails) -> str:
    if err["type"] in ("literal_error", "enum"):
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"expected {expected}"
    if err["type"].startswith("bool_"):
        return "expected true or false"
    msg = re.sub(r" or instance of \w+", "", err["msg"])
    return msg[0].lower() + msg[1:] if msg else err["type"]
