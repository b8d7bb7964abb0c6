"""`dcomc diff`: what differs between two plans (`drift.py` compares a plan with a PC).

One common form for every comparison: a host's PowerShell data (`<HOST>.psd1`), the dict that
`dcomc_targets.powershell.host_data` writes and `parse_data` reads back. A spec is compiled
and converted to it; a bundle is read from it. So spec ⇄ spec, bundle ⇄ bundle and
spec ⇄ bundle are the same comparison, and a bundle compares equal to the spec it was built
from. Provenance (`Source`: the spec line; `Phase`: derived from the kind) is not compared;
who generated a file (dcomc version, spec name and hash) is shown but is not a difference.

A bundle's other artifacts (.reg, .inf, netsh, WiX, MSI, review) are not parsed here: each is
checked against the sha256 its manifest lists, so a hand edit (or a missing or added file) is
reported as a difference too — what the .psd1 says is then not all the PC would get.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dcomc import __version__, sd
from dcomc.bundle import MANIFEST
from dcomc.pipeline import Compiled, compile_file
from dcomc_targets import EmitContext, Options
from dcomc_targets.powershell import BOM, host_data, parse_data

# Keys of a resource that say where it came from, not what it sets.
PROVENANCE_KEYS = frozenset({"Source", "Phase"})
# Keys of a host's data compared as host attributes (Resources is compared per resource).
HOST_ATTRIBUTES = ("Address", "Roles")
SPEC_SUFFIXES = (".yaml", ".yml")
PSD1_KIND = "powershell-data"


class InputError(Exception):
    """An input that is not what the command expects (exit 2)."""


class _Absent:
    """A key present on one side only."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


# --- loading: spec or bundle → the psd1 form --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a diff: every host's data in the psd1 form, by host name."""

    path: Path
    kind: Literal["spec", "bundle"]
    site: str
    spec_name: str | None
    spec_sha256: str | None
    generator: str | None
    hosts: dict[str, dict[str, Any]]
    # bundle files that are not what dcomc wrote: (path, "edited" | "missing" | "unlisted")
    tampered: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        parts: list[str] = [self.kind]
        if self.spec_sha256:
            parts.append(f"sha256 {self.spec_sha256[:12]}")
        if self.generator:
            parts.append(self.generator)
        return f"{self.path} ({', '.join(parts)})"


def load_side(path: Path) -> Side:
    """A spec file (.yaml/.yml) or a bundle folder (or its manifest.json); raises InputError,
    or CompileError for a spec with errors."""
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise InputError(f"{path}: a folder without {MANIFEST} is not a dcomc bundle")
        return load_bundle(path)
    if path.is_file() and path.name == MANIFEST:
        return load_bundle(path.parent)
    if path.is_file() and path.suffix.lower() in SPEC_SUFFIXES:
        return load_spec(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    raise InputError(f"{path}: neither a spec (.yaml, .yml) nor a bundle folder "
                     f"(with {MANIFEST})")


def spec_host_data(compiled: Compiled, spec_name: str) -> dict[str, dict[str, Any]]:
    """Every host of a compiled spec in exactly the form its bundle's .psd1 holds."""
    ctx = EmitContext(compiled.plan, Options(), spec_name, compiled.sha256)
    return {host.name: host_data(host, ctx) for host in compiled.plan.hosts}


def load_spec(path: Path) -> Side:
    compiled = compile_file(path)
    return Side(path, "spec", compiled.plan.site, path.name, compiled.sha256,
                f"dcomc {__version__}", spec_host_data(compiled, path.name))


def load_bundle(folder: Path) -> Side:
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{manifest_path}: cannot read the manifest: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("hosts"), dict):
        raise InputError(f"{manifest_path}: not a dcomc manifest (no `hosts` object)")
    hosts: dict[str, dict[str, Any]] = {}
    for name, entry in manifest["hosts"].items():
        psd1 = folder / _psd1_path(str(name), entry)
        hosts[str(name)] = _read_psd1(psd1)
    spec: dict[str, Any] = manifest["spec"] if isinstance(manifest.get("spec"), dict) else {}
    version = manifest.get("dcomc")
    return Side(folder, "bundle", str(manifest.get("site", "")),
                spec.get("name"), spec.get("sha256"),
                f"dcomc {version}" if version else None, hosts, _tampered(folder, manifest))


