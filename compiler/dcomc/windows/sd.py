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
  that stand for machine- or domain-relative accounts (LA, LG, DA, ...) are refused unless the
  caller gives the domain (or machine) SID: turning them into a SID needs it, so any answer
  without it would be a guess.
* Two readers: `parse_sddl` (and `sdbinary.from_binary`) read only what COM launch/access
  descriptors hold and what dcomc writes; `read_sddl` (and `sdbinary.read_binary`) read every
  descriptor Windows writes, so that `dcomc inspect` and `sd decode` can show a live PC's value
  as it is: SACLs (mandatory labels `S:(ML;;NX;;;LW)` on Windows' own AppIDs, audit and alarm
  ACEs), object and callback ACEs, scoped policy ACEs. Conditional expressions and resource
  attributes are refused with a message, never misread.
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
SE_SACL_AUTO_INHERIT_REQ = 0x0200
SE_DACL_AUTO_INHERITED = 0x0400
SE_SACL_AUTO_INHERITED = 0x0800
SE_DACL_PROTECTED = 0x1000
SE_SACL_PROTECTED = 0x2000
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

# SACL flags after "S:", in the same order.
_SACL_FLAGS: tuple[tuple[str, int], ...] = (
    ("P", SE_SACL_PROTECTED),
    ("AR", SE_SACL_AUTO_INHERIT_REQ),
    ("AI", SE_SACL_AUTO_INHERITED),
)

# ACE types by SDDL letters (learn: secauthz/ace-strings; MS-DTYP 2.4.4.1). RA (resource
# attribute) needs its attribute data, which this reader does not model: refused.
ACE_TYPES: dict[str, int] = {
    "A": 0, "D": 1, "AU": 2, "AL": 3, "OA": 5, "OD": 6, "OU": 7, "OL": 8, "XA": 9, "XD": 10,
    "ZA": 11, "XU": 13, "ML": 17, "SP": 19,
}
ACE_LETTERS: dict[int, str] = {value: key for key, value in ACE_TYPES.items()}
OBJECT_TYPES = frozenset({5, 6, 7, 8, 11, 12, 15, 16})
CALLBACK_TYPES = frozenset({9, 10, 11, 12, 13, 15, 16})
ALLOW_TYPES = frozenset({0, 5, 9, 11})
ACE_TYPE_NAMES: dict[int, str] = {
    0: "allow", 1: "deny", 2: "audit", 3: "alarm", 5: "allow object", 6: "deny object",
    7: "audit object", 8: "alarm object", 9: "allow callback", 10: "deny callback",
    11: "allow callback object", 12: "deny callback object", 13: "audit callback",
    15: "audit callback object", 16: "alarm callback object", 17: "mandatory label",
    18: "resource attribute", 19: "scoped policy",
}
# A mandatory label's mask: the policy bits (learn: SYSTEM_MANDATORY_LABEL_ACE).
_LABEL_LETTERS: tuple[tuple[str, int], ...] = (("NW", 0x1), ("NR", 0x2), ("NX", 0x4))
_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

# Fixed aliases Windows knows beyond `sids`' table (learn: secauthz/sid-strings), read always;
# only the integrity labels are written as aliases (so dcomc's own SDDL does not change).
_MORE_ALIASES: dict[str, str] = {
    "LW": "S-1-16-4096", "ME": "S-1-16-8192", "MP": "S-1-16-8448", "HI": "S-1-16-12288",
    "SI": "S-1-16-16384", "AA": "S-1-5-32-579", "RM": "S-1-5-32-580", "HA": "S-1-5-32-578",
    "RA": "S-1-5-32-575", "ES": "S-1-5-32-576", "MS": "S-1-5-32-577", "CY": "S-1-5-32-569",
    "UD": "S-1-5-84-0-0-0-0-0", "AS": "S-1-18-1", "SS": "S-1-18-2",
}
_LABEL_NAMES = {"S-1-16-4096": "Low Mandatory Level", "S-1-16-8192": "Medium Mandatory Level",
                "S-1-16-8448": "Medium Plus Mandatory Level",
                "S-1-16-12288": "High Mandatory Level", "S-1-16-16384": "System Mandatory Level"}
