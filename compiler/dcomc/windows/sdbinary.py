"""COM security descriptors in their registry form: self-relative binary, and hex dumps.

The registry holds launch/access permissions as REG_BINARY self-relative SECURITY_DESCRIPTORs
(docs/windows.md#appid). We *write* Windows' RtlMakeSelfRelativeSD order (header, SACL, DACL,
Owner, Group), as Windows does (docs/windows.md#security-descriptors), but we
*read* any order, because .NET writes Owner, Group, SACL, DACL and both are valid (offsets are
explicit). Every malformed input raises `SDError` with the offset and what was wrong there:
nothing is repaired silently. The descriptor model, SDDL and the COM rules are in `sd`.

`from_binary` reads what COM ACLs hold (no SACL, allow/deny ACEs only); `read_binary` reads
every descriptor Windows writes (a SACL with its mandatory label or audit ACEs, object and
callback ACEs), for `dcomc inspect` and `sd decode` of a live PC's values.
"""

from __future__ import annotations

import re
import struct
import uuid

from dcomc.windows.sd import (
    CALLBACK_TYPES,
    OBJECT_TYPES,
    SE_DACL_PRESENT,
    SE_SACL_PRESENT,
    SE_SELF_RELATIVE,
    Ace,
    SDError,
    SecurityDescriptor,
    parse_sddl,
    to_sddl,
    validate_com,
)

_HEADER = struct.Struct("<BBHIIII")  # Revision, Sbz1, Control, OffsetOwner/Group/Sacl/Dacl
_ACL_HEADER = struct.Struct("<BBHHH")  # AclRevision, Sbz1, AclSize, AceCount, Sbz2
_ACE_HEADER = struct.Struct("<BBHI")  # AceType, AceFlags, AceSize, Mask
_SD_REVISION = 1
_ACL_REVISION = 2
_ACL_REVISION_DS = 4  # valid too (docs/windows.md#security-descriptors); read, never written
_ACCESS_ALLOWED = 0
_ACCESS_DENIED = 1
_MAX_SUB_AUTHORITIES = 15

# Names for ACE types we refuse, so the message says what was found (MS-DTYP §2.4.4.1).
_ACE_TYPE_NAMES: dict[int, str] = {
    2: "SYSTEM_AUDIT",
    3: "SYSTEM_ALARM",
    4: "ACCESS_ALLOWED_COMPOUND",
    5: "ACCESS_ALLOWED_OBJECT",
    6: "ACCESS_DENIED_OBJECT",
    7: "SYSTEM_AUDIT_OBJECT",
    8: "SYSTEM_ALARM_OBJECT",
    9: "ACCESS_ALLOWED_CALLBACK",
    10: "ACCESS_DENIED_CALLBACK",
    11: "ACCESS_ALLOWED_CALLBACK_OBJECT",
    12: "ACCESS_DENIED_CALLBACK_OBJECT",
    13: "SYSTEM_AUDIT_CALLBACK",
    17: "SYSTEM_MANDATORY_LABEL",
    18: "SYSTEM_RESOURCE_ATTRIBUTE",
    19: "SYSTEM_SCOPED_POLICY_ID",
}


# --------------------------------------------------------------------------------------------
# Descriptor -> binary


def _sid_bytes(sid: str) -> bytes:
    """SID: revision 1, count, 6-byte big-endian authority, little-endian sub-authorities (§3.2)."""
    parts = [int(p) for p in sid.split("-")[2:]]
    authority, subs = parts[0], parts[1:]
    head = struct.pack("<BB", 1, len(subs)) + authority.to_bytes(6, "big")
    return head + struct.pack(f"<{len(subs)}I", *subs)


def _ace_bytes(ace: Ace) -> bytes:
    sid = _sid_bytes(ace.sid)
    if ace.kind is None:
        ace_type = _ACCESS_ALLOWED if ace.allow else _ACCESS_DENIED
        return _ACE_HEADER.pack(ace_type, ace.flags, _ACE_HEADER.size + len(sid), ace.mask) + sid
    body = _object_part(ace) + sid + ace.data
    return _ACE_HEADER.pack(ace.kind, ace.flags, _ACE_HEADER.size + len(body), ace.mask) + body