def _tampered(folder: Path, manifest: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Files that differ from the manifest: edited (another sha256), missing, or unlisted."""
    listed: dict[str, str] = {}
    entries = [a for h in manifest["hosts"].values() if isinstance(h, dict)
               for a in h.get("artifacts", [])] + list(manifest.get("review", []))
    for art in entries:
        if isinstance(art, dict) and isinstance(art.get("path"), str):
            listed[art["path"]] = str(art.get("sha256", ""))
    found: list[tuple[str, str]] = []
    for rel, digest in sorted(listed.items()):
        try:
            data = (folder / rel).read_bytes()
        except OSError:
            found.append((rel, "missing"))
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            found.append((rel, "edited"))
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    found += [(rel, "unlisted") for rel in sorted(on_disk - set(listed) - {MANIFEST})]
    return tuple(found)


def _psd1_path(host: str, entry: Any) -> str:
    if isinstance(entry, dict):
        for art in entry.get("artifacts", []):
            if isinstance(art, dict) and art.get("kind") == PSD1_KIND and art.get("path"):
                return str(art["path"])
    return f"{host}/powershell/{host}.psd1"


def _read_psd1(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the host's data file: {exc}") from exc
    if not data.startswith(BOM):
        raise InputError(f"{path}: not a dcomc data file (no UTF-8 BOM)")
    try:
        parsed = parse_data(data[len(BOM):].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), list):
        raise InputError(f"{path}: not a dcomc data file (no Resources list)")
    return parsed


# --- diff ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # dotted, e.g. "Remote", "App.Appid"
    old: Any  # ABSENT when only the new side has the key
    new: Any


@dataclass(frozen=True, slots=True)
class ResourceChange:
    id: str
    kind: str
    change: Literal["added", "removed", "changed"]
    data: dict[str, Any]  # the comparable form (new side, or old side when removed)
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class HostChange:
    name: str
    change: Literal["added", "removed", "changed"]
    attributes: tuple[FieldChange, ...] = ()
    resources: tuple[ResourceChange, ...] = ()
    resource_count: int = 0


@dataclass(frozen=True, slots=True)
class Diff:
    old: Side
    new: Side
    site: FieldChange | None
    hosts: tuple[HostChange, ...]
    identical_hosts: int = 0
    identical_resources: int = 0

    @property
    def identical(self) -> bool:
        return self.site is None and not self.hosts and not (
            self.old.tampered or self.new.tampered)


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in PROVENANCE_KEYS}


def _resources(host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for res in host.get("Resources", []):
        if not isinstance(res, dict) or not isinstance(res.get("Id"), str):
            raise InputError(f"host {host.get('Host')}: a resource without an Id")
        out[res["Id"]] = comparable(res)
    return out


def _is_principal(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"Name", "Kind", "Sid"}


def field_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Leaf differences between two values; dicts are walked (a principal is one leaf),
    lists and scalars compare whole."""
    if (isinstance(old, dict) and isinstance(new, dict)
            and not (_is_principal(old) and _is_principal(new))):
        changes: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            changes += field_changes(old.get(key, ABSENT), new.get(key, ABSENT), path)
        return changes
    return [] if old == new else [FieldChange(prefix, old, new)]


def diff(old: Side, new: Side) -> Diff:
    site = FieldChange("Site", old.site, new.site) if old.site != new.site else None
    old_hosts = {name.casefold(): name for name in old.hosts}
    new_hosts = {name.casefold(): name for name in new.hosts}
    changes: list[HostChange] = []
    same_hosts = same_resources = 0
    for key in sorted(old_hosts.keys() | new_hosts.keys()):
        if key not in new_hosts:
            data = old.hosts[old_hosts[key]]
            changes.append(_whole_host(old_hosts[key], "removed", data))
            continue
        if key not in old_hosts:
            data = new.hosts[new_hosts[key]]
            changes.append(_whole_host(new_hosts[key], "added", data))
            continue
        a, b = old.hosts[old_hosts[key]], new.hosts[new_hosts[key]]
        attributes = [c for attr in HOST_ATTRIBUTES
                      for c in field_changes(a.get(attr, ABSENT), b.get(attr, ABSENT), attr)]
        if old_hosts[key] != new_hosts[key]:
            attributes.insert(0, FieldChange("Host", old_hosts[key], new_hosts[key]))
        resources, same = _diff_resources(_resources(a), _resources(b))
        same_resources += same
        if attributes or resources:
            changes.append(HostChange(new_hosts[key], "changed", tuple(attributes),
                                      tuple(resources), len(b.get("Resources", []))))
        else:
            same_hosts += 1
    return Diff(old, new, site, tuple(changes), same_hosts, same_resources)


def _whole_host(name: str, change: Literal["added", "removed"],
                data: dict[str, Any]) -> HostChange:
    resources = tuple(ResourceChange(rid, str(res.get("Kind", "")), change, res)
                      for rid, res in _resources(data).items())
    attributes = tuple(FieldChange(attr, ABSENT, data.get(attr)) if change == "added"
                       else FieldChange(attr, data.get(attr), ABSENT)
                       for attr in HOST_ATTRIBUTES)
    return HostChange(name, change, attributes, resources, len(resources))


def _diff_resources(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
                    ) -> tuple[list[ResourceChange], int]:
    out: list[ResourceChange] = []
    same = 0
    for rid, res in new.items():  # in the new plan's order, then what it dropped
        if rid not in old:
            out.append(ResourceChange(rid, str(res.get("Kind", "")), "added", res))
            continue
        fields_ = field_changes(old[rid], res)
        if fields_:
            out.append(ResourceChange(rid, str(res.get("Kind", "")), "changed", res,
                                      tuple(fields_)))
        else:
            same += 1
    out += [ResourceChange(rid, str(res.get("Kind", "")), "removed", res)
            for rid, res in old.items() if rid not in new]
    return out, same


# --- compact values --------------------------------------------------------------------------


def compact(value: Any, rights: sd.RightsKind | None = None) -> str:
    """A value on one line: principals by name, ACEs as `name: rights`, lists in brackets."""
    if value is ABSENT:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if _is_principal(value):
        name, sid = value["Name"], value["Sid"]
        return f"{name} ({sid})" if sid and sid != name else str(name)
    if isinstance(value, dict) and set(value) == {"Principal", "Mask"}:
        return f"{compact(value['Principal'])}: {_mask_text(value['Mask'], rights)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={compact(v, rights)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v, rights) for v in value) + "]"
    return str(value)


