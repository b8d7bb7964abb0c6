"""The capture format: what `Invoke-DcomConfig.ps1 -Mode Capture -Path x.json` writes on a
plant PC (docs/capture.md), read and checked for shape before `dcomc import` uses it.

A capture is versioned (`Format: dcomc-capture`, `FormatVersion`); a version this reader does
not know is refused rather than half read. Only the shape `dcomc import` relies on is checked;
the parts the engine could not read (`Skipped`) are null and stay so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcomc.diagnostics import escaped
from dcomc.readback.files import InputError, load_json, read_regular
from dcomc.windows.sdbinary import from_binary

FORMAT = "dcomc-capture"
VERSIONS = (1,)


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


class CaptureError(InputError):
    """Captures that are not what the engine writes: every problem of every file (`details`,
    one line each: file, JSON path, what is wrong), found before anything is imported."""

    def __init__(self, details: list[str]) -> None:
        files = len({line.split(":", 1)[0] for line in details})
        super().__init__(f"{len(details)} problem{'s' * (len(details) != 1)} in {files} "
                         f"capture{'s' * (files != 1)}; none is used")
        self.details = details


# --- the shape `dcomc import` relies on: each key's kind, checked everywhere at once ----------

# A shape: a type name ("str", "int", "bool", "any", "hex"), "text" (a string the import writes
# into the spec: no control character), a dict (an object with these keys, none required but
# those whose shape is ("required", shape)), ("list", shape) (a list, or one item as
# ConvertTo-Json writes a lone one), ("map", shape) (an object of any keys), or ("null", shape)
# (that or null). The shape says it all: a copied shape keeps its required keys.
Shape = Any
REGISTRY_VALUE: Shape = {"Exists": "bool", "Type": ("null", "str"), "Data": "any",
                         "Sddl": ("null", "str"), "Invalid": ("null", "str")}
APPID: Shape = {"Exists": "bool", "Name": ("null", "str"),
                "AuthenticationLevel": ("null", "int"), "RunAs": ("null", "str"),
                "LocalService": ("null", "str"), "DllSurrogate": ("null", "str"),
                "LaunchPermission": ("null", REGISTRY_VALUE),
                "AccessPermission": ("null", REGISTRY_VALUE)}
SERVICE: Shape = {"Name": ("null", "text"), "DisplayName": ("null", "str"),
                  "StartName": ("null", "text"), "State": ("null", "str"),
                  "StartMode": ("null", "str"), "FoundBy": ("null", "str")}
SERVER: Shape = {"Clsid": ("required", "text"), "View": ("null", "str"), "Bitness": ("null", "int"),
                 "Name": ("null", "text"), "ProgId": ("null", "text"),
                 "VersionIndependentProgId": ("null", "str"), "Categories": ("list", "str"),
                 "LocalServer32": ("null", "str"), "Executable": ("null", "text"),
                 "AppId": ("null", "text"), "AppIdKey": ("null", APPID),
                 "Service": ("null", SERVICE)}
ACCOUNT: Shape = {"Name": ("required", "text"), "Sid": ("required", "sid"),
                  "Description": ("null", "text"),
                  "Disabled": ("null", "bool"), "PasswordNeverExpires": ("null", "bool"),
                  "PasswordExpired": ("null", "bool"), "Members": ("list", "str")}
RULE: Shape = {"Why": "str", "Name": ("null", "str"), "DisplayName": ("null", "str"),
               "Group": ("null", "str"), "Enabled": ("null", "bool"),
               "Direction": ("null", "str"), "Action": ("null", "str"),
               "Profile": ("null", "str"), "Protocol": ("null", "str"),
               "LocalPort": ("list", "str"), "Program": ("null", "text"),
               "Service": ("null", "str"), "RemoteAddress": ("list", "str")}
CAPTURE: Shape = {
    "Format": "str", "FormatVersion": "int", "Generator": ("null", "str"),
    "Time": ("null", "str"), "Elevated": ("null", "bool"),
    "Skipped": ("list", {"Part": "str", "Reason": ("null", "str")}),
    "Computer": ("required", {"Name": ("required", "text"), "Domain": ("null", "str"),
                          "PartOfDomain": ("null", "bool"), "OsCaption": ("null", "str"),
                          "OsVersion": ("null", "str"), "OsBuild": ("null", "str"),
                          "Is64Bit": ("null", "bool"), "InstallLanguage": ("null", "str"),
                          "UserLocale": ("null", "str"), "Addresses": ("list", "str")}),
    "Servers": ("list", SERVER), "OpcEnum": ("null", SERVER),
    "Machine": ("null", {"Ole": ("map", REGISTRY_VALUE), "Policy": ("map", REGISTRY_VALUE),
                         "Lsa": ("map", REGISTRY_VALUE)}),
    "Accounts": ("null", {"Users": ("list", ACCOUNT), "Groups": ("list", ACCOUNT)}),
    "Rights": ("null", ("map", ("list", "str"))),
    "Firewall": ("null", {"Rules": ("list", RULE)}),
    "NetworkDiscovery": ("null", {"Group": ("null", "str"), "Rules": ("null", "int"),
                                  "EnabledRules": ("null", "int"),
                                  "EnabledProfiles": ("list", "str"),
                                  "Services": ("map", "any")}),
    "Names": ("null", ("map", ("null", "text"))),
}
_KINDS = {"str": (str, "a string"), "text": (str, "a string"), "bool": (bool, "true/false"),
          "int": (int, "a whole number"), "sid": (str, "a SID string")}
_SID = re.compile(r"S-1-\d+(-\d+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _problems(value: Any, shape: Shape, where: str) -> list[str]:
    """What is wrong with `value` against `shape`, one `path: problem` each."""
    if isinstance(shape, tuple):
        kind, inner = shape
        if kind == "required":  # its object says it must be there
            return _problems(value, inner, where)
        if kind == "null":
            return [] if value is None else _problems(value, inner, where)
        if kind == "list":
            items = value if isinstance(value, list) else [] if value is None else [value]
            return [p for i, item in enumerate(items) for p in _problems(
                item, inner, f"{where}[{i}]" if isinstance(value, list) else where)]
        if not isinstance(value, dict):
            return [f"{where}: {_type(value)}, not an object"]
        return [p for k, v in value.items() for p in _problems(v, inner, f"{where}.{k}")]
    if isinstance(shape, dict):
        return _object_problems(value, shape, where)
    return _scalar_problems(value, shape, where)


def _object_problems(value: Any, shape: dict[str, Shape], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {_type(value)}, not an object"]
    found = [f"{where}: no `{key}`" for key, inner in shape.items()
             if key not in value and isinstance(inner, tuple) and inner[0] == "required"]
    return found + [p for key, inner in shape.items() if key in value
                    for p in _problems(value[key], inner, f"{where}.{key}".lstrip("."))]


def _scalar_problems(value: Any, kind: str, where: str) -> list[str]:
    if kind == "any":
        return []
    python, said = _KINDS[kind]
    if not isinstance(value, python) or (python is int and isinstance(value, bool)):
        return [f"{where}: {_type(value)}, not {said}"]
    if kind == "sid" and not _SID.fullmatch(str(value)):
        return [f"{where}: not a SID (S-1-...): {escaped(str(value)[:60])}"]
    if kind == "text" and _CONTROL.search(str(value)):
        return [f"{where}: a control character (a newline?) the spec cannot hold: "
                f"{escaped(str(value)[:60])}"]
    return []


def _check_version(data: dict[str, Any]) -> list[str]:
    if data.get("Format") != FORMAT:
        return [f"Format: not {FORMAT!r}: not a capture of `Invoke-DcomConfig.ps1 -Mode "
                "Capture`"]
    version = data.get("FormatVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version not in VERSIONS:
        return [f"FormatVersion: capture format version {version!r} is not one this dcomc "
                f"reads ({', '.join(map(str, VERSIONS))}); use a newer dcomc"]
    return []


def capture_problems(data: Any) -> list[str]:
    """Every way `data` is not a capture this dcomc reads (`JSON path: problem`)."""
    if not isinstance(data, dict):
        return [f"the top level is {_type(data)}, not an object: not a capture of "
                "`Invoke-DcomConfig.ps1 -Mode Capture`"]
    version = _check_version(data)
    if version:
        return version   # another format or version: its keys may mean other things
    found = _object_problems(data, CAPTURE, "")
    name = data["Computer"].get("Name") if isinstance(data.get("Computer"), dict) else None
    if isinstance(data.get("Computer"), dict) and name == "":
        found.append("Computer.Name: empty")
    return found


def parse_capture(data: Any, path: Path) -> Capture:
    """A capture from its parsed JSON; CaptureError with every problem when malformed."""
    found = capture_problems(data)
    if found:
        raise CaptureError([f"{path}: error: {line}" for line in found])
    return Capture(path, data["Computer"]["Name"], data)


def load_capture(path: Path) -> Capture:
    """The capture at `path` (a regular file of JSON within load_json's limits)."""
    raw = read_regular(path, "the capture")
    try:
        data = load_json(raw, str(path), "a JSON capture")
    except InputError as exc:
        if exc.position is None:  # not a syntax error (NaN, a huge number, too deep, encoding)
            raise
        said = str(exc).removeprefix(f"{path}: ")
        line, column = exc.position
        raise CaptureError([f"{path}:{line}:{column}: error: {said}"]) from None
    return parse_capture(data, path)


def load_captures(paths: Sequence[Path]) -> list[Capture]:
    """Every capture, or CaptureError with the problems of all of them at once; a file that
    cannot be read at all is one problem."""
    captures, details = [], []
    for path in paths:
        try:
            captures.append(load_capture(path))
        except CaptureError as exc:
            details += exc.details
        except InputError as exc:
            details.append(f"{path}: error: {str(exc).removeprefix(f'{path}: ')}")
    if details:
        raise CaptureError(details)
    return captures


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
# the vendor's installer writes them); AppID Name, LocalService, DllSurrogate; the service's
# display name, state, start mode; the machine default ACLs as values (the spec has no setting
# for them: they are compared through the AppIDs without their own ACL, to which they apply)
# and the Group Policy limits; built-in accounts and PasswordExpired; firewall rule names,
# display names, groups and services; the network discovery services.
UNMANAGED = ("Generator", "Time", "Elevated", "Skipped", "Computer", "Names",
             "server identity", "AppID Name/LocalService/DllSurrogate",
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


def applying(appid: dict[str, Any], ole: dict[str, Any], name: str) -> Any:
    """The descriptor value COM applies to an AppID: its own `name` value, else the PC's
    machine-wide Default<name> (None: neither, Windows' documented default applies)."""
    for stored in (appid.get(name), ole.get(f"Default{name}")):
        if isinstance(stored, dict) and stored.get("Exists"):
            return stored
    return None


def _appids(capture: Capture, meaning: Meaning) -> dict[str, Any]:
    found: dict[str, Any] = {}
    opcenum = capture.data.get("OpcEnum")
    ole = _object(capture.part("Machine").get("Ole"))
    for server in capture.servers() + ([opcenum] if isinstance(opcenum, dict) else []):
        appid, service = _object(server.get("AppIdKey")), _object(server.get("Service"))
        where = f"{server.get('Clsid')} ({server.get('View')})"
        found[f"{where} AppID"] = [appid.get("AuthenticationLevel"), appid.get("RunAs"),
                                   meaning.acl(applying(appid, ole, "LaunchPermission")),
                                   meaning.acl(applying(appid, ole, "AccessPermission"))]
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
