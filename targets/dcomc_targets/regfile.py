"""`.reg` target: machine DCOM values, AppID security and Lsa options as a regedit v5 file.

Byte format (docs/windows.md#reg-files): `Windows Registry Editor Version 5.00`, UTF-16LE+BOM, CRLF;
binary values as `hex:` wrapped the way regedit wraps them. A .reg can only *replace* a value,
never merge into one, so:
- MachineAccessRestriction / MachineLaunchRestriction are not written by default — Windows
  and other software keep entries there that a replacement would silently drop; the
  PowerShell engine merges instead. `--replace-machine-limits` opts in to complete values
  (Windows' default + the spec's additions), with a warning naming the default used.
- Launch/Access permissions are written only when every principal's SID is known at build time
  and the AppID is known; everything else is listed at the top of the file, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    AppIdRunLocation,
    HostPlan,
    MachineDcomValue,
    MachineLimitAddition,
    Resource,
    SecurityOption,
)
from dcomc.windows import sd, sdbinary
from dcomc_targets.base import (
    PENDING_TITLE,
    Artifact,
    EmitContext,
    decode_utf16,
    listed_ids,
    text_lines,
    utf16_crlf,
)
from dcomc_targets.quoting import QuoteError, reg_key, reg_string, reg_unstring

HEADER = "Windows Registry Editor Version 5.00"
OLE_KEY = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Ole"
APPID_ROOT = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\AppID"
MAX_HEX_CHARS = 77  # regedit/Wine export wrap width, counted from the start of the line
SKIPPED_TITLE = "NOT IN THIS FILE - merged on the PC by Invoke-DcomConfig.ps1 instead:"

# Windows 10/11 defaults as observed (docs/windows.md#machine-limits), the base that an opt-in
# complete value starts from. The S-1-15-3-1024-... ACE is the lpacCom capability SID.
_CAPABILITY = "S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-" \
    "2453885448-3625952902-991631256"
DEFAULT_LIMITS = {
    "launch": "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)(A;;CCDCLCSWRP;;;S-1-5-32-562)"
    f"(A;;CCDCLCSWRP;;;LU)(A;;CCDCSW;;;AC)(A;;CCDCSW;;;{_CAPABILITY})",
    "access": "O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)"
    f"(A;;CCDCLC;;;LU)(A;;CCDC;;;AC)(A;;CCDC;;;{_CAPABILITY})",
}
LIMIT_VALUE = {"launch": "MachineLaunchRestriction", "access": "MachineAccessRestriction"}
# Windows' documented default AppID ACLs (the DefaultLaunchPermission and DefaultAccessPermission
# pages: Administrators, SYSTEM and INTERACTIVE may launch; only the server principal and SYSTEM
# may call): what a `permissions: add` ACL starts from in a .reg, which cannot read the PC. The
# engine starts from the AppID's own ACL or the PC's default instead (00-Header.ps1 holds the
# same descriptors; a test compares them).
DEFAULT_APP_ACL = {
    "launch": "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;IU)",
    "access": "O:BAG:BAD:(A;;CCDCLC;;;PS)(A;;CCDCLC;;;SY)",
}


@dataclass(frozen=True, slots=True, order=True)
class RegOp:
    """One value operation: set (type and data) or delete (`type` DELETE, data None).
    Security descriptors are carried as SDDL so that comparisons are semantic."""

    key: str
    name: str
    type: str
    data: str | int | None


@dataclass(frozen=True, slots=True)
class RegContent:
    ops: tuple[RegOp, ...]  # sorted: a .reg's meaning does not depend on value order
    pending: tuple[str, ...]  # resource ids left to the engine because not compilable
    skipped: tuple[str, ...]  # resource ids deliberately left to the engine (merges)


# --- plan → operations -------------------------------------------------------------------------


@dataclass(slots=True)
class _Planned:
    ops: list[tuple[Resource, RegOp]]
    pending: list[tuple[Resource, str]]
    skipped: list[tuple[Resource, str]]


def _plan_ops(host: HostPlan, ctx: EmitContext) -> _Planned:
    out = _Planned([], [], [])
    for resource in host.resources:
        _one(resource, out)
    _machine_limits(host, ctx, out)
    return out


def _appid_key(resource: AppIdAuthLevel | AppIdRunLocation | AppIdPermission) -> str | None:
    return f"{APPID_ROOT}\\{resource.app.appid}" if resource.app.appid else None


def _one(resource: Resource, out: _Planned) -> None:
    if isinstance(resource, AppIdAuthLevel | AppIdRunLocation | AppIdPermission):
        key = _appid_key(resource)
        if key is None:
            via = resource.app.progid or resource.app.clsid
            out.pending.append((resource, f"AppID resolved on the PC from {via}"))
            return
        for op in _appid_ops(resource, key, out):
            out.ops.append((resource, op))
    elif isinstance(resource, MachineDcomValue):
        data = resource.data
        out.ops.append((resource, RegOp(OLE_KEY, resource.name,
                                        resource.type if data is not None else "DELETE", data)))
    elif isinstance(resource, SecurityOption):
        out.ops.append((resource, RegOp(resource.key, resource.value_name, "REG_DWORD",
                                        resource.value)))


def _appid_ops(resource: Resource, key: str, out: _Planned) -> Iterator[RegOp]:
    if isinstance(resource, AppIdAuthLevel):
        if resource.value is None:
            yield RegOp(key, "AuthenticationLevel", "DELETE", None)
        else:
            yield RegOp(key, "AuthenticationLevel", "REG_DWORD", resource.value)
    elif isinstance(resource, AppIdRunLocation):
        yield RegOp(key, "RemoteServerName", "DELETE", None)
        yield RegOp(key, "ActivateAtStorage", "DELETE", None)
    elif isinstance(resource, AppIdPermission):
        unknown = [a.principal.name for a in resource.aces if not a.principal.static]
        if unknown:
            out.pending.append((resource, f"SID of {', '.join(unknown)} known only on the PC"))
            return
        name = "LaunchPermission" if resource.which == "launch" else "AccessPermission"
        yield RegOp(key, name, "REG_BINARY", acl_sddl(resource))


def acl_sddl(resource: AppIdPermission) -> str:
    """The descriptor dcomcnfg writes for an ACL (owner and group Administrators): exactly the
    ACEs, or with `add` Windows' documented default with the ACEs merged in."""
    aces = tuple(sd.Ace(a.principal.sid or "", a.mask) for a in resource.aces)
    if resource.mode == "add":
        aces = sd.merge_aces(sd.parse_sddl(DEFAULT_APP_ACL[resource.which]).dacl or (), aces)
    return sd.to_sddl(sd.SecurityDescriptor("S-1-5-32-544", "S-1-5-32-544", aces))


