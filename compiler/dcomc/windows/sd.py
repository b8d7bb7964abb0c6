"""COM security descriptors: the model, SDDL text, COM rights and the COM rules.

Launch/access permissions live in the registry as REG_BINARY self-relative SECURITY_DESCRIPTORs
(docs/windows.md#appid), while people and policies speak SDDL. This module is the descriptor model
and its SDDL form; `sdbinary` converts it to and from the registry's bytes without Windows, so
the compiler can emit byte-exact registry values and read back what it (or Windows, or .NET)
wrote.

Why things are the way they are:

* COM only understands allow/deny ACEs whose masks are COM_RIGHTS_* bits, EXECUTE always set,
  and an ACL is either all "old format" (EXECUTE only) or all "new format" — never mixed
  (docs/windows.md#com-rights). `validate_com` enforces exactly that; the codec stays generic.
* SIDs stay string SIDs; SDDL aliases are `sids`' (docs/windows.md#well-known-sids). Aliases
  that stand for machine- or domain-relative accounts (LA, LG, DA, ...) are refused: turning them
  into a SID would need the target machine, so any answer here would be a guess.
* Every invalid input raises `SDError` with a message a human can act on; nothing is repaired
  silently, because a wrong ACL is a security hole or an outage on the OPC server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from dcomc.windows.sids import SDDL_ALIAS_TO_SID, SID_TO_SDDL_ALIAS, display_name, is_sid


class SDError(ValueError):
    """An invalid security descriptor, SDDL string, hex dump or COM rights specification."""


RightsKind = Literal["launch", "access"]

# COM rights bits (docs/windows.md#com-rights).
COM_RIGHTS_EXECUTE = 0x01
COM_RIGHTS_EXECUTE_LOCAL = 0x02
COM_RIGHTS_EXECUTE_REMOTE = 0x04
COM_RIGHTS_ACTIVATE_LOCAL = 0x08
COM_RIGHTS_ACTIVATE_REMOTE = 0x10
_COM_ALL_BITS = 0x1F

# Spec right names -> bits. EXECUTE is not a name: it is always required, so rights_to_mask adds
# it. The same bit means "launch" in a launch ACL and "access" in an access ACL (§3.1 table).
LAUNCH_RIGHTS: dict[str, int] = {
    "local_launch": COM_RIGHTS_EXECUTE_LOCAL,
    "remote_launch": COM_RIGHTS_EXECUTE_REMOTE,
    "local_activation": COM_RIGHTS_ACTIVATE_LOCAL,
    "remote_activation": COM_RIGHTS_ACTIVATE_REMOTE,
}
ACCESS_RIGHTS: dict[str, int] = {
    "local_access": COM_RIGHTS_EXECUTE_LOCAL,
    "remote_access": COM_RIGHTS_EXECUTE_REMOTE,
}

# Control bits (docs/windows.md#security-descriptors; Samba's security.idl).
SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
SE_DACL_AUTO_INHERIT_REQ = 0x0100
SE_DACL_AUTO_INHERITED = 0x0400
SE_DACL_PROTECTED = 0x1000
SE_SELF_RELATIVE = 0x8000

# SDDL right letters (learn: secauthz/ace-strings; samba sddl.c). CC..RP are the COM bits.
_RIGHT_LETTERS: dict[str, int] = {
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40,
    "LO": 0x80, "CR": 0x100,
    "SD": 0x10000, "RC": 0x20000, "WD": 0x40000, "WO": 0x80000,
    "GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000,
    "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0,
    "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
}
_COM_LETTERS: tuple[tuple[str, int], ...] = (
    ("CC", 0x1), ("DC", 0x2), ("LC", 0x4), ("SW", 0x8), ("RP", 0x10),
)

# SDDL ACE flag letters, in the order Windows writes them (learn: secauthz/ace-strings).
_FLAG_LETTERS: tuple[tuple[str, int], ...] = (
    ("OI", 0x01), ("CI", 0x02), ("NP", 0x04), ("IO", 0x08), ("ID", 0x10),
    ("SA", 0x40), ("FA", 0x80),
)
_FLAG_BY_LETTERS = dict(_FLAG_LETTERS)

# DACL flags after "D:", in the order Windows writes them.
_DACL_FLAGS: tuple[tuple[str, int], ...] = (
    ("P", SE_DACL_PROTECTED),
    ("AR", SE_DACL_AUTO_INHERIT_REQ),
    ("AI", SE_DACL_AUTO_INHERITED),
)

# Aliases whose SID depends on the machine or domain (learn: secauthz/sid-strings): refused.
_RELATIVE_ALIASES: dict[str, str] = {
    "LA": "local Administrator account",
    "LG": "local Guest account",
    "DA": "Domain Admins",
    "DG": "Domain Guests",
    "DU": "Domain Users",
    "DC": "Domain Computers",
    "DD": "Domain Controllers",
    "CA": "Certificate Publishers",
    "SA": "Schema Admins",
    "EA": "Enterprise Admins",
    "PA": "Group Policy Creator Owners",
    "RO": "Enterprise Read-only Domain Controllers",
    "CN": "Cloneable Domain Controllers",
    "AP": "Protected Users",
    "KA": "Key Admins",
    "EK": "Enterprise Key Admins",
}


# --------------------------------------------------------------------------------------------
# Model


def _canonical_sid(text: str) -> str:
    """`text` as a canonical string SID (no leading zeros); SDError if it is not one."""
    if not isinstance(text, str) or text != text.strip() or not is_sid(text):
        raise SDError(
            f"malformed SID {text!r}: expected S-1-<authority>-<sub-authority>... "
            "with at most 15 decimal sub-authorities"
        )
    return "-".join(["S", "1", *(str(int(part)) for part in text.split("-")[2:])])


@dataclass(frozen=True, slots=True)
class Ace:
    """One allow or deny ACE. `sid` is a string SID, never an SDDL alias."""

    sid: str
    mask: int
    allow: bool = True
    flags: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sid", _canonical_sid(self.sid))
        if not isinstance(self.mask, int) or not 0 <= self.mask <= 0xFFFFFFFF:
            raise SDError(f"ACE mask {self.mask!r} is not a 32-bit unsigned integer")
        if not isinstance(self.flags, int) or not 0 <= self.flags <= 0xFF:
            raise SDError(f"ACE flags {self.flags!r} do not fit in one byte")
        if not isinstance(self.allow, bool):
            raise SDError(f"ACE allow must be True or False, not {self.allow!r}")


@dataclass(frozen=True, slots=True)
class SecurityDescriptor:
    """A self-relative security descriptor without SACL (COM ACLs never carry one, §3.2).

    `dacl` None means "no DACL present". `control` keeps the bits read from the input, but
    SE_SELF_RELATIVE is always set and SE_DACL_PRESENT always follows `dacl`, so that equal
    descriptors compare equal however they were built.
    """

    owner: str | None
    group: str | None
    dacl: tuple[Ace, ...] | None
    control: int = SE_SELF_RELATIVE | SE_DACL_PRESENT

    def __post_init__(self) -> None:
        for name in ("owner", "group"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _canonical_sid(value))
        if self.dacl is not None:
            dacl = tuple(self.dacl)
            if not all(isinstance(ace, Ace) for ace in dacl):
                raise SDError("dacl must contain only Ace objects")
            object.__setattr__(self, "dacl", dacl)
        if not isinstance(self.control, int) or not 0 <= self.control <= 0xFFFF:
            raise SDError(f"control {self.control!r} does not fit in 16 bits")
        control = (self.control | SE_SELF_RELATIVE) & ~SE_DACL_PRESENT
        object.__setattr__(
            self, "control", control | (SE_DACL_PRESENT if self.dacl is not None else 0)
        )


# --------------------------------------------------------------------------------------------
# COM rights names


def _rights_table_for(kind: str) -> dict[str, int]:
    if kind == "launch":
        return LAUNCH_RIGHTS
    if kind == "access":
        return ACCESS_RIGHTS
    raise SDError(f"unknown rights kind {kind!r}: expected 'launch' or 'access'")


def rights_to_mask(kind: RightsKind, rights: Iterable[str]) -> int:
    """The new-format COM mask for spec right names; EXECUTE is always added (§3.1)."""
    table = _rights_table_for(kind)
    names = (rights,) if isinstance(rights, str) else tuple(rights)
    if not names:
        raise SDError(f"no {kind} rights given: name at least one of {', '.join(table)}")
    mask = COM_RIGHTS_EXECUTE
    for name in names:
        if name not in table:
            raise SDError(f"unknown {kind} right {name!r}: expected one of {', '.join(table)}")
        mask |= table[name]
    return mask


def mask_to_rights(kind: RightsKind, mask: int) -> tuple[str, ...]:
    """Right names in a COM mask. Old format (EXECUTE alone) means every right (§3.1).

    Bits of the other kind (activation bits in an access ACL) carry no meaning there and are
    not listed.
    """
    table = _rights_table_for(kind)
    _check_com_mask(mask, "mask")
    if mask == COM_RIGHTS_EXECUTE:
        return tuple(table)
    return tuple(name for name, bit in table.items() if mask & bit)


def _check_com_mask(mask: int, who: str) -> None:
    if mask & ~_COM_ALL_BITS:
        raise SDError(
            f"{who} 0x{mask:x} sets bits above 0x1F, which are not COM rights "
            "(COM_RIGHTS_EXECUTE..COM_RIGHTS_ACTIVATE_REMOTE)"
        )
    if not mask & COM_RIGHTS_EXECUTE:
        raise SDError(
            f"{who} 0x{mask:x} lacks COM_RIGHTS_EXECUTE (0x1), which COM requires in every ACE"
        )


# --------------------------------------------------------------------------------------------
# SDDL text -> descriptor


_SECTION_RE = re.compile(r"([OGDS]):")
# An owner/group SID token runs up to whitespace, the next "X:" section or the end.
_SID_TOKEN_RE = re.compile(r"[^\s():;]+?(?=\s|[OGDS]:|$)")
_DACL_FLAG_RE = re.compile(r"AI|AR|P")
_HEX_MASK_RE = re.compile(r"0[xX][0-9a-fA-F]{1,8}")


def _sid_from_sddl(token: str) -> str:
    """A string SID for an SDDL SID field: a literal S-1-... or a fixed well-known alias."""
    if token.startswith("S-"):
        return _canonical_sid(token)
    if token in SDDL_ALIAS_TO_SID:
        return SDDL_ALIAS_TO_SID[token]
    if token in _RELATIVE_ALIASES:
        raise SDError(
            f"SDDL alias {token!r} ({_RELATIVE_ALIASES[token]}) is machine- or domain-relative: "
            "its SID differs per machine, so write the literal SID (S-1-5-21-...) instead"
        )
    known = ", ".join(sorted(SDDL_ALIAS_TO_SID))
    raise SDError(f"unknown SDDL alias {token!r}: use a literal SID (S-1-...) or one of {known}")


def _letters(field: str, table: dict[str, int], what: str) -> int:
    """OR of two-letter codes such as 'CCDCLC' (rights) or 'OICI' (flags)."""
    value = 0
    for i in range(0, len(field), 2):
        code = field[i : i + 2]
        if code not in table:
            raise SDError(f"unknown {what} {code!r} in {field!r}")
        value |= table[code]
    return value


def _parse_rights(field: str) -> int:
    if not field:
        raise SDError("ACE has an empty rights field")
    if field[:2] in ("0x", "0X"):
        if not _HEX_MASK_RE.fullmatch(field):
            raise SDError(f"bad hexadecimal rights {field!r}: expected 0x followed by 1-8 digits")
        return int(field, 16)
    return _letters(field, _RIGHT_LETTERS, "SDDL right")


def _parse_ace(body: str) -> Ace:
    """One ACE string without parentheses: type;flags;rights;object;inherit_object;sid."""
    fields = [f.strip() for f in body.split(";")]
    if len(fields) != 6:
        raise SDError(
            f"ACE ({body}) has {len(fields)} fields, expected 6 "
            "(type;flags;rights;object_guid;inherit_object_guid;sid)"
        )
    ace_type, flags, rights, guid, inherit_guid, sid = fields
    if ace_type in ("OA", "OD"):
        raise SDError(f"object ACE ({body}) is not supported: COM ACLs use only A and D ACEs")
    if ace_type not in ("A", "D"):
        raise SDError(f"ACE type {ace_type!r} in ({body}) is not supported: use A or D")
    if guid or inherit_guid:
        raise SDError(f"ACE ({body}) carries object GUIDs, which COM ACLs never use")
    if not sid:
        raise SDError(f"ACE ({body}) has no SID")
    return Ace(
        sid=_sid_from_sddl(sid),
        mask=_parse_rights(rights),
        allow=ace_type == "A",
        flags=_letters(flags, _FLAG_BY_LETTERS, "ACE flag"),
    )


class _SddlParser:
    """Recursive-descent reader for O:, G:, D: sections (docs/windows.md#com-rights)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _at_end(self) -> bool:
        self._skip_ws()
        return self.pos >= len(self.text)

    def _unexpected(self, expected: str) -> SDError:
        rest = self.text[self.pos : self.pos + 20]
        return SDError(f"unexpected text {rest!r} at position {self.pos}: expected {expected}")

    def parse(self) -> SecurityDescriptor:
        owner: str | None = None
        group: str | None = None
        dacl: tuple[Ace, ...] | None = None
        control, seen = SE_SELF_RELATIVE, set()
        while not self._at_end():
            key = self._section()
            if key in seen:
                raise SDError(f"duplicate {key}: section before position {self.pos}")
            seen.add(key)
            if key == "O":
                owner = self._sid()
            elif key == "G":
                group = self._sid()
            else:
                flags, dacl = self._dacl()
                control |= flags
        return SecurityDescriptor(owner, group, dacl, control)

    def _section(self) -> str:
        match = _SECTION_RE.match(self.text, self.pos)
        if not match:
            raise self._unexpected("O:, G:, D: or the end of the string")
        if match.group(1) == "S":
            raise SDError("SACL not supported: COM launch/access descriptors never carry one")
        self.pos = match.end()
        return match.group(1)

    def _sid(self) -> str:
        self._skip_ws()
        match = _SID_TOKEN_RE.match(self.text, self.pos)
        if not match:
            raise self._unexpected("a SID or SDDL alias")
        self.pos = match.end()
        return _sid_from_sddl(match.group(0))

    def _dacl(self) -> tuple[int, tuple[Ace, ...]]:
        self._skip_ws()
        if self.text.startswith("NO_ACCESS_CONTROL", self.pos):
            raise SDError("NULL DACL (D:NO_ACCESS_CONTROL) grants everyone everything; refused")
        control = 0
        while match := _DACL_FLAG_RE.match(self.text, self.pos):
            control |= dict(_DACL_FLAGS)[match.group(0)]
            self.pos = match.end()
        aces: list[Ace] = []
        while not self._at_end() and self.text[self.pos] == "(":
            aces.append(self._ace())
        return control, tuple(aces)

    def _ace(self) -> Ace:
        start = self.pos
        close = self.text.find(")", start + 1)
        inner_open = self.text.find("(", start + 1)
        if close < 0:
            raise SDError(f"unbalanced parentheses: '(' at position {start} is never closed")
        if 0 <= inner_open < close:
            raise SDError(
                f"unbalanced parentheses at position {inner_open} "
                "(conditional ACEs are not supported)"
            )
        self.pos = close + 1
        return _parse_ace(self.text[start + 1 : close])


def parse_sddl(text: str) -> SecurityDescriptor:
    """Parse an SDDL string with O:, G: and D: sections (no SACL) into a descriptor.

    As in Windows, "" is the empty descriptor (no owner, group or DACL); validate_com refuses it.
    """
    if not isinstance(text, str):
        raise SDError(f"SDDL must be a string, not {type(text).__name__}")
    return _SddlParser(text).parse()


# --------------------------------------------------------------------------------------------
# Descriptor -> SDDL text


def _sid_to_sddl(sid: str) -> str:
    # Windows writes an alias where one exists; 562 has none (docs/windows.md#well-known-sids).
    return SID_TO_SDDL_ALIAS.get(sid, sid)


def _rights_to_sddl(mask: int) -> str:
    if mask == 0 or mask & ~_COM_ALL_BITS:
        return f"0x{mask:x}"
    return "".join(code for code, bit in _COM_LETTERS if mask & bit)


def _flags_to_sddl(flags: int) -> str:
    unknown = flags & ~sum(bit for _, bit in _FLAG_LETTERS)
    if unknown:
        raise SDError(
            f"ACE flags 0x{flags:02x} include bits 0x{unknown:02x} that SDDL cannot express"
        )
    return "".join(code for code, bit in _FLAG_LETTERS if flags & bit)


def _ace_to_sddl(ace: Ace) -> str:
    kind = "A" if ace.allow else "D"
    flags, rights = _flags_to_sddl(ace.flags), _rights_to_sddl(ace.mask)
    return f"({kind};{flags};{rights};;;{_sid_to_sddl(ace.sid)})"


def to_sddl(sd: SecurityDescriptor) -> str:
    """Canonical SDDL: aliases where sids knows one, COM letters CC DC LC SW RP, else hex."""
    if sd.control & SE_SACL_PRESENT:
        raise SDError("SACL not supported: COM launch/access descriptors never carry one")
    parts: list[str] = []
    if sd.owner is not None:
        parts.append("O:" + _sid_to_sddl(sd.owner))
    if sd.group is not None:
        parts.append("G:" + _sid_to_sddl(sd.group))
    if sd.dacl is not None:
        flags = "".join(code for code, bit in _DACL_FLAGS if sd.control & bit)
        parts.append("D:" + flags + "".join(_ace_to_sddl(ace) for ace in sd.dacl))
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# COM rules


def _principal(sid: str) -> str:
    name = display_name(sid)
    return sid if name == sid else f"{name} ({sid})"


def validate_com(sd: SecurityDescriptor) -> None:
    """Refuse what COM would reject or misread (docs/windows.md#com-rights): see the module doc."""
    if sd.control & SE_SACL_PRESENT:
        raise SDError("SACL not supported: COM launch/access descriptors never carry one")
    if sd.dacl is None:
        raise SDError("descriptor has no DACL: COM needs one listing who is allowed")
    for ace in sd.dacl:
        _check_com_mask(ace.mask, f"ACE for {_principal(ace.sid)}: mask")
    old = [ace for ace in sd.dacl if ace.mask == COM_RIGHTS_EXECUTE]
    if old and len(old) != len(sd.dacl):
        raise SDError(
            "ACL mixes old-format ACEs (mask 0x1 = EXECUTE only, for "
            f"{', '.join(_principal(a.sid) for a in old)}) with new-format ACEs; "
            "COM requires all ACEs of an ACL to use the same format"
        )


# --------------------------------------------------------------------------------------------
# Views and edits


def rights_table(
    sd: SecurityDescriptor, kind: RightsKind
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(principal, "allow"/"deny", right names) per ACE, in ACL order, for review output."""
    if sd.dacl is None:
        raise SDError("descriptor has no DACL, so there are no rights to list")
    return [
        (display_name(ace.sid), "allow" if ace.allow else "deny", mask_to_rights(kind, ace.mask))
        for ace in sd.dacl
    ]


def _is_old_format(ace: Ace) -> bool:
    return ace.mask == COM_RIGHTS_EXECUTE


def _merge_one(aces: list[Ace], added: Ace) -> None:
    if any(_is_old_format(ace) != _is_old_format(added) for ace in aces):
        raise SDError(
            f"cannot merge ACE for {_principal(added.sid)} (mask 0x{added.mask:x}): the ACL "
            "mixes old-format (EXECUTE only) and new-format masks, which COM forbids and which "
            "would silently narrow an old-format grant"
        )
    for index, ace in enumerate(aces):
        if (ace.sid, ace.allow, ace.flags) == (added.sid, added.allow, added.flags):
            aces[index] = replace(ace, mask=ace.mask | added.mask)
            return
    if added.allow:
        aces.append(added)
    else:  # keep canonical order: denies before allows (docs/windows.md#security-descriptors)
        leading_denies = next((i for i, ace in enumerate(aces) if ace.allow), len(aces))
        aces.insert(leading_denies, added)


def merge_aces(base: tuple[Ace, ...], additions: Iterable[Ace]) -> tuple[Ace, ...]:
    """Add-only merge for machine limits (§2): never removes an ACE or a right.

    An added ACE whose SID, type and flags match an existing ACE has its mask ORed into that
    ACE (the first match); otherwise an allow ACE is appended and a deny ACE is inserted after
    the leading deny ACEs. Mixing old- and new-format masks is refused, because ORing 0x1B into
    an old-format 0x1 would turn "everything" into "local only".
    """
    aces = list(base)
    for added in additions:
        _merge_one(aces, added)
    return tuple(aces)
