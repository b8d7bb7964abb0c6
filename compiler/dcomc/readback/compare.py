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
anything else is an InputError, one line and exit 2. The read helpers here (`read_regular`,
`load_json`) serve `drift` and `inspect` too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from dcomc import __version__
from dcomc.diagnostics import escaped, plural
from dcomc.emit.bundle import MANIFEST
from dcomc.emit.sign import SIGNATURE
from dcomc.pipeline import Compiled, compile_file
from dcomc.windows import sd
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


# --- reading inputs: regular files only, inside the bundle, JSON within limits ---------------

MAX_BYTES = 64 * 1024 * 1024  # no artifact, manifest or report dcomc reads is near this
MAX_DEPTH = 64  # JSON nested deeper is refused (dcomc's manifests and reports nest 5 deep)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _not_regular(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular file, else None."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular(path: Path, what: str, inside: Path | None = None) -> Path:
    """The real path (symlinks resolved) of `path` if it is a regular file, and, with `inside`,
    if it lies in that folder; otherwise InputError. Checked before anything is opened: opening
    a FIFO waits for a writer, and a device may never end."""
    try:
        real = Path(os.path.realpath(path, strict=True))
        mode = real.stat().st_mode
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read {what}: {_reason(exc)}") from None
    if inside is not None:
        root = Path(os.path.realpath(inside))
        if not real.is_relative_to(root):
            raise InputError(f"{path}: {what} leads outside the bundle (to {real}); refused")
    kind = _not_regular(mode)
    if kind is not None:
        raise InputError(f"{path}: {what} is {kind}, not a regular file")
    return real


@contextmanager
def open_regular(path: Path, what: str, inside: Path | None = None) -> Iterator[IO[bytes]]:
    """`path` opened for reading after require_regular, without blocking or following a link
    that appeared since (and checked again once open)."""
    real = require_regular(path, what, inside)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {_reason(exc)}") from None
    with os.fdopen(fd, "rb") as stream:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"{path}: {what} is {kind}, not a regular file")
        yield stream