def _machine_limits(host: HostPlan, ctx: EmitContext, out: _Planned) -> None:
    additions: dict[str, list[MachineLimitAddition]] = {"launch": [], "access": []}
    for r in host.of_kind(MachineLimitAddition):
        additions[r.which].append(r)
    for which, items in additions.items():
        if not items:
            continue
        if not ctx.options.replace_machine_limits:
            out.skipped += [(r, "a .reg replaces the whole value; merged on the PC instead")
                            for r in items]
            continue
        unknown = [r for r in items if not r.principal.static]
        for r in unknown:
            out.pending.append((r, f"SID of {r.principal.name} known only on the PC"))
        if unknown:
            continue
        base = sd.parse_sddl(DEFAULT_LIMITS[which])
        merged = sd.merge_aces(base.dacl or (), [sd.Ace(r.principal.sid or "", r.mask)
                                                 for r in items])
        desc = sd.SecurityDescriptor(base.owner, base.group, merged)
        op = RegOp(OLE_KEY, LIMIT_VALUE[which], "REG_BINARY", sd.to_sddl(desc))
        out.ops += [(r, op) for r in items[:1]]


# --- writer ------------------------------------------------------------------------------------


class RegTarget:
    name: str = "reg"
    kinds: tuple[str, ...] = ("reg",)

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        planned = _plan_ops(host, ctx)
        lines = [HEADER, ""]
        lines += [f"; {line}" for line in ctx.header_lines(host, "Registry values for DCOM")]
        lines += [f"; Import elevated: reg import {host.name}.reg"]
        lines += _comment_block(ctx, host, PENDING_TITLE, planned.pending, strict=True)
        lines += _comment_block(ctx, host, SKIPPED_TITLE, planned.skipped, strict=False)
        if any(isinstance(r, AppIdPermission) and r.mode == "add" for r, _ in planned.ops):
            lines += _app_acl_warning()
        if ctx.options.replace_machine_limits and any(
            op.name in LIMIT_VALUE.values() for _, op in planned.ops
        ):
            lines += _limits_warning()
        lines += _body(planned.ops)
        return [Artifact(f"reg/{host.name}.reg", "reg", utf16_crlf(lines))]

    def expected(self, host: HostPlan, ctx: EmitContext) -> RegContent:
        planned = _plan_ops(host, ctx)
        return RegContent(
            tuple(sorted(_dedupe(op for _, op in planned.ops))),
            tuple(r.id for r, _ in planned.pending),
            tuple(r.id for r, _ in planned.skipped),
        )

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r, _ in _plan_ops(host, ctx).ops}

    def read(self, data: bytes) -> RegContent:
        return parse(decode_utf16(data, ".reg"))

    def sniff(self, data: bytes, name: str) -> bool:
        return data.startswith(b"\xff\xfe" + HEADER.encode("utf-16-le"))

    def inspect(self, data: bytes) -> Any:
        content = self.read(data)
        return {
            "kind": "reg",
            "values": [_inspect_op(op) for op in content.ops],
            "pending": list(content.pending),
            "skipped": list(content.skipped),
        }