_LABEL_ALIASES = {sid: alias for alias, sid in _MORE_ALIASES.items() if sid.startswith("S-1-16-")}
# RIDs of the domain- (and machine-) relative aliases, resolved under a given domain SID.
_RELATIVE_RIDS: dict[str, int] = {
    "LA": 500, "LG": 501, "DA": 512, "DU": 513, "DG": 514, "DC": 515, "DD": 516, "CA": 517,
    "SA": 518, "EA": 519, "PA": 520, "RO": 498, "CN": 522, "AP": 525, "KA": 526, "EK": 527,
    "RS": 553,
}

# Aliases whose SID depends on the machine or domain (learn: secauthz/sid-strings): refused
# without a domain SID.
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
    "RS": "RAS and IAS Servers",
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
    """One ACE. `sid` is a string SID, never an SDDL alias. `kind` None is a plain allow or deny
    ACE (by `allow`); any other ACE type (audit, label, object, callback) is its type number,
    with the object GUIDs and callback data it carries (`data`: the bytes after the SID)."""

    sid: str
    mask: int
    allow: bool = True
    flags: int = 0
    kind: int | None = None
    object_type: str | None = None
    inherited_object_type: str | None = None
    data: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sid", _canonical_sid(self.sid))
        if not isinstance(self.mask, int) or not 0 <= self.mask <= 0xFFFFFFFF:
            raise SDError(f"ACE mask {self.mask!r} is not a 32-bit unsigned integer")
        if not isinstance(self.flags, int) or not 0 <= self.flags <= 0xFF:
            raise SDError(f"ACE flags {self.flags!r} do not fit in one byte")
        if not isinstance(self.allow, bool):
            raise SDError(f"ACE allow must be True or False, not {self.allow!r}")
        _check_kind(self)


def _check_kind(ace: Ace) -> None:
    """Normalise the type (0 and 1 are `allow`) and check what the type carries."""
    if ace.kind in (0, 1):
        object.__setattr__(ace, "allow", ace.kind == 0)
        object.__setattr__(ace, "kind", None)
    if ace.kind is None:
        if ace.object_type or ace.inherited_object_type or ace.data:
            raise SDError("a plain allow/deny ACE carries no object GUIDs or data")
        return
    if ace.kind not in ACE_TYPE_NAMES or ace.kind in (4, 14):
        raise SDError(f"ACE type {ace.kind!r} is not one this reader knows")
    object.__setattr__(ace, "allow", ace.kind in ALLOW_TYPES)
    for name in ("object_type", "inherited_object_type"):
        guid = getattr(ace, name)
        if guid is not None:
            if ace.kind not in OBJECT_TYPES or not _GUID_RE.fullmatch(guid):
                raise SDError(f"ACE {name} {guid!r}: a GUID, on object ACEs only")
            object.__setattr__(ace, name, guid.lower())
    if ace.data and (ace.kind not in CALLBACK_TYPES | {18} or len(ace.data) % 4):
        raise SDError("ACE data belongs to callback ACEs only, in whole 4-byte units")