def _mask_text(mask: Any, rights: sd.RightsKind | None) -> str:
    if not isinstance(mask, int) or rights is None:
        return str(mask)
    try:
        return ", ".join(sd.mask_to_rights(rights, mask)) or hex(mask)
    except sd.SDError:
        return hex(mask)


def _rights_of(resource: dict[str, Any]) -> sd.RightsKind | None:
    which = resource.get("Which")
    if which == "launch":
        return "launch"
    if which == "access":
        return "access"
    return None


def _jsonable(value: Any) -> Any:
    return None if value is ABSENT else value


def _field_json(change: FieldChange) -> dict[str, Any]:
    out: dict[str, Any] = {"field": change.path}
    if change.old is not ABSENT:
        out["old"] = change.old
    if change.new is not ABSENT:
        out["new"] = change.new
    return out


def _side_json(side: Side) -> dict[str, Any]:
    return {"path": str(side.path), "kind": side.kind, "site": side.site,
            "spec": side.spec_name, "spec_sha256": side.spec_sha256,
            "generator": side.generator, "hosts": sorted(side.hosts),
            "tampered": [{"path": rel, "problem": problem} for rel, problem in side.tampered]}


def diff_json(result: Diff) -> dict[str, Any]:
    hosts = []
    for host in result.hosts:
        entry: dict[str, Any] = {"name": host.name, "change": host.change}
        if host.change == "changed":
            entry["attributes"] = [_field_json(c) for c in host.attributes]
            entry["resources"] = [
                {"id": r.id, "kind": r.kind, "change": r.change,
                 **({"fields": [_field_json(c) for c in r.fields]} if r.change == "changed"
                    else {"resource": r.data})}
                for r in host.resources]
        else:
            entry.update({c.path.lower(): _jsonable(c.new if host.change == "added" else c.old)
                          for c in host.attributes})
            entry["resources"] = [r.id for r in host.resources]
        hosts.append(entry)
    summary = _summary(result)
    return {
        "identical": result.identical,
        "old": _side_json(result.old),
        "new": _side_json(result.new),
        "site": _field_json(result.site) if result.site else None,
        "hosts": hosts,
        "summary": summary,
    }


