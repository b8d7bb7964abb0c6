"""`dcomc drift`: a plant PC's state against its host's plan.

It compares the JSON that `Invoke-DcomConfig.ps1 -Mode Report` writes on a plant PC
(`{Site, Host, Computer, Generator, Spec, InputsSha256, Time, Resources: [{Id, Compliant,
Reason, State}]}`) with that host's plan in the PowerShell data form (`compare.spec_host_data`):
each resource is compliant, drifted, missing from the report, or only in the report; a bundle
built from other inputs for the host (another plan of it, another dcomc) is stale. The inputs
hash is the host's (`EmitContext.inputs_sha256`): a change to another host of the spec leaves
this host's bundle current. A report of an engine from before the hash (`SpecSha256`, the
spec file's) is compared with the spec file's hash.

A whole site at once (`drift_folder`): report files, or folders whose `*.json` files are the
reports collected from the plant PCs (one per PC), matched to the spec's hosts by the computer
name each report carries, compared as Windows compares computer names (ignoring case). Each
host is in sync, drifted, or has no report; a report of a computer the spec does not have is
unknown. Of several reports of one computer the newest (`Time`) counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from dcomc.diagnostics import escaped
from dcomc.pipeline import Compiled
from dcomc.readback.compare import spec_host_data
from dcomc.readback.files import (
    InputError,
    is_folder,
    load_json,
    read_regular,
    require_regular,
)


@dataclass(frozen=True, slots=True)
class Report:
    """A Report-mode JSON from a plant PC, checked for shape."""

    path: Path
    host: str
    site: str | None
    computer: str | None
    generator: str | None
    spec: str | None
    inputs_sha256: str | None  # the host's inputs hash its bundle was built from
    spec_sha256: str | None  # the spec file's hash, in the reports of older engines
    time: str | None
    resources: tuple[dict[str, Any], ...]


def load_report(path: Path) -> Report:
    """The report at `path`: a regular file (a FIFO or a device is refused before it is
    opened) holding JSON within load_json's limits, shaped as the engine writes it."""
    data = load_json(read_regular(path, "the report"), str(path), "a JSON report")
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
                  text("InputsSha256"), text("SpecSha256"), text("Time"), tuple(resources))


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
    data = spec_host_data(compiled, spec_path.name, [host])[host.name]  # not every host's
    stale = list(_stale(report, data, spec_path, compiled.sha256))
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


def _stale(report: Report, data: dict[str, Any], spec_path: Path, spec_sha256: str,
           ) -> Iterable[str]:
    if report.site is not None and report.site != data["Site"]:
        yield f"the PC's bundle is for site {report.site!r}, the spec is site {data['Site']!r}"
    if report.generator is not None and report.generator != data["Generator"]:
        yield (f"the PC's bundle was generated by {report.generator!r}; this spec builds "
               f"with {data['Generator']!r}: rebuild and redeploy")
    if report.inputs_sha256 is not None:
        if report.inputs_sha256.lower() != str(data["InputsSha256"]).lower():
            yield (f"the PC's bundle was built from other inputs for {data['Host']} (another "
                   f"plan of the host, or another dcomc: host inputs sha256 "
                   f"{report.inputs_sha256[:12]}, {spec_path.name} gives "
                   f"{str(data['InputsSha256'])[:12]}): rebuild and redeploy")
    elif report.spec_sha256 is not None:  # an engine from before the host's inputs hash
        if report.spec_sha256.lower() != spec_sha256.lower():
            yield (f"the PC's bundle was built from another version of the spec (sha256 "
                   f"{report.spec_sha256[:12]}, {spec_path.name} is "
                   f"{spec_sha256[:12]}): rebuild and redeploy")
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
    lines.append(f"{verdict}: {_counts(result)}")
    # values of the report (reasons, names) may hold a newline or an escape sequence
    return "\n".join(escaped(line) for line in lines) + "\n"