def _dedupe(ops: Iterator[RegOp]) -> list[RegOp]:
    seen: dict[tuple[str, str], RegOp] = {}
    for op in ops:
        seen.setdefault((op.key.casefold(), op.name.casefold()), op)
    return list(seen.values())


def _comment_block(ctx: EmitContext, host: HostPlan, title: str,
                   items: list[tuple[Resource, str]], *, strict: bool) -> list[str]:
    if not items:
        return []
    lines = [";", f"; {title}"]
    for resource, why in items:
        line = ctx.not_compiled(host, "reg", resource, why) if strict else f"{resource.id}: {why}"
        lines.append(f";   {line}")
    return lines


def _app_acl_warning() -> list[str]:
    return [
        ";",
        "; LaunchPermission / AccessPermission values below are COMPLETE values: the spec's",
        "; entries added to Windows' documented default ACL (a .reg cannot read this PC).",
        "; Importing them REPLACES an ACL the AppID already has; the PowerShell engine and the",
        "; MSI add to the AppID's own ACL instead. Defaults used (launch, access):",
        f";   {DEFAULT_APP_ACL['launch']}",
        f";   {DEFAULT_APP_ACL['access']}",
    ]


def _limits_warning() -> list[str]:
    return [
        ";",
        "; WARNING: MachineLaunchRestriction / MachineAccessRestriction below are COMPLETE values",
        "; (opt-in --replace-machine-limits). They start from the Windows 10/11 default observed",
        "; in docs/windows.md#machine-limits and add this spec's entries; importing them REPLACES",
        "; what this PC has, dropping anything Windows or other software added.",
        "; Default launch limit used:",
        f";   {DEFAULT_LIMITS['launch']}",
        "; Default access limit used:",
        f";   {DEFAULT_LIMITS['access']}",
    ]


def _body(ops: list[tuple[Resource, RegOp]]) -> list[str]:
    lines: list[str] = []
    by_key: dict[str, list[tuple[Resource, RegOp]]] = {}
    for resource, op in ops:
        by_key.setdefault(op.key, []).append((resource, op))
    for key, items in by_key.items():
        lines += ["", reg_key(key)]
        done: set[str] = set()
        last: Resource | None = None
        for resource, op in items:
            if op.name in done:
                continue
            done.add(op.name)
            if resource is not last:
                lines.append(f"; {resource.id} ({resource.prov.guide})")
            last = resource
            lines += _value_lines(op)
    return lines


def _value_lines(op: RegOp) -> list[str]:
    prefix = f"{reg_string(op.name)}="
    if op.type == "DELETE":
        return [prefix + "-"]
    if op.type == "REG_DWORD":
        assert isinstance(op.data, int)
        return [prefix + f"dword:{op.data:08x}"]
    if op.type == "REG_SZ":
        assert isinstance(op.data, str)
        return [prefix + reg_string(op.data)]
    assert isinstance(op.data, str)
    return wrap_hex(prefix + "hex:", sdbinary.sddl_to_binary(op.data))