def _object_part(ace: Ace) -> bytes:
    """An object ACE's Flags and GUIDs (MS-DTYP 2.4.4.3): GUIDs in their mixed-endian form."""
    if ace.kind not in OBJECT_TYPES:
        return b""
    guids = [g for g in (ace.object_type, ace.inherited_object_type) if g]
    flags = (1 if ace.object_type else 0) | (2 if ace.inherited_object_type else 0)
    return struct.pack("<I", flags) + b"".join(uuid.UUID(g).bytes_le for g in guids)


def _acl_bytes(aces: tuple[Ace, ...], what: str = "DACL") -> bytes:
    body = b"".join(_ace_bytes(ace) for ace in aces)
    size = _ACL_HEADER.size + len(body)
    if size > 0xFFFF or len(aces) > 0xFFFF:
        raise SDError(f"{what} of {len(aces)} ACEs ({size} bytes) exceeds the 64 KiB ACL limit")
    # object ACEs need the DS revision (Windows writes 4 for them, 2 otherwise)
    revision = _ACL_REVISION_DS if any(a.kind in OBJECT_TYPES for a in aces) else _ACL_REVISION
    return _ACL_HEADER.pack(revision, 0, size, len(aces), 0) + body


def to_binary(sd: SecurityDescriptor) -> bytes:
    """Self-relative descriptor in RtlMakeSelfRelativeSD order: header, SACL, DACL, Owner,
    Group (no SACL in what dcomc writes, so those bytes are header, DACL, Owner, Group)."""
    if sd.control & SE_SACL_PRESENT and sd.sacl is None:
        raise SDError("SACL not supported: COM launch/access descriptors never carry one")
    components = (
        ("sacl", _acl_bytes(sd.sacl, "SACL") if sd.sacl is not None else b""),
        ("dacl", _acl_bytes(sd.dacl) if sd.dacl is not None else b""),
        ("owner", _sid_bytes(sd.owner) if sd.owner is not None else b""),
        ("group", _sid_bytes(sd.group) if sd.group is not None else b""),
    )
    offsets: dict[str, int] = {}
    pos = _HEADER.size
    for name, blob in components:  # every piece is a multiple of 4, so all stay aligned
        offsets[name] = pos if blob else 0
        pos += len(blob)
    header = _HEADER.pack(
        _SD_REVISION, 0, sd.control, offsets["owner"], offsets["group"], offsets["sacl"],
        offsets["dacl"]
    )
    return header + b"".join(blob for _, blob in components)


# --------------------------------------------------------------------------------------------
# Binary -> descriptor


def _need(data: bytes, offset: int, size: int, end: int, what: str) -> None:
    if offset + size > end:
        raise SDError(
            f"{what} at offset {offset} needs {size} bytes but only {max(end - offset, 0)} "
            f"remain (descriptor of {len(data)} bytes is truncated or inconsistent)"
        )


def _read_sid(data: bytes, offset: int, end: int, what: str) -> str:
    _need(data, offset, 8, end, what)
    revision, count = data[offset], data[offset + 1]
    if revision != 1:
        raise SDError(f"{what} at offset {offset} has SID revision {revision}, expected 1")
    if count > _MAX_SUB_AUTHORITIES:
        raise SDError(f"{what} at offset {offset} has {count} sub-authorities, at most 15 allowed")
    _need(data, offset, 8 + 4 * count, end, what)
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return "-".join(["S", "1", str(authority), *(str(s) for s in subs)])