def _summary(result: Diff) -> dict[str, int]:
    counts = {"hosts_added": 0, "hosts_removed": 0, "hosts_changed": 0,
              "resources_added": 0, "resources_removed": 0, "resources_changed": 0}
    for host in result.hosts:
        counts[f"hosts_{host.change}"] += 1
        for res in host.resources:
            counts[f"resources_{res.change}"] += 1
    return counts


_SIGN = {"added": "+", "removed": "-", "changed": "~"}
_TAMPERED = {
    "edited": "was changed after dcomc wrote it (its sha256 is not the manifest's)",
    "missing": "is listed in the manifest but missing",
    "unlisted": "is not listed in the manifest (dcomc did not write it)",
}


def diff_text(result: Diff) -> str:
    lines = [f"old: {result.old.label()}", f"new: {result.new.label()}", ""]
    if result.identical:
        lines.append(f"No differences: {result.identical_hosts} hosts, "
                     f"{result.identical_resources} resources identical.")
        return "\n".join(lines) + "\n"
    for which, side in (("old", result.old), ("new", result.new)):
        lines += [f"! {which} bundle: {rel} {_TAMPERED[problem]}" for rel, problem in side.tampered]
    if result.old.tampered or result.new.tampered:
        lines.append("")
    if result.site:
        lines += [f"~ site: {compact(result.site.old)} -> {compact(result.site.new)}", ""]
    for host in result.hosts:
        lines += _host_text(host)
        lines.append("")
    s = _summary(result)
    lines.append(
        f"Hosts: {s['hosts_added']} to add, {s['hosts_removed']} to remove, "
        f"{s['hosts_changed']} to change. Resources: {s['resources_added']} to add, "
        f"{s['resources_removed']} to remove, {s['resources_changed']} to change.")
    return "\n".join(lines) + "\n"


def _host_text(host: HostChange) -> list[str]:
    sign = _SIGN[host.change]
    if host.change != "changed":
        values = {c.path: c.new if host.change == "added" else c.old for c in host.attributes}
        roles = ", ".join(values.get("Roles") or [])
        lines = [f"{sign} host {host.name} ({values.get('Address')}), roles: {roles}; "
                 f"{host.resource_count} resources"]
        lines += [f"    {sign} {r.id}" for r in host.resources]
        return lines
    lines = [f"~ host {host.name}"]
    lines += [f"    ~ {c.path}: {compact(c.old)} -> {compact(c.new)}" for c in host.attributes]
    for res in host.resources:
        lines.append(f"    {_SIGN[res.change]} {res.id}")
        rights = _rights_of(res.data)
        if res.change == "changed":
            lines += [f"        ~ {c.path}: {compact(c.old, rights)} -> {compact(c.new, rights)}"
                      for c in res.fields]
        elif res.change == "added":
            lines += [f"        {key} = {compact(value, rights)}"
                      for key, value in res.data.items() if key not in ("Id", "Kind")]
    return lines