def wrap_hex(prefix: str, data: bytes) -> list[str]:
    """Hex bytes wrapped as regedit does: `\\` at the end, next line indented two spaces."""
    lines: list[str] = []
    current = prefix
    for i, byte in enumerate(data):
        current += f"{byte:02x}"
        if i < len(data) - 1:
            current += ","
            if len(current) >= MAX_HEX_CHARS:
                lines.append(current + "\\")
                current = "  "
    lines.append(current)
    return lines


# --- reader ------------------------------------------------------------------------------------


def parse(text: str) -> RegContent:
    """Read a v5 .reg file: keys, value operations, and dcomc's pending/skipped comments."""
    lines = text_lines(text)
    if not lines or lines[0] != HEADER:
        raise ValueError(".reg: missing 'Windows Registry Editor Version 5.00' header")
    ops: list[RegOp] = []
    bodies: list[str] = []  # comment text, "" for other lines (they end a comment block)
    key: str | None = None
    for line in _logical_lines(lines[1:]):
        if line.startswith(";"):
            bodies.append(line[1:])
            continue
        bodies.append("")
        if not line.strip():
            continue
        if line.startswith("["):
            key = _key_line(line)
            continue
        if key is None:
            raise ValueError(f".reg: value outside a key: {line[:40]!r}")
        ops.append(_value_line(key, line))
    return RegContent(tuple(sorted(ops)), listed_ids(bodies, PENDING_TITLE),
                      listed_ids(bodies, SKIPPED_TITLE))


def _logical_lines(lines: list[str]) -> Iterator[str]:
    """Join `\\`-continued hex lines (regedit's wrapping) into one line."""
    buffer = ""
    for line in lines:
        if buffer:
            line = buffer + line.lstrip(" ")
            buffer = ""
        if line.endswith("\\") and not line.startswith(";") and "=hex" in line:
            buffer = line[:-1]
            continue
        yield line
    if buffer:
        raise ValueError(".reg: file ends inside a continued line")


def _key_line(line: str) -> str:
    if not line.endswith("]") or line.startswith("[-"):
        raise ValueError(f".reg: unsupported key line {line[:60]!r}")
    return line[1:-1]


def _value_line(key: str, line: str) -> RegOp:
    if line.startswith("@="):
        name, rest = "", line[2:]
    else:
        name, rest = reg_unstring(line)
        if not rest.startswith("="):
            raise ValueError(f".reg: expected '=' after value name in {line[:60]!r}")
        rest = rest[1:]
    return RegOp(key, name, *_data(name, rest))


def _data(name: str, rest: str) -> tuple[str, str | int | None]:
    if rest == "-":
        return "DELETE", None
    if rest.startswith("dword:"):
        digits = rest[6:]
        if not 1 <= len(digits) <= 8:
            raise ValueError(f".reg: bad dword {rest!r}")
        return "REG_DWORD", int(digits, 16)
    if rest.startswith('"'):
        value, tail = reg_unstring(rest)
        if tail:
            raise ValueError(f".reg: junk after string: {tail!r}")
        return "REG_SZ", value
    if rest.startswith("hex:"):
        blob = bytes.fromhex(rest[4:].replace(",", ""))
        return "REG_BINARY", sdbinary.binary_to_sddl(blob) if _is_sd(name) else blob.hex()
    if rest.startswith("hex(") and "):" in rest:  # other types, as in a `reg export` of a PC
        kind, _, body = rest[4:].partition("):")
        return f"hex({kind})", bytes.fromhex(body.replace(",", "")).hex()
    raise QuoteError(f".reg: unsupported value data {rest[:30]!r}")


def _is_sd(name: str) -> bool:
    return name.endswith(("Permission", "Restriction"))


def _inspect_op(op: RegOp) -> dict[str, Any]:
    item: dict[str, Any] = {"key": op.key, "name": op.name, "type": op.type, "data": op.data}
    if op.type == "REG_BINARY" and isinstance(op.data, str) and _is_sd(op.name):
        kind: sd.RightsKind = "launch" if "Launch" in op.name else "access"
        table = sd.rights_table(sd.parse_sddl(op.data), kind)
        item["rights"] = [{"principal": p, "type": t, "rights": list(r)} for p, t, r in table]
    return item