@dataclass(frozen=True, slots=True)
class SecurityDescriptor:
    """A self-relative security descriptor. COM launch/access ACLs never carry a SACL (§3.2),
    but Windows' own AppIDs carry a mandatory label there, so the model has one.

    `dacl`/`sacl` None means "not present". `control` keeps the bits read from the input, but
    SE_SELF_RELATIVE is always set and SE_DACL_PRESENT / SE_SACL_PRESENT always follow `dacl`
    and `sacl`, so that equal descriptors compare equal however they were built.
    """

    owner: str | None
    group: str | None
    dacl: tuple[Ace, ...] | None
    control: int = SE_SELF_RELATIVE | SE_DACL_PRESENT
    sacl: tuple[Ace, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("owner", "group"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _canonical_sid(value))
        for name in ("dacl", "sacl"):
            acl = getattr(self, name)
            if acl is not None:
                acl = tuple(acl)
                if not all(isinstance(ace, Ace) for ace in acl):
                    raise SDError(f"{name} must contain only Ace objects")
                object.__setattr__(self, name, acl)
        if not isinstance(self.control, int) or not 0 <= self.control <= 0xFFFF:
            raise SDError(f"control {self.control!r} does not fit in 16 bits")
        control = (self.control | SE_SELF_RELATIVE) & ~SE_DACL_PRESENT
        if self.sacl is not None:  # a SACL bit read without a SACL stays, for COM to refuse
            control |= SE_SACL_PRESENT
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


def _sid_from_sddl(token: str, domain: str | None = None, general: bool = False) -> str:
    """A string SID for an SDDL SID field: a literal S-1-..., a fixed well-known alias, or
    (given the domain or machine SID) a domain-relative alias."""
    if token.startswith("S-"):
        return _canonical_sid(token)
    if token in SDDL_ALIAS_TO_SID:
        return SDDL_ALIAS_TO_SID[token]
    if general and token in _MORE_ALIASES:
        return _MORE_ALIASES[token]
    if token in _RELATIVE_ALIASES and domain is not None:
        return f"{domain}-{_RELATIVE_RIDS[token]}"
    if token in _RELATIVE_ALIASES:
        raise SDError(
            f"SDDL alias {token!r} ({_RELATIVE_ALIASES[token]}) is machine- or domain-relative: "
            "its SID differs per machine, so write the literal SID (S-1-5-21-...) instead, "
            "or give the domain SID"
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


def _ace_fields(body: str) -> list[str]:
    """The six `;`-separated fields of an ACE string, each trimmed."""
    fields = [f.strip() for f in body.split(";")]
    if len(fields) != 6:
        raise SDError(
            f"ACE ({body}) has {len(fields)} fields, expected 6 "
            "(type;flags;rights;object_guid;inherit_object_guid;sid)"
        )
    return fields


def _parse_ace(body: str, domain: str | None = None, general: bool = False) -> Ace:
    """One ACE string without parentheses: type;flags;rights;object;inherit_object;sid."""
    if general:
        return _parse_any_ace(body, domain)
    ace_type, flags, rights, guid, inherit_guid, sid = _ace_fields(body)
    if ace_type in ("OA", "OD"):
        raise SDError(f"object ACE ({body}) is not supported: COM ACLs use only A and D ACEs")
    if ace_type not in ("A", "D"):
        raise SDError(f"ACE type {ace_type!r} in ({body}) is not supported: use A or D")
    if guid or inherit_guid:
        raise SDError(f"ACE ({body}) carries object GUIDs, which COM ACLs never use")
    if not sid:
        raise SDError(f"ACE ({body}) has no SID")
    return Ace(
        sid=_sid_from_sddl(sid, domain),
        mask=_parse_rights(rights),
        allow=ace_type == "A",
        flags=_letters(flags, _FLAG_BY_LETTERS, "ACE flag"),
    )


def _parse_any_ace(body: str, domain: str | None) -> Ace:
    """Any ACE Windows writes as SDDL, but conditional expressions and resource attributes."""
    ace_type, flags, rights, guid, inherit_guid, sid = _ace_fields(body)
    if ace_type not in ACE_TYPES:
        raise SDError(f"ACE type {ace_type!r} in ({body}) is not supported: expected one of "
                      f"{', '.join(ACE_TYPES)}")
    kind = ACE_TYPES[ace_type]
    if not sid:
        raise SDError(f"ACE ({body}) has no SID")
    try:
        return Ace(_sid_from_sddl(sid, domain, general=True), _parse_any_rights(rights, kind),
                   flags=_letters(flags, _FLAG_BY_LETTERS, "ACE flag"), kind=kind,
                   object_type=guid or None, inherited_object_type=inherit_guid or None)
    except SDError as exc:
        raise SDError(f"ACE ({body}): {exc}") from None


def _parse_any_rights(field: str, kind: int) -> int:
    if kind == 17 and field and not field.startswith(("0x", "0X")):
        return _letters(field, {**_RIGHT_LETTERS, **dict(_LABEL_LETTERS)}, "SDDL right")
    if kind == 19 and not field:  # a scoped policy ACE has no rights
        return 0
    return _parse_rights(field)


class _SddlParser:
    """Recursive-descent reader for O:, G:, D: sections (docs/windows.md#com-rights)."""

    def __init__(self, text: str, domain: str | None = None, general: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.domain = domain
        self.general = general

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
        sacl: tuple[Ace, ...] | None = None
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
            elif key == "D":
                flags, dacl = self._dacl()
                control |= flags
            else:
                flags, sacl = self._dacl(_SACL_FLAGS)
                control |= flags
        return SecurityDescriptor(owner, group, dacl, control, sacl)

    def _section(self) -> str:
        match = _SECTION_RE.match(self.text, self.pos)
        if not match:
            raise self._unexpected("O:, G:, D: or the end of the string")
        if match.group(1) == "S" and not self.general:
            raise SDError("SACL not supported: COM launch/access descriptors never carry one")
        self.pos = match.end()
        return match.group(1)

    def _sid(self) -> str:
        self._skip_ws()
        match = _SID_TOKEN_RE.match(self.text, self.pos)
        if not match:
            raise self._unexpected("a SID or SDDL alias")
        self.pos = match.end()
        return _sid_from_sddl(match.group(0), self.domain, self.general)

    def _dacl(
        self, names: tuple[tuple[str, int], ...] = _DACL_FLAGS
    ) -> tuple[int, tuple[Ace, ...]]:
        self._skip_ws()
        if self.text.startswith("NO_ACCESS_CONTROL", self.pos):
            raise SDError("NULL ACL (NO_ACCESS_CONTROL) is not supported (a NULL DACL grants "
                          "everyone everything)" if self.general else
                          "NULL DACL (D:NO_ACCESS_CONTROL) grants everyone everything; refused")
        control = 0
        while match := _DACL_FLAG_RE.match(self.text, self.pos):
            control |= dict(names)[match.group(0)]
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
        return _parse_ace(self.text[start + 1 : close], self.domain, self.general)


def parse_sddl(text: str, domain_sid: str | None = None) -> SecurityDescriptor:
    """Parse an SDDL string with O:, G: and D: sections (no SACL) into a descriptor.

    As in Windows, "" is the empty descriptor (no owner, group or DACL); validate_com refuses it.
    `domain_sid` resolves the domain-relative aliases (DA, DU, LA, ...), refused without it.
    """
    if not isinstance(text, str):
        raise SDError(f"SDDL must be a string, not {type(text).__name__}")
    return _SddlParser(text, _domain(domain_sid)).parse()


def read_sddl(text: str, domain_sid: str | None = None) -> SecurityDescriptor:
    """Parse any SDDL Windows writes: O:, G:, D: and S: (SACL: audit, alarm, mandatory label,
    scoped policy ACEs), object and callback ACEs, every fixed alias, and the domain-relative
    aliases given `domain_sid`."""
    if not isinstance(text, str):
        raise SDError(f"SDDL must be a string, not {type(text).__name__}")
    return _SddlParser(text, _domain(domain_sid), general=True).parse()


def _domain(domain_sid: str | None) -> str | None:
    return None if domain_sid is None else _canonical_sid(domain_sid)


# --------------------------------------------------------------------------------------------
# Descriptor -> SDDL text


def _sid_to_sddl(sid: str, domain: str | None = None) -> str:
    # Windows writes an alias where one exists; 562 has none (docs/windows.md#well-known-sids).
    alias = SID_TO_SDDL_ALIAS.get(sid) or _LABEL_ALIASES.get(sid)
    if alias is None and domain is not None and sid.startswith(domain + "-"):
        rid = sid[len(domain) + 1 :]
        alias = next((a for a, r in _RELATIVE_RIDS.items() if str(r) == rid), None)
    return alias or sid


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


def _ace_to_sddl(ace: Ace, domain: str | None = None) -> str:
    if ace.kind is None:
        kind = "A" if ace.allow else "D"
        flags, rights = _flags_to_sddl(ace.flags), _rights_to_sddl(ace.mask)
        return f"({kind};{flags};{rights};;;{_sid_to_sddl(ace.sid, domain)})"
    if ace.kind not in ACE_LETTERS or ace.data:
        what = ACE_TYPE_NAMES.get(ace.kind, "unknown")
        raise SDError(f"a {what} ACE{' with a condition or attribute data' if ace.data else ''}"
                      " cannot be written as SDDL here")
    rights = _label_rights(ace.mask) if ace.kind == 17 else (
        "" if ace.kind == 19 and not ace.mask else _rights_to_sddl(ace.mask))
    guids = f"{ace.object_type or ''};{ace.inherited_object_type or ''}"
    return (f"({ACE_LETTERS[ace.kind]};{_flags_to_sddl(ace.flags)};{rights};{guids};"
            f"{_sid_to_sddl(ace.sid, domain)})")


def _label_rights(mask: int) -> str:
    if mask == 0 or mask & ~0x7:
        return f"0x{mask:x}"
    return "".join(code for code, bit in _LABEL_LETTERS if mask & bit)


def to_sddl(sd: SecurityDescriptor, domain_sid: str | None = None) -> str:
    """Canonical SDDL: aliases where sids knows one, COM letters CC DC LC SW RP, else hex; the
    SACL (S:) last, as Windows writes it. With `domain_sid`, its accounts as their aliases."""
    if sd.control & SE_SACL_PRESENT and sd.sacl is None:
        raise SDError("SACL not supported: COM launch/access descriptors never carry one")
    domain = _domain(domain_sid)
    parts: list[str] = []
    if sd.owner is not None:
        parts.append("O:" + _sid_to_sddl(sd.owner, domain))
    if sd.group is not None:
        parts.append("G:" + _sid_to_sddl(sd.group, domain))
    for letter, acl, names in (("D", sd.dacl, _DACL_FLAGS), ("S", sd.sacl, _SACL_FLAGS)):
        if acl is not None:
            flags = "".join(code for code, bit in names if sd.control & bit)
            parts.append(f"{letter}:" + flags + "".join(_ace_to_sddl(a, domain) for a in acl))
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
        if ace.kind is not None:
            raise SDError(f"{ACE_TYPE_NAMES[ace.kind]} ACE for {_principal(ace.sid)}: COM ACLs "
                          "contain only allow and deny ACEs")
        _check_com_mask(ace.mask, f"ACE for {_principal(ace.sid)}: mask")
    old = [ace for ace in sd.dacl if ace.mask == COM_RIGHTS_EXECUTE]
    if old and len(old) != len(sd.dacl):
        raise SDError(
            "ACL mixes old-format ACEs (mask 0x1 = EXECUTE only, for "
            f"{', '.join(_principal(a.sid) for a in old)}) with new-format ACEs; "
            "COM requires all ACEs of an ACL to use the same format"
        )


def dacl_is_com(sd: SecurityDescriptor) -> bool:
    """Whether the DACL alone is a launch/access ACL COM reads (a SACL beside it aside)."""
    return is_com(replace(sd, sacl=None, control=sd.control & ~SE_SACL_PRESENT))


def is_com(sd: SecurityDescriptor) -> bool:
    """Whether COM reads the descriptor as dcomc writes them (validate_com passes)."""
    try:
        validate_com(sd)
    except SDError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Views and edits


def describe(sd: SecurityDescriptor, kind: RightsKind) -> list[dict[str, object]]:
    """Every ACE of both ACLs as people read it (for descriptors COM's rules do not cover):
    the ACL, the ACE type, the principal, flags, mask, and its COM rights or label policy."""
    out: list[dict[str, object]] = []
    for acl_name, acl in (("DACL", sd.dacl), ("SACL", sd.sacl)):
        for ace in acl or ():
            type_name = ACE_TYPE_NAMES[ace.kind] if ace.kind is not None else (
                "allow" if ace.allow else "deny")
            item: dict[str, object] = {
                "acl": acl_name, "type": type_name,
                "principal": _LABEL_NAMES.get(ace.sid) or display_name(ace.sid),
                "flags": "".join(c for c, b in _FLAG_LETTERS if ace.flags & b),
                "mask": f"0x{ace.mask:x}"}
            if ace.kind == 17:
                item["policy"] = [c for c, b in _LABEL_LETTERS if ace.mask & b]
            elif ace.kind is None and not ace.mask & ~_COM_ALL_BITS and ace.mask & 1:
                item["rights"] = list(mask_to_rights(kind, ace.mask))
            if ace.object_type or ace.inherited_object_type:
                item["object"] = [ace.object_type, ace.inherited_object_type]
            out.append(item)
    return out


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
