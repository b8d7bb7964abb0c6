"""`dcomc explain`: a DCOM error code or event → its likely causes, each pointed at the plan.

The knowledge lives in `data/explain.yaml` (`knowledge` validates it). With a spec, each
cause's `look_at` entries are evaluated on the compiled plan (`analyses`): a resource kind (on
hosts of some roles, filtered by fields) lists the concrete resources and their planned
values; an analysis checks something across hosts — e.g. whether each client's run_as account
is in the servers' Launch and Access ACLs.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any, Literal

from dcomc.explain.analyses import cause_findings
from dcomc.explain.knowledge import Entry, LookAt, knowledge
from dcomc.pipeline import Compiled
from dcomc.plan.verify import Finding as FlowFinding

_HEX8 = re.compile(r"[0-9a-f]{8}")


# --- the code as typed -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    key: str  # canonical: 0x%08X for an HRESULT, the decimal id for an event
    type: Literal["hresult", "event"]
    value: int

    def forms(self) -> dict[str, str | int]:
        if self.type == "event":
            return {"event": self.value}
        signed = self.value - (1 << 32) if self.value & 0x80000000 else self.value
        return {"hex": f"0x{self.value:08X}", "unsigned": self.value, "signed": signed}


def parse_code(text: str) -> Code | None:
    """0x80070005, 80070005, HR=80070005, 2147942405, -2147024891; 10036 or `event 10036`."""
    t = text.strip().lower().replace(" ", "")
    for prefix in ("hr=", "hr:", "hresult=", "hresult:", "event", "eventid"):
        if t.startswith(prefix) and len(t) > len(prefix):
            t = t[len(prefix):]
            break
    value: int | None = None
    try:
        if t.startswith("0x"):
            value = int(t[2:], 16)
        elif t.startswith("-"):
            number = int(t, 10)
            value = number & 0xFFFFFFFF if number >= -(1 << 31) else None
        elif _HEX8.fullmatch(t):  # eight hex digits without 0x, as Windows prints HR=...
            value = int(t, 16)
        elif t.isdigit():
            number = int(t, 10)
            if number <= 0xFFFF:
                return Code(str(number), "event", number)
            value = number
    except ValueError:
        return None
    if value is None or not 0 <= value <= 0xFFFFFFFF:
        return None
    return Code(f"0x{value:08X}", "hresult", value)


def lookup(text: str) -> tuple[Code, Entry] | None:
    code = parse_code(text)
    if code is None:
        return None
    entry = knowledge().codes.get(code.key)
    if entry is None or entry.type != code.type:
        return None
    return code, entry


# --- output ----------------------------------------------------------------------------------


def _look_json(look: LookAt) -> dict[str, Any]:
    if look.kind is not None:
        return {"kind": look.kind, "roles": list(look.roles), "where": dict(look.where),
                "what": look.what}
    return {"analysis": look.analysis, "roles": list(look.roles), "what": look.what}


def explain_json(code: Code, entry: Entry, compiled: Compiled | None = None,
                 spec: str | None = None) -> dict[str, Any]:
    causes = []
    for rank, cause in enumerate(entry.causes, 1):
        item: dict[str, Any] = {
            "rank": rank, "title": cause.title, "detail": cause.detail, "source": cause.source,
            "guide": cause.guide, "look_at": [_look_json(look) for look in cause.look_at],
            "check": cause.check, "check_source": cause.check_source,
        }
        if compiled is not None:
            item["findings"] = [f.json() for f in cause_findings(compiled, cause)]
        causes.append(item)
    return {
        "code": code.key, "type": code.type, "forms": code.forms(),
        "name": entry.name, "name_source": entry.name_source,
        "meaning": entry.meaning, "meaning_source": entry.meaning_source,
        "seen_as": [s.model_dump() for s in entry.seen_as],
        "spec": spec, "causes": causes,
    } | ({"flows": [_flow_json(f) for f in predicted(compiled, code)]} if compiled else {})


def predicted(compiled: Compiled, code: Code) -> list[FlowFinding]:
    """The flow verifier's findings (the same walk `dcomc check` reports) that predict `code`."""
    return [f for f in compiled.verified if code.key in f.rule.windows]


def _flow_json(f: FlowFinding) -> dict[str, Any]:
    span = f.span
    return {"code": f.code, "severity": str(f.rule.severity), "message": f.message,
            "file": span.file if span else None, "line": span.line if span else None,
            "col": span.col if span else None,
            "flows": [{"client": x.client, "client_host": x.client_host, "server": x.server,
                       "server_host": x.server_host} for x in f.flows]}


_MARK: dict[str, str] = {"info": "  ", "ok": "ok", "problem": "!!", "unknown": "??"}
WIDTH = 100


def _wrap(text: str, indent: str, hang: str = "") -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=indent,
                         subsequent_indent=indent + hang, break_on_hyphens=False)


def explain_text(code: Code, entry: Entry, compiled: Compiled | None = None,
                 spec: str | None = None) -> str:
    forms = code.forms()
    head = f"{code.key}  {entry.name}"
    lines = [head]
    if code.type == "hresult":
        lines.append(f"  also written: {code.key[2:]}, {forms['unsigned']}, {forms['signed']}")
    lines.append(f"  [name: {' '.join(entry.name_source.split())}]")
    lines += _wrap(entry.meaning, "  ")
    lines.append(f"  [source: {' '.join(entry.meaning_source.split())}]")
    for seen in entry.seen_as:
        lines += _wrap(f"Seen as: {seen.text} [source: {seen.source}]", "  ")
    lines += ["", "Likely causes, most likely first:"]
    for rank, cause in enumerate(entry.causes, 1):
        guide = f"  (guide {cause.guide})" if cause.guide else ""
        lines += ["", f"{rank}. {cause.title}{guide}"]
        lines += _wrap(cause.detail, "   ")
        lines.append(f"   [source: {' '.join(cause.source.split())}]")
        if cause.look_at:
            lines.append("   Look at in the plan:")
            for look in cause.look_at:
                lines += _wrap(f"- {_look_text(look)}: {look.what}", "     ", "  ")
        lines += _wrap(f"Check: {cause.check}", "   ")
        lines.append(f"   [source: {' '.join(cause.check_source.split())}]")
        if compiled is not None:
            found = cause_findings(compiled, cause)
            lines.append(f"   In {spec}:" if found else f"   In {spec}: nothing in the plan")
            for f in found:
                where = f"{f.host} {f.resource}" if f.resource else f.host
                lines += _wrap(f"{_MARK[f.status]} {where}: {f.value}", "     ", "   ")
    if compiled is not None:
        lines += _flow_text(predicted(compiled, code), code, spec)
    return "\n".join(lines) + "\n"


def _flow_text(found: list[FlowFinding], code: Code, spec: str | None) -> list[str]:
    """The flow verifier's walk of every flow, as `dcomc check` reports it."""
    lines = ["", f"Flows of {spec} that will fail with {code.key} (the verifier's walk of "
             "what Windows checks, as `dcomc check` reports it):"]
    if not found:
        return [*lines, "   none"]
    for f in found:
        where = f"{f.span}: " if f.span else ""
        lines += _wrap(f"{where}{f.rule.severity}: {f.message} [{f.code}]", "   ", "  ")
    return lines


def _look_text(look: LookAt) -> str:
    text = f"analysis {look.analysis}" if look.analysis is not None else str(look.kind)
    if look.where:
        text += " where " + ", ".join(f"{k}={v}" for k, v in look.where.items())
    if look.roles:
        text += f" on {'/'.join(look.roles)} hosts"
    return text

