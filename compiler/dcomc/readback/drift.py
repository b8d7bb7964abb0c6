"""`dcomc drift`: a plant PC's state against its host's plan.

It compares the JSON that `Invoke-DcomConfig.ps1 -Mode Report` writes on a plant PC
(`{Site, Host, Computer, Generator, Spec, SpecSha256, Time, Resources: [{Id, Compliant, Reason,
State}]}`) with that host's plan in the PowerShell data form (`compare.spec_host_data`): each
resource is compliant, drifted, missing from the report, or only in the report; a bundle built
from another spec or dcomc is stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcomc.diagnostics import escaped
from dcomc.pipeline import Compiled
from dcomc.readback.compare import InputError, load_json, read_regular, spec_host_data


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
                  text("SpecSha256"), text("Time"), tuple(resources))


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
    # values of the report (reasons, names) may hold a newline or an escape sequence
    return "\n".join(escaped(line) for line in lines) + "\n"
