"""The capture format: what `Invoke-DcomConfig.ps1 -Mode Capture -Path x.json` writes on a
plant PC (docs/capture.md), read and checked for shape before `dcomc import` uses it.

A capture is versioned (`Format: dcomc-capture`, `FormatVersion`); a version this reader does
not know is refused rather than half read. Only the shape `dcomc import` relies on is checked;
the parts the engine could not read (`Skipped`) are null and stay so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcomc.readback.compare import InputError, load_json, read_regular

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
