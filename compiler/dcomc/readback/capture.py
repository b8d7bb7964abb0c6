"""The capture format: what `Invoke-DcomConfig.ps1 -Mode Capture -Path x.json` writes on a
plant PC (docs/capture.md), read and checked for shape before `dcomc import` uses it.

A capture is versioned (`Format: dcomc-capture`, `FormatVersion`); a version this reader does
not know is refused rather than half read. Only the shape `dcomc import` relies on is checked;
the parts the engine could not read (`Skipped`) are null and stay so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcomc.readback.files import InputError, load_json, read_regular
from dcomc.windows.sdbinary import from_binary

FORMAT = "dcomc-capture"
VERSIONS = (1,)
_LISTS = ("Servers", "Skipped")
_OBJECTS = ("Computer", "Machine", "Accounts", "Rights", "Firewall", "NetworkDiscovery", "Names")


@dataclass(frozen=True, slots=True)
class Capture:
    """One PC's capture, checked for shape."""

    path: Path
    computer: str
    data: dict[str, Any]

    def part(self, name: str) -> dict[str, Any]:
        """An object part, {} when the capture skipped it."""
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    def servers(self) -> list[dict[str, Any]]:
        return as_list(self.data.get("Servers"))

    def names(self) -> dict[str, str | None]:
        return {k: v if isinstance(v, str) else None for k, v in self.part("Names").items()}


