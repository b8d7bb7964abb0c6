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

A bundle is untrusted input (issue 17): its manifest must have the shape dcomc writes, every
path it names must be a plain relative path that resolves (symlinks followed) inside the
bundle, and only regular files are opened, each checked before it is (a FIFO would block);
anything else is an InputError, one line and exit 2 (`files.py` reads, `manifest.py` checks the
manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from dcomc import __version__
from dcomc.diagnostics import escaped, plural
from dcomc.emit.layout import MANIFEST
from dcomc.emit.sign import SIGNATURE
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan.model import HostPlan
from dcomc.readback.files import InputError as InputError  # re-exported: the commands catch it
from dcomc.readback.files import is_folder, read_regular
from dcomc.readback.manifest import Manifest, bundle_path, read_manifest, tampered
from dcomc.windows import sd
from dcomc_targets import EmitContext, Options
from dcomc_targets.powershell import BOM, data_file, host_data, parse_data

_V = TypeVar("_V")
# Keys of a resource that say where it came from, not what it sets.
PROVENANCE_KEYS = frozenset({"Source", "Phase"})
# Keys of a host's data compared as host attributes (Resources is compared per resource).
HOST_ATTRIBUTES = ("Address", "Roles")
SPEC_SUFFIXES = (".yaml", ".yml")


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
    hosts: Mapping[str, dict[str, Any]]  # a bundle's: each data file read when first asked
    # bundle files that are not what dcomc wrote: (path, "edited" | "missing" | "unlisted")
    tampered: tuple[tuple[str, str], ...] = ()
    # each host's data file's sha256, where it is that of the file (a bundle's: as its
    # manifest lists it, the file checked; a spec's: of the file a build would write). Two
    # hosts with the same are the same host: its data is not read, nor compared (issue 18).
    digests: Mapping[str, str] = field(default_factory=dict)

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
    if is_folder(path):
        if not os.path.lexists(path / MANIFEST):
            raise InputError(f"{path}: a folder without {MANIFEST} is not a dcomc bundle")
        return load_bundle(path)
    if path.name == MANIFEST and os.path.lexists(path):
        return load_bundle(path.parent)
    # os.path, not Path: they answer False for a name the system refuses (ENAMETOOLONG)
    if os.path.isfile(path) and path.suffix.lower() in SPEC_SUFFIXES:  # noqa: PTH113
        return load_spec(path)
    if not os.path.exists(path):  # noqa: PTH110 (False for a name the system refuses)
        raise InputError(f"{path}: no such file or folder")
    raise InputError(f"{path}: neither a spec (.yaml, .yml) nor a bundle folder "
                     f"(with {MANIFEST})")


def spec_host_data(compiled: Compiled, spec_name: str,
                   hosts: Iterable[HostPlan] | None = None) -> dict[str, dict[str, Any]]:
    """Every host of a compiled spec (or those of `hosts`) in exactly the form its bundle's
    .psd1 holds."""
    ctx = EmitContext(compiled.plan, Options(), spec_name, compiled.sha256)
    return {host.name: host_data(host, ctx)
            for host in (compiled.plan.hosts if hosts is None else hosts)}


def load_spec(path: Path) -> Side:
    compiled = compile_file(path)
    ctx = EmitContext(compiled.plan, Options(), path.name, compiled.sha256)
    hosts = {host.name: host for host in compiled.plan.hosts}
    # each data file's hash made when first asked for (written as a build writes it): asked
    # only against a bundle, where a match saves reading its file
    digests = _Lazy(hosts, lambda name: hashlib.sha256(data_file(hosts[name], ctx)).hexdigest())
    return Side(path, "spec", compiled.plan.site, path.name, compiled.sha256,
                f"dcomc {__version__}", {name: host_data(host, ctx) for name, host in
                                         hosts.items()}, digests=digests)


def load_bundle(folder: Path) -> Side:
    manifest = read_manifest(folder)
    files = tampered(folder, manifest)
    found = files + _signatures(folder, manifest, {rel for rel, _ in files})
    spoiled = {rel for rel, _ in found}
    paths = {name: bundle_path(folder, rel, manifest.path) for name, rel in manifest.psd1.items()}
    digests = {name: manifest.listed[rel] for name, rel in manifest.psd1.items()
               if rel in manifest.listed and rel not in spoiled}
    version = manifest.version
    # each data file read (and checked, `_read_psd1`) when first asked for: a host whose file
    # has the other side's hash is never read (1,000 hosts: 1 s)
    data = _Lazy(paths, lambda name: _read_psd1(paths[name], folder))
    return Side(folder, "bundle", manifest.site, manifest.spec_name, manifest.spec_sha256,
                f"dcomc {version}" if version else None, data, found, digests)


class _Lazy(Mapping[str, _V]):
    """A mapping of the keys of `keys` whose values are made (`make(key)`) when first asked
    for, once."""

    def __init__(self, keys: Mapping[str, Any], make: Callable[[str], _V]) -> None:
        self._keys, self._make = keys, make
        self._made: dict[str, _V] = {}

    def __getitem__(self, key: str) -> _V:
        if key not in self._made:
            if key not in self._keys:
                raise KeyError(key)
            self._made[key] = self._make(key)
        return self._made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _signatures(folder: Path, manifest: Manifest, spoiled: set[str],
                ) -> tuple[tuple[str, str], ...]:
    """A signed bundle's signatures that do not hold (dcomc verify without the trust checks:
    diff has no CA to judge the chain by), as tampered files."""
    from dcomc.readback import verify

    if not os.path.lexists(folder / SIGNATURE):
        return ()
    return tuple((f.path or MANIFEST, "signature")
                 for f in verify.integrity(folder, manifest, spoiled))


def _read_psd1(path: Path, folder: Path) -> dict[str, Any]:
    data = read_regular(path, "the host's data file", inside=folder)
    if not data.startswith(BOM):
        raise InputError(f"{path}: not a dcomc data file (no UTF-8 BOM)")
    try:
        parsed = parse_data(data[len(BOM):].decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise InputError(f"{path}: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), list):
        raise InputError(f"{path}: not a dcomc data file (no Resources list)")
    seen: set[str] = set()
    for index, res in enumerate(parsed["Resources"]):
        if not isinstance(res, dict) or not isinstance(res.get("Id"), str):
            raise InputError(f"{path}: Resources[{index}] is not a resource with an Id")
        if res["Id"] in seen:
            raise InputError(f"{path}: resource {res['Id']!r} is listed twice")
        seen.add(res["Id"])
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
    """A host's resources by Id (each a dict with a string Id: _read_psd1 checked it)."""
    return {res["Id"]: comparable(res) for res in host.get("Resources", [])}


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
        if _same_file(old, new, old_hosts[key], new_hosts[key]):
            same_hosts += 1
            same_resources += _resource_count(old, new, old_hosts[key])
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


def _same_file(old: Side, new: Side, old_name: str, new_name: str) -> bool:
    """Whether both sides' data files of the host are the same bytes (and so the same plan).
    Asked where a side is a bundle: two specs' data are made already, and compared."""
    if "bundle" not in (old.kind, new.kind) or old_name != new_name:
        return False
    bundle, other = (old, new) if old.kind == "bundle" else (new, old)
    digest = bundle.digests.get(old_name)  # a bundle's first: a spec's is made when asked
    return digest is not None and digest == other.digests.get(old_name)


def _resource_count(old: Side, new: Side, name: str) -> int:
    """The resources of a host both sides have alike: read from a spec's side if there is one
    (its data is made already), else from one bundle's data file."""
    side = new if new.kind == "spec" else old
    resources = side.hosts[name].get("Resources")
    return len(resources) if isinstance(resources, list) else 0


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
    "signature": "has a signature that does not hold (see `dcomc verify`)",
}


def diff_text(result: Diff) -> str:
    lines = [f"old: {result.old.label()}", f"new: {result.new.label()}", ""]
    if result.identical:
        lines.append(f"No differences: {plural(result.identical_hosts, 'host')}, "
                     f"{plural(result.identical_resources, 'resource')} identical.")
        return "\n".join(escaped(line) for line in lines) + "\n"
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
    # names, ids and values of a bundle may hold a newline or an escape sequence
    return "\n".join(escaped(line) for line in lines) + "\n"


def _host_text(host: HostChange) -> list[str]:
    sign = _SIGN[host.change]
    if host.change != "changed":
        values = {c.path: c.new if host.change == "added" else c.old for c in host.attributes}
        found = values.get("Roles") or []
        roles = ", ".join(r if isinstance(r, str) else compact(r) for r in found) \
            if isinstance(found, list) else compact(found)
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