def _read_ace(data: bytes, pos: int, end: int, index: int,
              general: bool = False) -> tuple[Ace, int]:
    """The ACE at `pos` (inside an ACL ending at `end`) and its AceSize."""
    what = f"ACE #{index}"
    _need(data, pos, 4, end, what)
    ace_type, flags, size = struct.unpack_from("<BBH", data, pos)
    if general and ace_type not in (_ACCESS_ALLOWED, _ACCESS_DENIED):
        return _read_any_ace(data, pos, end, what), size
    if ace_type not in (_ACCESS_ALLOWED, _ACCESS_DENIED):
        name = _ACE_TYPE_NAMES.get(ace_type, "unknown")
        raise SDError(
            f"{what} has unsupported ACE type 0x{ace_type:02x} ({name}); COM ACLs contain only "
            "ACCESS_ALLOWED (0) and ACCESS_DENIED (1) ACEs"
        )
    if size < _ACE_HEADER.size + 8 or size % 4:
        raise SDError(f"{what} has invalid AceSize {size} (must be >= 16 and a multiple of 4)")
    _need(data, pos, size, end, what)
    (mask,) = struct.unpack_from("<I", data, pos + 4)
    sid = _read_sid(data, pos + _ACE_HEADER.size, pos + size, f"SID of {what}")
    return Ace(sid, mask, ace_type == _ACCESS_ALLOWED, flags), size


def _read_any_ace(data: bytes, pos: int, end: int, what: str) -> Ace:
    """An ACE of any type but allow/deny: its object part, SID and callback data."""
    _need(data, pos, _ACE_HEADER.size, end, what)  # _read_ace checked 4 of its 8 bytes
    ace_type, flags, size, mask = _ACE_HEADER.unpack_from(data, pos)
    if ace_type not in _ACE_TYPE_NAMES or ace_type == 4:
        name = _ACE_TYPE_NAMES.get(ace_type, "unknown")
        raise SDError(f"{what} has unsupported ACE type 0x{ace_type:02x} ({name})")
    if size < _ACE_HEADER.size + 8 or size % 4:
        raise SDError(f"{what} has invalid AceSize {size} (must be >= 16 and a multiple of 4)")
    _need(data, pos, size, end, what)
    at, stop = pos + _ACE_HEADER.size, pos + size
    guids: list[str | None] = [None, None]
    if ace_type in OBJECT_TYPES:
        _need(data, at, 4, stop, f"object flags of {what}")
        (present,) = struct.unpack_from("<I", data, at)
        at += 4
        for bit in (0, 1):
            if present & (1 << bit):
                _need(data, at, 16, stop, f"object GUID of {what}")
                guids[bit] = str(uuid.UUID(bytes_le=data[at : at + 16]))
                at += 16
    sid = _read_sid(data, at, stop, f"SID of {what}")
    at += 8 + 4 * data[at + 1]
    # callback data (and a resource attribute) follows the SID, in whole 4-byte units (size,
    # the header, the object part and the SID are all multiples of 4); other types may be padded
    extra = data[at:stop] if ace_type in CALLBACK_TYPES or ace_type == 18 else b""
    return Ace(sid, mask, flags=flags, kind=ace_type, object_type=guids[0],
               inherited_object_type=guids[1], data=extra)


def _read_acl(data: bytes, offset: int, general: bool = False,
              what: str = "DACL") -> tuple[Ace, ...]:
    _need(data, offset, _ACL_HEADER.size, len(data), f"{what} header")
    revision, _sbz1, size, count, _sbz2 = _ACL_HEADER.unpack_from(data, offset)
    if revision not in (_ACL_REVISION, _ACL_REVISION_DS):
        raise SDError(f"{what} has revision {revision}, expected 2 (ACL_REVISION) or 4")
    if size < _ACL_HEADER.size or size % 4:
        raise SDError(f"{what} has invalid AclSize {size} (must be >= 8 and a multiple of 4)")
    _need(data, offset, size, len(data), f"{what} (AclSize {size})")
    end, pos = offset + size, offset + _ACL_HEADER.size
    aces: list[Ace] = []
    for index in range(count):
        if pos >= end:
            raise SDError(
                f"{what} AceCount {count} and AclSize {size} are inconsistent: "
                f"only {index} ACEs fit"
            )
        ace, ace_size = _read_ace(data, pos, end, index, general)
        aces.append(ace)
        pos += ace_size
    return tuple(aces)


