"""secedit INF security template: security options and user rights (docs/windows.md#secedit).

Byte format: UTF-16LE with BOM, CRLF, `[Unicode]` first, `[Version] signature="$CHICAGO$"`.
All explanations live as `;` comments inside `[Version]`: Windows' INF parser skips comments
anywhere, but simpler readers (Samba's gp_inf, used in the tests) take every line of the data
sections as data, so comments stay out of those.

`[Privilege Rights]` REPLACES a right's whole list of holders when secedit applies it. The line
written here is therefore the holders Windows has by default plus this spec's accounts; holders
added on the PC by other software are NOT kept by the INF. The PowerShell engine merges instead
(exports the current list, adds, reimports) — the header comment says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcomc.plan.model import HostPlan, Resource, SecurityOption, UserRight
from dcomc_targets.base import (
    PENDING_TITLE,
    Artifact,
    EmitContext,
    decode_utf16,
    listed_ids,
    text_lines,
    utf16_crlf,
)
from dcomc_targets.quoting import inf_principal

# Holders Windows grants by default (observed, docs/windows.md#secedit): NT SERVICE\ALL SERVICES.
DEFAULT_HOLDERS: dict[str, tuple[str, ...]] = {"SeServiceLogonRight": ("S-1-5-80-0",)}
REG_DWORD = 4


@dataclass(frozen=True, slots=True)
class InfContent:
    registry_values: tuple[tuple[str, int, str], ...]  # (MACHINE\path\value, type, data)
    privilege_rights: tuple[tuple[str, tuple[str, ...]], ...]  # (right, SIDs)
    pending: tuple[str, ...]


def inf_registry_path(key: str, value_name: str) -> str:
    """`HKEY_LOCAL_MACHINE\\SYSTEM\\...` → the `MACHINE\\System\\...` form secedit exports."""
    prefix = "HKEY_LOCAL_MACHINE\\"
    if not key.upper().startswith(prefix):
        raise ValueError(f"INF: only HKEY_LOCAL_MACHINE values are supported, not {key}")
    rest = key[len(prefix) :]
    if rest.upper().startswith("SYSTEM\\"):
        rest = "System\\" + rest[len("SYSTEM\\") :]
    path = f"MACHINE\\{rest}\\{value_name}"
    if any(c == '"' or not 0x20 <= ord(c) < 0x7F for c in path):
        raise ValueError(f"INF: registry path must be printable ASCII without quotes: {path!r}")
    return path


@dataclass(slots=True)
class _Planned:
    values: list[tuple[Resource, str, int, str]]
    rights: dict[str, list[str]]
    pending: list[tuple[Resource, str]]


def _plan(host: HostPlan) -> _Planned:
    out = _Planned([], {}, [])
    for option in host.of_kind(SecurityOption):
        path = inf_registry_path(option.key, option.value_name)
        out.values.append((option, path, REG_DWORD, str(option.value)))
    for right in host.of_kind(UserRight):
        if right.principal.sid is None:
            out.pending.append((right, f"SID of {right.principal.name} known only on the PC"))
            continue
        holders = out.rights.setdefault(right.right, list(DEFAULT_HOLDERS.get(right.right, ())))
        if right.principal.sid not in holders:
            holders.append(right.principal.sid)
    return out


class SeceditTarget:
    name: str = "secedit"
    kinds: tuple[str, ...] = ("inf",)

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        planned = _plan(host)
        lines = ["[Unicode]", "Unicode=yes", "[Version]", 'signature="$CHICAGO$"', "Revision=1"]
        lines += [f"; {line}" for line in ctx.header_lines(host, "Security template (secedit)")]
        lines += _usage(host)
        lines += _explain(planned)
        if planned.pending:
            lines += [";", f"; {PENDING_TITLE}"]
            lines += [f";   {ctx.not_compiled(host, 'secedit', r, why)}"
                      for r, why in planned.pending]
        if planned.values:
            lines.append("[Registry Values]")
            lines += [f"{path}={rtype},{data}" for _, path, rtype, data in planned.values]
        if planned.rights:
            lines.append("[Privilege Rights]")
            lines += [f"{right} = {','.join(inf_principal(s) for s in sids)}"
                      for right, sids in planned.rights.items()]
        return [Artifact(f"secedit/{host.name}.inf", "inf", utf16_crlf(lines))]

    def expected(self, host: HostPlan, ctx: EmitContext) -> InfContent:
        planned = _plan(host)
        return InfContent(
            tuple((path, rtype, data) for _, path, rtype, data in planned.values),
            tuple((right, tuple(sids)) for right, sids in planned.rights.items()),
            tuple(r.id for r, _ in planned.pending),
        )

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        planned = _plan(host)
        pending = {r.id for r, _ in planned.pending}
        return {r.id for r, *_ in planned.values} | {
            r.id for r in host.of_kind(UserRight) if r.id not in pending}

    def read(self, data: bytes) -> InfContent:
        return parse(decode_utf16(data, "INF"))

    def sniff(self, data: bytes, name: str) -> bool:
        return data.startswith(b"\xff\xfe" + "[Unicode]".encode("utf-16-le"))

    def inspect(self, data: bytes) -> Any:
        content = self.read(data)
        return {
            "kind": "inf",
            "registry_values": [{"path": p, "type": t, "data": d}
                                for p, t, d in content.registry_values],
            "privilege_rights": {r: list(s) for r, s in content.privilege_rights},
            "pending": list(content.pending),
        }


def _usage(host: HostPlan) -> list[str]:
    return [
        ";",
        "; Apply elevated (only the areas this template sets):",
        f";   secedit /configure /db %windir%\\security\\database\\dcomc.sdb /cfg {host.name}.inf"
        " /areas SECURITYPOLICY USER_RIGHTS /log %windir%\\security\\logs\\dcomc.log",
        "; Check first:",
        f";   secedit /validate {host.name}.inf",
    ]


def _explain(planned: _Planned) -> list[str]:
    lines: list[str] = []
    for resource, path, _, data in planned.values:
        policy = resource.policy if isinstance(resource, SecurityOption) else ""
        lines += [";", f"; {path.rsplit(chr(92), 1)[-1]}={data}: {policy} "
                       f"({resource.prov.guide}; {resource.id})"]
    if planned.rights:
        lines += [
            ";",
            "; [Privilege Rights] REPLACES each right's whole holder list. The lines below are",
            "; Windows' default holders plus this spec's accounts; any other holder this PC has",
            "; would be REMOVED. Export the current list first and add it",
            ";   secedit /export /areas USER_RIGHTS /cfg current.inf",
            "; or let Invoke-DcomConfig.ps1 merge the rights instead of importing this section.",
            "; Default holders kept: " + ", ".join(
                f"{right}: {', '.join(DEFAULT_HOLDERS.get(right, ()))}"
                for right in planned.rights),
        ]
    return lines


# --- reader ------------------------------------------------------------------------------------


def parse(text: str) -> InfContent:
    sections = _sections(text)
    if "Unicode" not in sections or "Version" not in sections:
        raise ValueError("INF: missing [Unicode] or [Version]")
    version = dict(_split(line, "=") for line in sections["Version"] if not line.startswith(";"))
    if version.get("signature") != '"$CHICAGO$"':
        raise ValueError('INF: [Version] signature is not "$CHICAGO$"')
    values = tuple(_registry_value(line) for line in _data(sections.get("Registry Values", [])))
    rights = tuple(_right(line) for line in _data(sections.get("Privilege Rights", [])))
    return InfContent(values, rights, _pending(sections["Version"]))


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text_lines(text):
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is None:
            if line.strip():
                raise ValueError(f"INF: text before the first section: {line[:40]!r}")
        else:
            current.append(line)
    return sections


def _data(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip() and not line.lstrip().startswith(";")]


def _split(line: str, sep: str) -> tuple[str, str]:
    key, found, value = line.partition(sep)
    if not found:
        raise ValueError(f"INF: expected '{sep}' in {line[:60]!r}")
    return key.strip(), value.strip()


def _registry_value(line: str) -> tuple[str, int, str]:
    path, value = _split(line, "=")
    rtype, _, data = value.partition(",")
    if not rtype.strip().isdecimal() or len(rtype.strip()) > 2:  # REG_SZ 1 ... REG_QWORD 11
        raise ValueError(f"INF: bad registry value type {rtype[:20]!r} in {line[:60]!r}")
    return path.strip('"'), int(rtype), data


def _right(line: str) -> tuple[str, tuple[str, ...]]:
    right, holders = _split(line, "=")
    sids = []
    for holder in holders.split(","):
        holder = holder.strip()
        if not holder.startswith("*S-1-"):
            raise ValueError(f"INF: holder {holder!r} of {right} is not a *SID")
        sids.append(holder[1:])
    return right, tuple(sids)


def _pending(version: list[str]) -> tuple[str, ...]:
    return listed_ids((line[1:] if line.startswith(";") else "" for line in version),
                      PENDING_TITLE)