def as_list(value: Any) -> list[Any]:
    """A JSON list as ConvertTo-Json wrote it: null is empty, a lone object one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _check_version(data: dict[str, Any], where: str) -> None:
    if data.get("Format") != FORMAT:
        raise InputError(f"{where}: `Format` is not {FORMAT!r}")
    version = data.get("FormatVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version not in VERSIONS:
        raise InputError(f"{where}: capture format version {version!r} is not one this dcomc "
                         f"reads ({', '.join(map(str, VERSIONS))}); use a newer dcomc")


def _check_parts(data: dict[str, Any], where: str) -> None:
    for key in _LISTS:
        if data.get(key) is not None and not isinstance(data[key], list | dict):
            raise InputError(f"{where}: `{key}` is {_type(data[key])}, not a list")
    for key in _OBJECTS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise InputError(f"{where}: `{key}` is {_type(data[key])}, not an object")
    for index, server in enumerate(as_list(data.get("Servers"))):
        if not isinstance(server, dict) or not isinstance(server.get("Clsid"), str):
            raise InputError(f"{where}: Servers[{index}] has no `Clsid` string")


def parse_capture(data: Any, path: Path) -> Capture:
    """A capture from its parsed JSON; InputError (one line, with the file) when malformed."""
    where = f"{path}: not a capture of `Invoke-DcomConfig.ps1 -Mode Capture`"
    if not isinstance(data, dict):
        raise InputError(f"{where}: the top level is {_type(data)}, not an object")
    _check_version(data, where)
    _check_parts(data, where)
    name = data.get("Computer", {}).get("Name") if isinstance(data.get("Computer"), dict) else None
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: no `Computer.Name` string")
    return Capture(path, name, data)


def load_capture(path: Path) -> Capture:
    """The capture at `path` (a regular file of JSON within load_json's limits)."""
    raw = read_regular(path, "the capture")
    return parse_capture(load_json(raw, str(path), "a JSON capture"), path)


# --- what dcomc manages, compared by meaning (the round trip of docs/capture.md) ----------------

# A local account's SID: its RID differs between two PCs set up in another order, its name not.
LOCAL_SID = re.compile(r"^S-1-5-21-\d+-\d+-\d+-\d+$")
OLE_VALUES = ("EnableDCOM", "LegacyAuthenticationLevel", "LegacyImpersonationLevel")
LIMITS = ("MachineLaunchRestriction", "MachineAccessRestriction")
RULE_FIELDS = ("Why", "Enabled", "Direction", "Action", "Profile", "Protocol", "LocalPort",
               "Program", "RemoteAddress")
# What a capture holds that dcomc does not manage (never compared): the capture's own fields
# (Generator, Time, Elevated, Skipped); the computer (OS, locale, addresses); the names SIDs
# resolve to (localized text); the servers' identity (ProgID, executable, categories, bitness:
# the vendor's installer writes them); AppID Name, LocalService, ServiceParameters,
# DllSurrogate; the service's display name, state, start mode; the machine default ACLs and the
# Group Policy limits; built-in accounts and PasswordExpired; firewall rule names, display
# names, groups and services; the network discovery services.
UNMANAGED = ("Generator", "Time", "Elevated", "Skipped", "Computer", "Names",
             "server identity", "AppID Name/LocalService/ServiceParameters/DllSurrogate",
             "service display name/state/start mode", "DefaultLaunch/AccessPermission",
             "Policy limits", "built-in accounts", "PasswordExpired",
             "firewall rule names/display names/groups", "network discovery services")


class Meaning:
    """SIDs of one capture as what they mean on any PC: a local account by its name, any
    other SID (well-known, domain) as itself."""

    def __init__(self, capture: Capture) -> None:
        self.names, self.computer = capture.names(), capture.computer.upper()

    def sid(self, sid: str) -> str:
        domain, _, name = (self.names.get(sid) or "").rpartition("\\")
        if LOCAL_SID.match(sid) and domain.upper() == self.computer and name:
            return "local:" + name.lower()
        return sid

    def logon(self, account: str) -> str:
        domain, _, name = account.rpartition("\\")
        local = domain in (".", "") or domain.upper() == self.computer
        return "local:" + name.lower() if local and name else account.lower()

    def acl(self, value: Any) -> Any:
        """A captured descriptor as {(allow, meaning): mask}, or what stands in for it."""
        if not isinstance(value, dict) or not value.get("Exists"):
            return None
        try:
            dacl = from_binary(bytes.fromhex(str(value.get("Data")))).dacl
        except ValueError:
            return ("undecodable", value.get("Data"))
        granted: dict[str, int] = {}
        for ace in dacl or ():
            key = f"{'allow' if ace.allow else 'deny'} {self.sid(ace.sid)}"
            granted[key] = granted.get(key, 0) | ace.mask
        return sorted(granted.items())


def _accounts(capture: Capture, meaning: Meaning) -> dict[str, Any]:
    accounts = capture.part("Accounts")
    found: dict[str, Any] = {}
    for user in as_list(accounts.get("Users")):
        if meaning.sid(str(user.get("Sid"))).startswith("local:") and _site_made(user):
            found[f"user {str(user.get('Name')).lower()}"] = [
                user.get("Disabled"), user.get("PasswordNeverExpires"), user.get("Description")]
    for group in as_list(accounts.get("Groups")):
        members = sorted(meaning.sid(str(m)) for m in as_list(group.get("Members")))
        key = f"group {meaning.sid(str(group.get('Sid')))}"
        found[key] = [group.get("Description") if _site_made(group) else None, members]
    return found


def _site_made(account: dict[str, Any]) -> bool:
    """Not a built-in account (RID below 1000): those every Windows has."""
    return int(str(account.get("Sid", "0")).rpartition("-")[2] or 0) >= 1000


def _rights(capture: Capture, meaning: Meaning) -> dict[str, Any]:
    return {right: sorted(meaning.sid(str(s)) for s in as_list(holders))
            for right, holders in capture.part("Rights").items()}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _appids(capture: Capture, meaning: Meaning) -> dict[str, Any]:
    found: dict[str, Any] = {}
    opcenum = capture.data.get("OpcEnum")
    for server in capture.servers() + ([opcenum] if isinstance(opcenum, dict) else []):
        appid, service = _object(server.get("AppIdKey")), _object(server.get("Service"))
        where = f"{server.get('Clsid')} ({server.get('View')})"
        found[f"{where} AppID"] = [appid.get("AuthenticationLevel"), appid.get("RunAs"),
                                   meaning.acl(appid.get("LaunchPermission")),
                                   meaning.acl(appid.get("AccessPermission"))]
        found[f"{where} service logon"] = (
            [service.get("Name"), meaning.logon(str(service.get("StartName") or ""))]
            if service else None)
    return found


def _machine(capture: Capture, meaning: Meaning) -> dict[str, Any]:
    machine = capture.part("Machine")
    ole, lsa = machine.get("Ole") or {}, machine.get("Lsa") or {}
    found: dict[str, Any] = {f"Ole {n}": (ole.get(n) or {}).get("Data") for n in OLE_VALUES}
    found.update({f"Ole {n}": meaning.acl(ole.get(n)) for n in LIMITS})
    found.update({f"Lsa {n}": (v or {}).get("Data") for n, v in lsa.items()})
    discovery = capture.part("NetworkDiscovery")
    found["network discovery"] = [discovery.get("EnabledRules"),
                                  as_list(discovery.get("EnabledProfiles"))]
    return found


def _firewall(capture: Capture) -> dict[str, Any]:
    """Rules by what they open (their names are the site's, not the PC's meaning): each one
    present or not, counted (two equal rules are one opening, but a change all the same)."""
    found: dict[str, Any] = {}
    for rule in as_list(capture.part("Firewall").get("Rules")):
        shown = {f: rule.get(f) for f in RULE_FIELDS}
        shown["Program"] = str(shown["Program"]).lower()   # Windows compares paths so
        key = "rule " + ", ".join(f"{f}={v}" for f, v in shown.items())
        found[key] = found.get(key, 0) + 1
    return found


def managed(capture: Capture) -> dict[str, dict[str, Any]]:
    """Everything of a capture that dcomc manages, by part and item, SIDs by meaning."""
    meaning = Meaning(capture)
    return {"accounts": _accounts(capture, meaning), "rights": _rights(capture, meaning),
            "appids": _appids(capture, meaning), "machine": _machine(capture, meaning),
            "firewall": _firewall(capture)}


def managed_differences(a: Capture, b: Capture) -> list[str]:
    """One line per managed item that differs between two captures of a PC (empty: they
    agree on everything dcomc manages)."""
    left, right = managed(a), managed(b)
    lines: list[str] = []
    for part, items in left.items():
        for key in sorted(set(items) | set(right[part])):
            if items.get(key) != right[part].get(key):
                lines.append(f"{a.computer}: {part}: {key}: {items.get(key)!r} in "
                             f"{a.path.name}, {right[part].get(key)!r} in {b.path.name}")
    return lines
