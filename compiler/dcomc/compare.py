"""`dcomc diff` and `dcomc drift`: what differs between two plans, and between a plan and a PC.

One common form for every comparison: a host's PowerShell data (`<HOST>.psd1`), the dict that
`dcomc_targets.powershell.host_data` writes and `parse_data` reads back. A spec is compiled
and converted to it; a bundle is read from it. So spec ⇄ spec, bundle ⇄ bundle and
spec ⇄ bundle are the same comparison, and a bundle compares equal to the spec it was built
from. Provenance (`Source`: the spec line; `Phase`: derived from the kind) is not compared;
who generated a file (dcomc version, spec name and hash) is shown but is not a difference.

`drift` compares the JSON that `Invoke-DcomConfig.ps1 -Mode Report` writes on a plant PC
(`{Site, Host, Computer, Generator, Time, Resources: [{Id, Compliant, Reason, State}]}`) with
that host's plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
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
                f"dcomc {version}" if version else None, hosts)


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
        return self.site is None and not self.hosts


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
            "generator": side.generator, "hosts": sorted(side.hosts)}


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


def diff_text(result: Diff) -> str:
    lines = [f"old: {result.old.label()}", f"new: {result.new.label()}", ""]
    if result.identical:
        lines.append(f"No differences: {result.identical_hosts} hosts, "
                     f"{result.identical_resources} resources identical.")
        return "\n".join(lines) + "\n"
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


# --- drift -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """A Report-mode JSON from a plant PC, checked for shape."""

    path: Path
    host: str
    site: str | None
    computer: str | None
    generator: str | None
    spec: str | None
    spec_sha256: str | None
    time: str | None
    resources: tuple[dict[str, Any], ...]


def load_report(path: Path) -> Report:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the report: {exc}") from exc
    try:
        data = json.loads(_decode(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from exc
    where = f"{path}: not a report of `Invoke-DcomConfig.ps1 -Mode Report`"
    if not isinstance(data, dict):
        raise InputError(f"{where}: the top level is a {_json_type(data)}, not an object")
    host = data.get("Host")
    if not isinstance(host, str) or not host:
        raise InputError(f"{where}: no `Host` string")
    items = data.get("Resources")
    if isinstance(items, dict):  # ConvertTo-Json unrolls a one-element array
        items = [items]
    if not isinstance(items, list):
        raise InputError(f"{where}: `Resources` is {_json_type(items)}, not a list")
    resources: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        at = f"{path}: Resources[{index}]"
        if not isinstance(item, dict):
            raise InputError(f"{at} is a {_json_type(item)}, not an object")
        rid, compliant, reason = item.get("Id"), item.get("Compliant"), item.get("Reason")
        if not isinstance(rid, str) or not rid:
            raise InputError(f"{at}: no `Id` string")
        if not isinstance(compliant, bool):
            raise InputError(f"{at} ({rid}): `Compliant` is {_json_type(compliant)}, "
                             "not true/false")
        if reason is not None and not isinstance(reason, str):
            raise InputError(f"{at} ({rid}): `Reason` is {_json_type(reason)}, not a string")
        if rid in seen:
            raise InputError(f"{at}: resource {rid!r} is listed twice")
        seen.add(rid)
        resources.append(item)

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return Report(path, host, text("Site"), text("Computer"), text("Generator"), text("Spec"),
                  text("SpecSha256"), text("Time"), tuple(resources))


def _decode(raw: bytes) -> str:
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding)
    return raw.decode("utf-8-sig")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class Drift:
    spec: Path
    report: Report
    host: str
    compliant: tuple[str, ...]
    drifted: tuple[dict[str, Any], ...]
    missing: tuple[dict[str, Any], ...]
    extra: tuple[dict[str, Any], ...]
    stale: tuple[str, ...] = field(default=())

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted or self.missing or self.extra or self.stale)


def drift(compiled: Compiled, spec_path: Path, report: Report) -> Drift:
    """Each resource of the report's host: compliant, drifted, missing from the report, or
    only in the report; plus whether the PC's bundle came from another spec or dcomc."""
    try:
        host = compiled.plan.host(report.host)
    except KeyError:
        known = ", ".join(h.name for h in compiled.plan.hosts)
        raise InputError(f"{report.path}: the report is for host {report.host!r}, which "
                         f"{spec_path} does not have (hosts: {known})") from None
    data = spec_host_data(compiled, spec_path.name)[host.name]
    stale = list(_stale(report, data, spec_path))
    by_id = {r["Id"]: r for r in report.resources}
    compliant: list[str] = []
    drifted: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for res in data["Resources"]:
        head = {"id": res["Id"], "kind": res["Kind"], "guide": res["Guide"]}
        got = by_id.get(res["Id"])
        if got is None:
            missing.append(head)
        elif got["Compliant"]:
            compliant.append(res["Id"])
        else:
            drifted.append(head | {"reason": got.get("Reason"), "state": got.get("State")})
    planned = {r["Id"] for r in data["Resources"]}
    extra = [{"id": r["Id"], "compliant": r["Compliant"], "reason": r.get("Reason")}
             for r in report.resources if r["Id"] not in planned]
    return Drift(spec_path, report, host.name, tuple(compliant), tuple(drifted),
                 tuple(missing), tuple(extra), tuple(stale))


