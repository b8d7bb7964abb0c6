"""Security templates as Windows' secedit writes and reads them (`secedit /export`, the
Microsoft and DISA baselines), for any template, not only dcomc's (docs/windows.md#secedit).

Every section secedit writes is read into what it means: `[System Access]`, `[Kerberos Policy]`,
`[Event Audit]` and the three log sections as numbers or unquoted strings; `[Registry Values]`
as path, type (1-7, 11) and data, a REG_MULTI_SZ (7) split into its strings; `[Privilege
Rights]` as the holders, an empty list meaning nobody holds the right; `[Group Membership]` as
group, relation (Members/Memberof) and SIDs; `[Service General Setting]`, `[Registry Keys]`
and `[File Security]` as name, mode and SDDL. Any other section is kept as its key/value
lines and listed as unsupported, never dropped. Comment lines (`;`) are skipped anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcomc_targets.readerror import ReadError, decode_windows_text

decode = decode_windows_text  # the readers share one decoder; `decode` for their callers

NUMERIC_SECTIONS = ("System Access", "Kerberos Policy", "Event Audit", "System Log",
                    "Security Log", "Application Log")
ACL_SECTIONS = ("Service General Setting", "Registry Keys", "File Security")
KNOWN_SECTIONS = ("Unicode", "Version", *NUMERIC_SECTIONS, "Registry Values",
                  "Privilege Rights", "Group Membership", *ACL_SECTIONS)
# The same names casefolded, as sections are matched (once here, not per line).
_NUMERIC = frozenset(name.casefold() for name in NUMERIC_SECTIONS)
_ACL = frozenset(name.casefold() for name in ACL_SECTIONS)
_KNOWN = frozenset(name.casefold() for name in KNOWN_SECTIONS)
REG_TYPES = {1: "REG_SZ", 2: "REG_EXPAND_SZ", 3: "REG_BINARY", 4: "REG_DWORD", 5:
             "REG_DWORD_BIG_ENDIAN", 6: "REG_LINK", 7: "REG_MULTI_SZ", 11: "REG_QWORD"}


@dataclass(frozen=True, slots=True)
class Entry:
    line: int
    key: str
    value: Any  # what the section means it as (see the module doc)


@dataclass(frozen=True, slots=True)
class InfFile:
    encoding: str
    sections: tuple[tuple[str, tuple[Entry, ...]], ...]  # in file order

    def section(self, name: str) -> tuple[Entry, ...]:
        found = [entries for key, entries in self.sections if key.casefold() == name.casefold()]
        return tuple(e for entries in found for e in entries)


def sniff_text(text: str) -> bool:
    """A security template: its first section is [Unicode] or [Version]."""
    for line in text.lstrip("\ufeff").splitlines()[:20]:
        stripped = line.strip()
        if stripped and not stripped.startswith(";"):
            return stripped.casefold() in ("[unicode]", "[version]")
    return False


def parse_bytes(data: bytes) -> InfFile:
    text, encoding = decode(data)
    return parse_text(text, encoding)


def parse_text(text: str, encoding: str = "text") -> InfFile:
    sections: list[tuple[str, list[Entry]]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ReadError("section line without its closing ']'", number, len(raw))
            sections.append((line[1:-1].strip(), []))
            continue
        if not sections:
            raise ReadError(f"a line before the first [section]: {line[:40]!r}", number, 1)
        name, entries = sections[-1]
        entries.append(_entry(name, line, number))
    if not any(name.casefold() in ("unicode", "version") for name, _ in sections):
        raise ReadError("not a security template: no [Unicode] or [Version] section", 1, 1)
    return InfFile(encoding, tuple((name, tuple(entries)) for name, entries in sections))


def _entry(section: str, line: str, number: int) -> Entry:
    kind = section.casefold()
    if kind in _ACL:
        name, mode, sddl = _name_mode_acl(line, number)
        return Entry(number, name, {"mode": mode, "sddl": sddl})
    key, found, value = line.partition("=")
    if not found:
        raise ReadError(f"expected key = value in [{section}], not {line[:40]!r}", number, 1)
    key, value = key.strip(), value.strip()
    if kind == "registry values":
        return Entry(number, _unquote(key), _registry_value(value, number, len(key) + 2))
    if kind == "privilege rights":
        return Entry(number, key, split_list(value))
    if kind == "group membership":
        group, _, relation = key.rpartition("__")
        return Entry(number, key, {"group": group or key, "relation": relation,
                                   "sids": split_list(value)})
    if kind in _NUMERIC:
        return Entry(number, key, _scalar(value))
    return Entry(number, key, _unquote(value))


def split_list(value: str) -> list[str]:
    """A comma-separated list, each item trimmed and unquoted; "" is the empty list."""
    return [_unquote(item.strip()) for item in _split_csv(value)] if value.strip() else []


def _split_csv(value: str) -> list[str]:
    """Split at commas outside double quotes."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _scalar(value: str) -> int | str:
    plain = value.strip()
    if plain.lstrip("-").isdecimal() and len(plain) <= 20:
        return int(plain)
    return _unquote(plain)


def _registry_value(value: str, number: int, col: int) -> dict[str, Any]:
    kind, _, data = value.partition(",")
    if not kind.strip().isdecimal() or len(kind.strip()) > 2:
        raise ReadError(f"bad registry value type {kind[:20]!r}: expected 1 to 11", number, col)
    reg_type = int(kind)
    meaning: Any = _unquote(data)
    if reg_type == 7:
        meaning = split_list(data)
    elif reg_type in (4, 5, 11) and data.strip().lstrip("-").isdecimal() and len(data) <= 20:
        meaning = int(data)
    return {"type": REG_TYPES.get(reg_type, f"type {reg_type}"), "data": meaning}


def _name_mode_acl(line: str, number: int) -> tuple[str, int | str, str]:
    """`"name",mode,"SDDL"` of the ACL sections; the SDDL may hold commas, the name too."""
    items = [item.strip() for item in _split_csv(line)]
    if len(items) < 3:
        raise ReadError(f'expected "name",mode,"SDDL", not {line[:40]!r}', number, 1)
    name, mode, sddl = items[0], items[1], ",".join(items[2:])
    if any(item.count('"') % 2 for item in items):
        raise ReadError(f"unbalanced quotes in {line[:40]!r}", number, 1)
    return _unquote(name), _scalar(mode), _unquote(sddl)


def inspect(inf: InfFile) -> dict[str, Any]:
    """A template dcomc did not write: every section, with what each line means."""
    sections: dict[str, Any] = {}
    for name, entries in inf.sections:
        target = sections.setdefault(name, {})
        for entry in entries:
            target[entry.key] = entry.value
    unsupported = [name for name, _ in inf.sections
                   if name.casefold() not in _KNOWN]
    return {"kind": "generic .inf", "encoding": inf.encoding, "sections": sections,
            "unsupported": [f"[{name}]: not a section secedit writes; its lines are shown as "
                            "key = value" for name in unsupported]}