def _check_offset(data: bytes, offset: int, what: str) -> None:
    if offset == 0:
        return
    if offset < _HEADER.size:
        raise SDError(f"{what} offset {offset} points into the 20-byte header")
    if offset >= len(data):
        raise SDError(f"{what} offset {offset} is past the end of the {len(data)}-byte descriptor")
    if offset % 4:
        raise SDError(f"{what} offset {offset} is not 4-byte aligned")


def _read_header(data: bytes, general: bool = False) -> tuple[int, int, int, int, int]:
    """(control, owner, group, dacl, sacl offsets) after checking the header."""
    if len(data) < _HEADER.size:
        raise SDError(f"security descriptor truncated: {len(data)} bytes, the header alone is 20")
    revision, _sbz1, control, owner, group, sacl, dacl = _HEADER.unpack_from(data)
    if revision != _SD_REVISION:
        raise SDError(f"security descriptor revision {revision}, expected 1")
    if not control & SE_SELF_RELATIVE:
        raise SDError(f"control 0x{control:04x} lacks SE_SELF_RELATIVE: not a self-relative SD")
    if not general and (control & SE_SACL_PRESENT or sacl):
        raise SDError("SACL not supported: COM launch/access descriptors never carry one")
    if sacl and not control & SE_SACL_PRESENT:
        raise SDError(f"SACL offset {sacl} is set but control 0x{control:04x} lacks "
                      "SACL_PRESENT")
    if control & SE_DACL_PRESENT and not dacl:
        raise SDError("NULL DACL (SE_DACL_PRESENT with no DACL) grants everyone everything")
    if dacl and not control & SE_DACL_PRESENT:
        raise SDError(f"DACL offset {dacl} is set but control 0x{control:04x} lacks DACL_PRESENT")
    for offset, what in ((owner, "owner"), (group, "group"), (dacl, "DACL"), (sacl, "SACL")):
        _check_offset(data, offset, what)
    return control, owner, group, dacl, sacl


def from_binary(data: bytes) -> SecurityDescriptor:
    """Decode a self-relative COM descriptor (no SACL, allow/deny ACEs), components in any
    order; bounds-checks everything."""
    return _decode(data, general=False)


def read_binary(data: bytes) -> SecurityDescriptor:
    """Decode any self-relative descriptor Windows writes: a SACL (a NULL SACL, present
    without ACEs list, is read as an empty one), and every ACE type but compound ACEs."""
    return _decode(data, general=True)


def _decode(data: bytes, general: bool) -> SecurityDescriptor:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SDError(f"binary descriptor must be bytes, not {type(data).__name__}")
    data = bytes(data)
    control, owner_at, group_at, dacl_at, sacl_at = _read_header(data, general)
    sacl: tuple[Ace, ...] | None = None
    if control & SE_SACL_PRESENT:
        sacl = _read_acl(data, sacl_at, True, "SACL") if sacl_at else ()
    return SecurityDescriptor(
        owner=_read_sid(data, owner_at, len(data), "owner SID") if owner_at else None,
        group=_read_sid(data, group_at, len(data), "group SID") if group_at else None,
        dacl=_read_acl(data, dacl_at, general) if dacl_at else None,
        control=control,
        sacl=sacl,
    )


# --------------------------------------------------------------------------------------------
# SDDL <-> registry bytes, and hex dumps as people paste them


def sddl_to_binary(text: str) -> bytes:
    """SDDL -> checked COM descriptor -> registry bytes."""
    sd = parse_sddl(text)
    validate_com(sd)
    return to_binary(sd)


def binary_to_sddl(data: bytes) -> str:
    """Registry bytes -> checked COM descriptor -> canonical SDDL."""
    sd = from_binary(data)
    validate_com(sd)
    return to_sddl(sd)


def decode_sddl(data: bytes) -> str:
    """Registry bytes -> any descriptor -> canonical SDDL (COM's rules not applied)."""
    return to_sddl(read_binary(data))