# --- a whole site -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteDrift:
    """The reports of a site's PCs against the spec: one Drift per host that has a report."""

    spec: Path
    site: str
    hosts: tuple[str, ...]  # the spec's, in plan order
    results: tuple[Drift, ...]  # hosts with a report, in plan order
    unknown: tuple[Report, ...]  # reports of computers the spec does not have
    superseded: tuple[Report, ...]  # older reports of a computer that has a newer one

    @property
    def in_sync(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.results if not r.has_drift)

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.results if r.has_drift)

    @property
    def missing(self) -> tuple[str, ...]:
        reported = {r.host for r in self.results}
        return tuple(h for h in self.hosts if h not in reported)

    @property
    def has_drift(self) -> bool:
        """Only a site whose every host reported and is in sync, and nothing else, is not:
        a PC without a report is not known to be in sync."""
        return bool(self.drifted or self.missing or self.unknown)


def collect_reports(paths: Iterable[Path]) -> list[Path]:
    """The report files: each path that is a folder stands for its `*.json` files (not its
    subfolders), in name order; any other path is a report file itself."""
    found: list[Path] = []
    for path in paths:
        if not is_folder(path):
            found.append(path)
            continue
        try:
            names = sorted(e.name for e in os.scandir(path) if e.name.lower().endswith(".json"))
        except OSError as exc:
            raise InputError(f"{path}: cannot list the reports: {exc.strerror or exc}") from None
        if not names:
            raise InputError(f"{path}: no report (*.json) in this folder")
        found += [path / name for name in names]
    return found


def drift_folder(compiled: Compiled, spec_path: Path, paths: Iterable[Path]) -> SiteDrift:
    """Every host of the spec against the newest report of its computer among `paths`
    (files and folders, see collect_reports)."""
    by_name = {h.name.casefold(): h.name for h in compiled.plan.hosts}
    latest: dict[str, Report] = {}
    unknown: list[Report] = []
    superseded: list[Report] = []
    for report in (load_report(p) for p in _unique(collect_reports(paths))):
        host = by_name.get((report.computer or report.host).casefold())
        if host is None:
            unknown.append(report)
        elif host in latest:
            older, latest[host] = _older_newer(latest[host], report)
            superseded.append(older)
        else:
            latest[host] = report
    hosts = tuple(h.name for h in compiled.plan.hosts)
    results = tuple(_host_drift(compiled, spec_path, h, latest[h]) for h in hosts if h in latest)
    return SiteDrift(spec_path, compiled.plan.site, hosts, results, tuple(unknown),
                     tuple(superseded))


def _unique(paths: list[Path]) -> list[Path]:
    """Each file once, however it was named (a folder and a file in it, a symlink)."""
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(require_regular(path, "the report"), path)
    return list(seen.values())


def _older_newer(one: Report, other: Report) -> tuple[Report, Report]:
    """Two reports of one computer in the order of their times; refused when that order
    cannot be told (a missing or malformed Time, or the same time twice)."""
    times = [_time(one), _time(other)]
    if times[0] is None or times[1] is None or times[0] == times[1]:
        raise InputError(f"{one.path} and {other.path} are both reports of computer "
                         f"{one.computer or one.host!r} and their times do not tell which is "
                         "newer: keep one of them")
    return (one, other) if times[0] < times[1] else (other, one)


def _time(report: Report) -> datetime | None:
    try:
        # the engine writes UTC in the 'o' format (seven fraction digits: Python 3.11 reads it)
        time = datetime.fromisoformat(report.time) if report.time else None
    except ValueError:
        return None
    return time if time is None or time.tzinfo is not None else None


def _host_drift(compiled: Compiled, spec_path: Path, host: str, report: Report) -> Drift:
    """`drift` of the host the report's computer is. A PC that ran another host's data file
    (`-Force`) is compared with its own host's plan, and its bundle is stale (that one: the
    inputs hash it reports is the other host's, not a sign of an older build of its own)."""
    if report.host.casefold() == host.casefold():
        return drift(compiled, spec_path, replace(report, host=host))
    result = drift(compiled, spec_path, replace(report, host=host, inputs_sha256=None))
    note = (f"the PC ran the bundle of host {report.host!r} (-Force); build and deploy "
            f"{host}'s own bundle")
    return replace(result, stale=(*result.stale, note))


