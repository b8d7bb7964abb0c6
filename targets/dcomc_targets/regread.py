"""The .reg file model `reg import` reads, for any .reg file (docs/windows.md#reg-files).

Both headers (`REGEDIT4`, `Windows Registry Editor Version 5.00`), in UTF-16LE with or without
a BOM, UTF-8 with or without one, or the ANSI code page (cp1252 here: REGEDIT4 files are ANSI);
keys and key deletions (`[-HKEY_...]`); values of every type (`"string"`, `dword:`, `hex:`,
`hex(0)`..`hex(b)`, any other `hex(n)`), value deletions (`=-`), the default value `@`;
`\\`-continued hex data, with blanks after the backslash (regedit never writes them, editors
leave them); `;` comment lines. Lines are trimmed as Wine's reg does, so blanks around a line,
after `]` and around `=` do not matter.

A value under a deleted key, or before any key, is ignored by `reg import`: it is listed in
`ignored` with its line, never dropped without a word. What cannot be read is a `ReadError`
with its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcomc_targets.readerror import ReadError, decode_head, decode_windows_text

decode = decode_windows_text  # the readers share one decoder; `decode` for their callers

HEADER_V5 = "Windows Registry Editor Version 5.00"
HEADER_V4 = "REGEDIT4"
ROOTS = ("HKEY_LOCAL_MACHINE", "HKEY_CURRENT_USER", "HKEY_CLASSES_ROOT", "HKEY_USERS",
         "HKEY_CURRENT_CONFIG", "HKEY_DYN_DATA", "HKEY_PERFORMANCE_DATA")
TYPE_NAMES = ("REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD",
              "REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
              "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD")
REG_BINARY = 3
# What a backslash escapes in a quoted name or string (Wine's reg: these four, and `\0`).
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "0": "\0"}


@dataclass(frozen=True, slots=True)
class RegKey:
    line: int
    path: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class RegValue:
    """One value line. `form`: "string" (data str), "dword" (int), "hex" (bytes, `type` the
    registry type: 3 for `hex:`), or "delete" (data None)."""

    line: int
    key: str
    name: str  # "" is the default value `@`
    form: str
    type: int | None
    data: str | int | bytes | None


@dataclass(frozen=True, slots=True)
class RegFile:
    version: str  # HEADER_V4 or HEADER_V5
    encoding: str
    keys: tuple[RegKey, ...]
    values: tuple[RegValue, ...]
    ignored: tuple[str, ...]  # "line N: why", what reg import would skip
    bodies: tuple[str, ...]  # per line after the header: comment text, "" for other lines


def type_name(kind: int | None) -> str:
    if kind is None:
        return "delete"
    return TYPE_NAMES[kind] if 0 <= kind < len(TYPE_NAMES) else f"REG_TYPE_0x{kind:x}"


# --- bytes -> text ----------------------------------------------------------------------------


def sniff(data: bytes) -> bool:
    """Whether the bytes start with a .reg header, in any of the encodings."""
    try:
        text = decode_head(data, 256, lambda head: decode(head)[0])
    except ReadError:
        return False
    first = text.lstrip("\ufeff").lstrip(" \t\r\n").split("\n", 1)[0].strip()
    return first in (HEADER_V4, HEADER_V5)


# --- text -> model ----------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    version: str
    key: str | None = None
    deleted: bool = False


def parse_bytes(data: bytes) -> RegFile:
    text, encoding = decode(data)
    return parse_text(text, encoding)


def parse_text(text: str, encoding: str = "text") -> RegFile:
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    header = lines[first].strip() if lines else ""
    if header not in (HEADER_V4, HEADER_V5):
        raise ReadError(f"not a .reg file: the first line is {header[:60]!r}, not "
                        f"{HEADER_V5!r} or {HEADER_V4!r}", first + 1, 1)
    state = _State(header)
    keys: list[RegKey] = []
    values: list[RegValue] = []
    ignored: list[str] = []
    bodies: list[str] = []
    for number, line in _logical_lines(lines, first + 1):
        stripped = line.strip()
        bodies.append(stripped[1:] if stripped.startswith(";") else "")
        if not stripped or stripped.startswith(";"):
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("["):
            keys.append(_key_line(stripped, number, indent))
            state.key, state.deleted = keys[-1].path, keys[-1].deleted
            continue
        value = _value_line(stripped, number, indent, state.key or "")
        if state.key is None or state.deleted:
            where = "before any key" if state.key is None else f"under deleted key {state.key}"
            ignored.append(f"line {number}: value {value.name or '@'!r} {where} "
                           "(reg import skips it)")
            continue
        values.append(value)
    return RegFile(header, encoding, tuple(keys), tuple(values), tuple(ignored), tuple(bodies))


def _logical_lines(lines: list[str], start: int) -> list[tuple[int, str]]:
    """(1-based number of the first line, text) with `\\`-continued data joined: a line that
    ends in a backslash, blanks after it allowed, continues on the next, whose leading blanks
    go. A comment line never continues."""
    out: list[tuple[int, str]] = []
    buffer: str | None = None
    first = 0
    for index in range(start, len(lines)):
        line = lines[index].rstrip("\r")
        if buffer is not None:
            line = buffer + line.lstrip(" \t")
        else:
            first = index + 1
        body = line.rstrip(" \t")
        if body.endswith("\\") and "=" in body and not body.lstrip().startswith((";", "[")):
            buffer = body[:-1]
            continue
        buffer = None
        out.append((first, line))
    if buffer is not None:
        raise ReadError("the file ends inside a continued line (a `\\` on the last line)",
                        first, len(buffer))
    return out


def _key_line(line: str, number: int, indent: int) -> RegKey:
    close = line.rfind("]")
    if close < 0:
        raise ReadError("key line without a closing ']'", number, indent + len(line))
    if line[close + 1 :].strip():
        raise ReadError(f"text after the key's ']': {line[close + 1:][:40]!r}", number,
                        indent + close + 2)
    deleted = line.startswith("[-")
    path = line[2 if deleted else 1 : close].strip()
    root = path.split("\\", 1)[0].upper()
    if root not in ROOTS:
        raise ReadError(f"key {path[:80]!r} does not start with a root key "
                        f"({', '.join(ROOTS[:5])})", number, indent + (3 if deleted else 2))
    if "\\\\" in path:
        raise ReadError(f"key {path[:80]!r} has an empty subkey name", number, indent + 2)
    return RegKey(number, path.rstrip("\\"), deleted)  # a trailing backslash names the key


def unquote(text: str, number: int, col: int) -> tuple[str, str]:
    """The quoted string at the start of `text`, escapes resolved, and the rest."""
    out: list[str] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            return "".join(out), text[i + 1 :]
        out.append(char)
        i += 1
    raise ReadError(f"unterminated string {text[:40]!r}", number, col)


def _value_line(line: str, number: int, indent: int, key: str) -> RegValue:
    if line.startswith("@"):
        name, rest = "", line[1:]
    elif line.startswith('"'):
        name, rest = unquote(line, number, indent + 1)
    else:
        raise ReadError(f"expected a key [..], a value \"name\"=... or @=..., not "
                        f"{line[:40]!r}", number, indent + 1)
    col = indent + len(line) - len(rest) + 1
    rest = rest.lstrip(" \t")
    if not rest.startswith("="):
        raise ReadError(f"expected '=' after the value name, not {rest[:20]!r}", number, col)
    data = rest[1:].strip(" \t")
    col = indent + len(line) - len(data) + 1 if data else indent + len(line) + 1
    return _data(RegValue(number, key, name, "delete", None, None), data, col)


def _data(value: RegValue, data: str, col: int) -> RegValue:
    number = value.line
    lower = data.lower()
    if data == "-":
        return value
    if data.startswith('"'):
        text, tail = unquote(data, number, col)
        if tail.strip():
            raise ReadError(f"text after the closing quote: {tail.strip()[:30]!r}", number,
                            col + len(data) - len(tail.lstrip(" \t")))
        return RegValue(number, value.key, value.name, "string", 1, text)
    if lower.startswith("dword:"):
        digits = data[6:].strip()
        if not 1 <= len(digits) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ReadError(f"bad dword {data[:30]!r}: expected 1 to 8 hex digits", number,
                            col + 6)
        return RegValue(number, value.key, value.name, "dword", 4, int(digits, 16))
    if lower.startswith(("hex:", "hex(")):
        kind, body, at = _hex_type(data, number, col)
        return RegValue(number, value.key, value.name, "hex", kind,
                        hex_bytes(body, number, col + at))
    raise ReadError(f"unsupported value data {data[:30]!r}: expected \"string\", dword:, "
                    "hex:, hex(n): or -", number, col)


def _hex_type(data: str, number: int, col: int) -> tuple[int, str, int]:
    """(registry type, the byte list, its offset in `data`) of `hex:` or `hex(n):`."""
    if data[:4].lower() == "hex:":
        return REG_BINARY, data[4:], 4
    close = data.find("):")
    digits = data[4:close] if close > 4 else ""
    if not digits or len(digits) > 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ReadError(f"bad value type in {data[:20]!r}: expected hex(n): with n in hex",
                        number, col + 4)
    return int(digits, 16), data[close + 2 :], close + 2


def hex_bytes(body: str, number: int, col: int) -> bytes:
    """Comma-separated bytes of one or two hex digits; blanks around them and a trailing comma
    are allowed, as `reg import` allows them."""
    items = body.split(",")
    if items and not items[-1].strip():
        items.pop()
    out = bytearray()
    at = col
    for item in items:
        digits = item.strip()
        if not 1 <= len(digits) <= 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ReadError(f"bad byte {digits[:10]!r} in hex data: expected two hex digits",
                            number, at)
        out.append(int(digits, 16))
        at += len(item) + 1
    return bytes(out)


# --- values as people read them ---------------------------------------------------------------


def shown(value: RegValue, encoding: str) -> str | int | list[str] | None:
    """The data as its type means it: text for strings (UTF-16LE in a UTF-16 file; ANSI in
    an 8-bit one, REGEDIT4 or not, as reg import reads it), a list for REG_MULTI_SZ, numbers
    for dwords and qwords, else hex."""
    data = value.data
    if not isinstance(data, bytes):
        return data
    kind = value.type
    if kind in (1, 2, 6, 7):
        text = _text(data, encoding)
        if text is None:
            return data.hex()
        if kind == 7:
            parts = text.split("\0")
            while parts and not parts[-1]:
                parts.pop()
            return parts
        return text.split("\0", 1)[0] if kind != 6 else text
    if kind in (4, 5) and len(data) == 4:
        return int.from_bytes(data, "little" if kind == 4 else "big")
    if kind == 11 and len(data) == 8:
        return int.from_bytes(data, "little")
    return data.hex()


def _text(data: bytes, encoding: str) -> str | None:
    try:
        if "UTF-16" not in encoding:
            return data.decode("cp1252")
        return data.decode("utf-16-le") if len(data) % 2 == 0 else None
    except UnicodeDecodeError:
        return None