# `"Name"=hex:` or `@=hex:` in front of a reg export value (docs/windows.md#reg-files); optional.
_REG_PREFIX_RE = re.compile(r'\A\s*(?:(?:"(?:[^"\\]|\\.)*"|@)\s*=\s*)?hex:', re.DOTALL)
_CONTINUATION_RE = re.compile(r"\\[ \t]*\r?\n")
_HEX_BYTE_RE = re.compile(r"[0-9a-fA-F]{2}")


def _csv_hex(body: str) -> bytes:
    """Comma-separated two-digit bytes as regedit writes them; a trailing comma is tolerated."""
    items = [item.strip() for item in body.split(",")]
    if items and items[-1] == "":
        items.pop()
    for item in items:
        if not _HEX_BYTE_RE.fullmatch(item):
            raise SDError(f"bad byte {item!r} in hex list: expected two hex digits per byte")
    return bytes(int(item, 16) for item in items)


def _plain_hex(body: str) -> bytes:
    digits = "".join(body.split())
    for index, char in enumerate(digits):
        if char not in "0123456789abcdefABCDEF":
            raise SDError(f"non-hex character {char!r} at digit {index} of the hex input")
    if len(digits) % 2:
        raise SDError(f"odd number of hex digits ({len(digits)}): every byte needs two")
    return bytes.fromhex(digits)


def read_hex_input(text: str) -> bytes:
    """Bytes from plain hex (spaces/newlines allowed), a `reg export` hex: value (alone or in
    a whole exported .reg file), or a `reg query` output line (`Name    REG_BINARY    0100...`,
    alone or in the whole output of a key)."""
    body = text.lstrip("\ufeff")
    body = _from_reg_query(body) or _from_reg_file(body) or body
    match = _REG_PREFIX_RE.match(body)
    if match:
        body = body[match.end() :]
    body = _CONTINUATION_RE.sub("", body)
    data = _csv_hex(body) if "," in body else _plain_hex(body)
    if not data:
        raise SDError("no hex data found")
    return data


# A line of `reg query` output: indented name, the type, the data (none for an empty value).
_QUERY_LINE_RE = re.compile(
    r"^[ \t]*(.*?)[ \t]+(REG_(?:NONE|SZ|EXPAND_SZ|BINARY|DWORD|DWORD_BIG_ENDIAN|LINK|MULTI_SZ"
    r"|RESOURCE_LIST|FULL_RESOURCE_DESCRIPTOR|RESOURCE_REQUIREMENTS_LIST|QWORD))"
    r"(?:[ \t]+(\S*))?[ \t\r]*$", re.MULTILINE)
# A value line of a .reg file whose data is hex: (a descriptor is REG_BINARY).
_REG_VALUE_RE = re.compile(r'^[ \t]*(?:"(?:[^"\\\n]|\\.)*"|@)[ \t]*=[ \t]*hex:', re.MULTILINE)


def _from_reg_query(body: str) -> str | None:
    """The hex of the one REG_BINARY value of `reg query` output; None if it is none."""
    lines = list(_QUERY_LINE_RE.finditer(body))
    if not lines:
        return None
    binary = [m for m in lines if m.group(2) == "REG_BINARY"]
    if not binary:
        found = ", ".join(f"{m.group(1) or '(Default)'} ({m.group(2)})" for m in lines[:5])
        raise SDError(f"the reg query output holds no REG_BINARY value, only {found}")
    if len(binary) > 1:
        names = ", ".join(m.group(1) for m in binary[:5])
        raise SDError(f"the reg query output holds {len(binary)} REG_BINARY values ({names}): "
                      "give the line of one")
    return binary[0].group(3) or ""


def _from_reg_file(body: str) -> str | None:
    """The one `hex:` value of a `reg export` (a whole file, or a value with its continuation
    lines); None when the text holds no such value line."""
    found = list(_REG_VALUE_RE.finditer(body))
    if not found:
        return None
    if len(found) > 1:
        raise SDError(f"the text holds {len(found)} hex: values: give one value (its "
                      "\"Name\"=hex: line and continuation lines)")
    lines = body[found[0].start():].replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for line in lines:
        kept.append(line)
        if not line.rstrip(" \t").endswith("\\"):
            break
    return "\n".join(kept)