def site_json(site: SiteDrift) -> dict[str, Any]:
    def about(rep: Report) -> dict[str, Any]:
        return {"report": str(rep.path), "computer": rep.computer, "host": rep.host,
                "site": rep.site, "time": rep.time}

    by_host = {r.host: r for r in site.results}
    return {
        "drift": site.has_drift,
        "spec": str(site.spec),
        "site": site.site,
        "hosts": [{"host": h, "status": _status(by_host.get(h)),
                   "report": str(by_host[h].report.path) if h in by_host else None}
                  for h in site.hosts],
        "results": [drift_json(r) for r in site.results],
        "unknown": [about(r) for r in site.unknown],
        "superseded": [about(r) for r in site.superseded],
        "summary": {"hosts": len(site.hosts), "in_sync": len(site.in_sync),
                    "drifted": len(site.drifted), "missing": len(site.missing),
                    "unknown": len(site.unknown), "superseded": len(site.superseded)},
    }


def _status(result: Drift | None) -> str:
    """A host's status from its Drift (None: no report), without searching the site's lists
    (one search per host made the site's output quadratic)."""
    return "missing" if result is None else "drifted" if result.has_drift else "in_sync"


def site_text(site: SiteDrift) -> str:
    width = max(len(h) for h in site.hosts)
    by_host = {r.host: r for r in site.results}
    lines = [f"Site {site.site}: {len(site.hosts)} hosts against {site.spec}", ""]
    lines += [_host_line(host, by_host.get(host), width) for host in site.hosts]
    lines += [f"  + {rep.computer or rep.host}  report {rep.path} of a computer the spec does "
              f"not have (it ran the bundle of host {rep.host!r})" for rep in site.unknown]
    lines += [f"  - {rep.path}: an older report of {rep.computer or rep.host}, not counted"
              for rep in site.superseded]
    lines += ["", f"{'drift' if site.has_drift else 'no drift'}: {len(site.in_sync)} in sync, "
              f"{len(site.drifted)} drifted, {len(site.missing)} without a report, "
              f"{len(site.unknown)} unknown reports"]
    text = "\n".join(escaped(line) for line in lines) + "\n"
    # each drifted host in full, as `dcomc drift SPEC ITS-REPORT` shows it
    return text + "".join("\n" + drift_text(r) for r in site.results if r.has_drift)


def _host_line(host: str, result: Drift | None, width: int) -> str:
    if result is None:
        return f"  ? {host:<{width}}  no report"
    mark = "~" if result.has_drift else "="
    rep = result.report
    status = _status(result).replace("_", " ")
    return (f"  {mark} {host:<{width}}  {status}: {_counts(result)}  "
            f"({rep.path}{', ' + rep.time if rep.time else ''})")


def _counts(result: Drift) -> str:
    return (f"{len(result.compliant)} compliant, {len(result.drifted)} drifted, "
            f"{len(result.missing)} missing, {len(result.extra)} extra"
            + (f", stale bundle ({len(result.stale)})" if result.stale else ""))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `dcomc drift` shows and its verdict (exit 1 when has_drift)."""

    has_drift: bool
    data: dict[str, Any]
    text: str


def drift_reports(compiled: Compiled, spec_path: Path, paths: Sequence[Path]) -> Outcome:
    """`dcomc drift SPEC REPORT...`: one report file is that PC against its host (`drift`);
    a folder, or several files, is the whole site (`drift_folder`)."""
    if len(paths) == 1 and not is_folder(paths[0]):
        one = drift(compiled, spec_path, load_report(paths[0]))
        return Outcome(one.has_drift, drift_json(one), drift_text(one))
    site = drift_folder(compiled, spec_path, paths)
    return Outcome(site.has_drift, site_json(site), site_text(site))
