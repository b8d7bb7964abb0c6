"""The built-in catalog of OPC products (`data/catalog.yaml`), read once and validated."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from dcomc.diagnostics import escaped
from dcomc.front.load import load_data, yaml_quote


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    progid: str | None
    clsid: str | None
    appid: str | None
    executable: str | None
    service: str | None
    bitness: Literal[32, 64]
    verified: bool
    source: str


OPCENUM = "opcenum"


@cache
def products() -> dict[str, Product]:
    """Catalog entries by key, in file order."""
    text = resources.files("dcomc").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    raw = load_data(text)
    return {key: Product.model_validate(value) for key, value in raw.items()}


def product(key: str) -> Product | None:
    return products().get(key)


def key_of_clsid(clsid: str) -> str | None:
    """The key of the catalog product registered under `clsid` (any case), or None."""
    for key, known in products().items():
        if known.clsid and known.clsid.upper() == clsid.upper():
            return key
    return None


# --- entries from captured servers (`dcomc catalog --from`), for contributors to verify ----------

FIELDS = ("progid", "clsid", "appid", "executable", "service", "bitness")
_KEY = re.compile(r"[^a-z0-9]+")


def _captured_fields(server: dict[str, Any]) -> dict[str, Any]:
    """A captured server's identifiers in the catalog's fields (null where the PC has none)."""
    service = server.get("Service") if isinstance(server.get("Service"), dict) else {}
    assert isinstance(service, dict)
    appid = server.get("AppId")
    return {"progid": server.get("ProgId") or None,
            "clsid": str(server["Clsid"]).upper(),
            "appid": str(appid).upper() if appid else None,
            "executable": server.get("Executable") or None,
            "service": service.get("Name") or None,
            "bitness": 64 if server.get("Bitness") == 64 else 32}


def key_from(candidates: Iterable[Any], taken: Iterable[str], fallback: str) -> str:
    """A key (lower-case letters, digits, -) from the first candidate that has a letter or a
    digit (a ProgID, a name, an executable's name, a CLSID), else `fallback`; `-2`, `-3`...
    appended while it is taken."""
    base = fallback
    for candidate in candidates:
        made = _KEY.sub("-", str(candidate or "").lower()).strip("-")[:40].strip("-")
        if made:
            base = made
            break
    used = set(taken)
    key, n = base, 2
    while key in used:
        key, n = f"{base}-{n}", n + 1
    return key


def exe_stem(path: Any) -> str:
    """An executable's file name without its folder and `.exe` (any case)."""
    name = str(path or "").rpartition("\\")[2]
    return name[:-4] if name.lower().endswith(".exe") else name


def _key(fields: dict[str, Any], taken: set[str]) -> str:
    """The catalog's key for a known CLSID, else one made from the ProgID, the executable's
    name or the CLSID (never another entry's or a catalog product's key)."""
    known = key_of_clsid(fields["clsid"])
    if known is not None:
        return known
    return key_from((fields["progid"], exe_stem(fields["executable"]), fields["clsid"]),
                    taken | set(products()), "server")


def captured_entries(found: list[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Catalog entries (unverified) for captured servers, given as (computer, capture time,
    server) in order, one entry per CLSID; `seen` lists the PCs, `differs` what other PCs
    captured differently and, for a known product, where the catalog says otherwise."""
    entries: dict[str, dict[str, Any]] = {}
    by_clsid: dict[str, str] = {}
    for computer, time, server in found:
        fields = _captured_fields(server)
        key = by_clsid.get(fields["clsid"])
        if key is None:
            key = by_clsid[fields["clsid"]] = _key(fields, set(entries))
            entries[key] = {"name": str(server.get("Name") or fields["progid"] or key),
                            **fields, "verified": False, "seen": [], "differs": []}
            known = products().get(key)
            entries[key]["differs"] += [f"the catalog has {f}: {_scalar(getattr(known, f))}"
                                        for f in FIELDS if known and getattr(known, f) != fields[f]]
        entry = entries[key]
        entry["seen"].append(f"{computer} ({time})")
        entry["differs"] += [f"{computer} has {f}: {_scalar(fields[f])}" for f in FIELDS
                             if fields[f] != entry[f]]
    for entry in entries.values():
        entry["source"] = (f"captured on {', '.join(entry.pop('seen'))} by dcomc catalog "
                           "--from; not checked against a primary source")
    return entries


def _scalar(value: Any) -> str:
    """A YAML scalar: null, true/false, a number, else single-quoted ('' for ')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return yaml_quote(str(value))


def entries_text(entries: dict[str, dict[str, Any]]) -> str:
    """The entries as YAML in data/catalog.yaml's shape, each marked unverified, with what a
    contributor must check as comments."""
    lines = ["# Catalog entries from captures (dcomc catalog --from): unverified. Check every",
             "# value against the vendor's documentation or code before adding an entry to",
             "# data/catalog.yaml; then set verified: true and name that source (docs/windows.md"
             "#catalog)."]
    for key, entry in entries.items():
        lines.append(f"{key}:")
        lines += [f"  # {note}" for note in entry["differs"]]
        lines += [f"  {field}: {_scalar(entry[field])}"
                  for field in ("name", *FIELDS, "verified", "source")]
    return "\n".join(escaped(line) for line in lines) + "\n"  # captured text: one line each