def _stale(report: Report, data: dict[str, Any], spec_path: Path) -> Iterable[str]:
    if report.site is not None and report.site != data["Site"]:
        yield f"the PC's bundle is for site {report.site!r}, the spec is site {data['Site']!r}"
    if report.generator is not None and report.generator != data["Generator"]:
        yield (f"the PC's bundle was generated by {report.generator!r}; this spec builds "
               f"with {data['Generator']!r}: rebuild and redeploy")
    if report.spec_sha256 is not None:
        if report.spec_sha256.lower() != str(data["SpecSha256"]).lower():
            yield (f"the PC's bundle was built from another version of the spec (sha256 "
                   f"{report.spec_sha256[:12]}, {spec_path.name} is "
                   f"{str(data['SpecSha256'])[:12]}): rebuild and redeploy")
    elif report.spec is not None and report.spec != data["Spec"]:
        yield f"the PC's bundle was built from {report.spec!r}, not {data['Spec']!r}"


def drift_json(result: Drift) -> dict[str, Any]:
    rep = result.report
    return {
        "drift": result.has_drift,
        "spec": str(result.spec),
        "report": str(rep.path),
        "host": result.host,
        "computer": rep.computer,
        "time": rep.time,
        "generator": rep.generator,
        "stale": list(result.stale),
        "compliant": list(result.compliant),
        "drifted": list(result.drifted),
        "missing": list(result.missing),
        "extra": list(result.extra),
        "summary": {"compliant": len(result.compliant), "drifted": len(result.drifted),
                    "missing": len(result.missing), "extra": len(result.extra),
                    "stale": len(result.stale)},
    }


def drift_text(result: Drift) -> str:
    rep = result.report
    about = ", ".join(x for x in (
        f"PC {rep.computer}" if rep.computer else None,
        rep.time, rep.generator) if x)
    lines = [f"Host {result.host}: report {rep.path}" + (f" ({about})" if about else ""),
             f"against {result.spec}", ""]
    lines += [f"  ! stale bundle: {msg}" for msg in result.stale]
    for res in result.drifted:
        lines.append(f"  ~ {res['id']}  drifted: {res['reason'] or '(no reason given)'}"
                     f"  [{res['guide']}]")
    for res in result.missing:
        lines.append(f"  ? {res['id']}  missing from the report (the PC ran an older "
                     f"bundle)  [{res['guide']}]")
    for res in result.extra:
        state = "compliant" if res["compliant"] else "drifted"
        lines.append(f"  + {res['id']}  in the report ({state}), not in the plan")
    if result.stale or result.drifted or result.missing or result.extra:
        lines.append("")
    verdict = "drift" if result.has_drift else "no drift"
    lines.append(f"{verdict}: {len(result.compliant)} compliant, {len(result.drifted)} "
                 f"drifted, {len(result.missing)} missing, {len(result.extra)} extra"
                 + (f", stale bundle ({len(result.stale)})" if result.stale else ""))
    return "\n".join(lines) + "\n"