def read_regular(path: Path, what: str, inside: Path | None = None,
                 limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file (see require_regular), at most `limit` of them."""
    with open_regular(path, what, inside) as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{path}: cannot read {what}: {_reason(exc)}") from None
    if len(data) > limit:
        raise InputError(f"{path}: {what} is larger than {limit // 2**20} MiB; refused")
    return data


def decode_text(raw: bytes) -> str:
    """Text as Windows tools write it: UTF-16 with its BOM, else UTF-8 (BOM or not);
    UnicodeDecodeError otherwise."""
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding)
    return raw.decode("utf-8-sig")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > 40:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def load_json(raw: bytes, where: str, what: str = "JSON") -> Any:
    """A JSON document (UTF-8 or UTF-16 with BOM) within limits: InputError `where: not
    what (reason)` for bad text, NaN, Infinity, numbers out of range, and nesting deeper than
    MAX_DEPTH."""
    try:
        data = json.loads(decode_text(raw), parse_constant=_no_constant, parse_int=_json_int,
                          parse_float=_json_float)
    except RecursionError:
        data = None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InputError(f"{where}: not {what} ({exc})") from None
    else:
        if _depth_within(data, MAX_DEPTH):
            return data
    raise InputError(f"{where}: not {what} (nested deeper than {MAX_DEPTH} levels)")


def _depth_within(value: Any, limit: int) -> bool:
    """Whether lists and objects nest at most `limit` deep (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                return False
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return True


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


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
        if not os.path.lexists(path / MANIFEST):
            raise InputError(f"{path}: a folder without {MANIFEST} is not a dcomc bundle")
        return load_bundle(path)
    if path.name == MANIFEST and os.path.lexists(path):
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


@dataclass(frozen=True, slots=True)
class Manifest:
    """A bundle's manifest.json, checked for shape: what `diff` reads of it."""

    path: Path
    site: str
    spec_name: str | None
    spec_sha256: str | None
    version: str | None
    psd1: dict[str, str]  # host -> path of its data file, relative to the bundle
    listed: dict[str, str]  # path relative to the bundle -> sha256, every file listed


def load_bundle(folder: Path) -> Side:
    manifest = read_manifest(folder)
    hosts = {name: _read_psd1(bundle_path(folder, rel, manifest.path), folder)
             for name, rel in manifest.psd1.items()}
    version = manifest.version
    return Side(folder, "bundle", manifest.site, manifest.spec_name, manifest.spec_sha256,
                f"dcomc {version}" if version else None, hosts,
                _tampered(folder, manifest) + _signatures(folder))


def _signatures(folder: Path) -> tuple[tuple[str, str], ...]:
    """A signed bundle's signatures that do not hold (dcomc verify without the trust checks:
    diff has no CA to judge the chain by), as tampered files."""
    from dcomc.readback import verify

    if not os.path.lexists(folder / SIGNATURE):
        return ()
    return tuple((f.path or MANIFEST, "signature") for f in verify.integrity(folder))


def tampered(folder: Path, manifest: Manifest) -> tuple[tuple[str, str], ...]:
    """Files that differ from the manifest (see `_tampered`)."""
    return _tampered(folder, manifest)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the bundle `folder`; InputError when it is not a regular file of the
    bundle, not JSON, or not shaped as dcomc writes it."""
    path = folder / MANIFEST
    data = load_json(read_regular(path, "the manifest", inside=folder), str(path),
                     "a dcomc manifest")

    def refuse(where: str, value: Any, expected: str) -> InputError:
        return InputError(f"{path}: not a dcomc manifest: {where} is {json_type(value)}, "
                          f"not {expected}")

    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise InputError(f"{path}: not a dcomc manifest (no `hosts` object)")

    def text(holder: dict[str, Any], key: str, where: str) -> str | None:
        value = holder.get(key)
        if value is not None and not isinstance(value, str):
            raise refuse(where, value, "a string")
        return value

    spec = data.get("spec", {})
    if not isinstance(spec, dict):
        raise refuse("`spec`", spec, "an object")
    listed: dict[str, str] = {}
    psd1: dict[str, str] = {}

    def artifacts(holder: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        items = holder.get(key, [])
        if not isinstance(items, list):
            raise refuse(where, items, "a list")
        for index, art in enumerate(items):
            at = f"{where}[{index}]"
            if not isinstance(art, dict):
                raise refuse(at, art, "an object")
            rel = text(art, "path", f"{at}.path")
            if not rel:
                raise InputError(f"{path}: not a dcomc manifest: {at} has no `path`")
            text(art, "kind", f"{at}.kind")
            listed[rel] = text(art, "sha256", f"{at}.sha256") or ""
        return items

    for name, entry in data["hosts"].items():
        where = f"`hosts.{name}`"
        if not isinstance(entry, dict):
            raise refuse(where, entry, "an object")
        found = [a["path"] for a in artifacts(entry, "artifacts", f"{where}.artifacts")
                 if a.get("kind") == PSD1_KIND]
        psd1[name] = found[0] if found else f"{name}/powershell/{name}.psd1"
    artifacts(data, "review", "`review`")
    return Manifest(path, text(data, "site", "`site`") or "", text(spec, "name", "`spec.name`"),
                    text(spec, "sha256", "`spec.sha256`"), text(data, "dcomc", "`dcomc`"),
                    psd1, listed)


def bundle_path(folder: Path, rel: str, manifest: Path) -> Path:
    """`folder / rel` for a path the manifest names, refused unless it is a plain relative
    path inside the bundle: no absolute path, drive, `..`, backslash or empty part."""
    parts = rel.split("/")
    if not rel or any(c in rel for c in "\\:\x00") or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{manifest}: the manifest names {rel!r}, which is not a path inside "
                         "the bundle (absolute, a drive, '..' or a backslash); refused")
    return folder / rel


def _tampered(folder: Path, manifest: Manifest) -> tuple[tuple[str, str], ...]:
    """Files that differ from the manifest: edited (another sha256), missing, or unlisted.
    A listed path outside the bundle, or that is not a regular file there, is an InputError."""
    found: list[tuple[str, str]] = []
    for rel, digest in sorted(manifest.listed.items()):
        path = bundle_path(folder, rel, manifest.path)
        # nothing, a link to nothing, or a name too long (Path.exists raises ENAMETOOLONG)
        if not os.path.exists(path):  # noqa: PTH110
            found.append((rel, "missing"))
            continue
        sha = hashlib.sha256()
        with open_regular(path, "a file the manifest lists", inside=folder) as stream:
            try:
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)
            except OSError as exc:
                raise InputError(f"{path}: cannot read a file the manifest lists: "
                                 f"{_reason(exc)}") from None
        if sha.hexdigest() != digest:
            found.append((rel, "edited"))
    try:
        on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the bundle: {_reason(exc)}") from None
    own = {MANIFEST, SIGNATURE}  # the manifest and its signature list the others
    found += [(rel, "unlisted") for rel in sorted(on_disk - set(manifest.listed) - own)]
    return tuple(found)


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
