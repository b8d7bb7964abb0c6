"""Seeded mutations of real dcomc artifacts, for the read-back fuzzers (test_readback_fuzz.py).

Every mutation is a pure function of a `random.Random`, so a case is reproduced from the seed
and its number alone. The operators are the ones the issue-17 attack run used: byte flips,
truncation, insertion of hostile bytes, deletion and duplication of spans, splices from other
artifacts, deep nesting, huge numbers, invalid UTF-8 and UTF-16 (lone surrogates, odd lengths,
a BOM in the middle), and, for JSON, the same applied to the parsed structure.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from typing import Any

# A line break and what would pass for an error line of dcomc's own, if printed unescaped.
FORGED = "\r\nerror: forged"
# Bytes that mean something to one of the artifact languages, to a decoder or to a terminal.
HOSTILE: tuple[bytes, ...] = (
    b"\x00", b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\r", b"\n", b"\r\n", b"\t", b"\x0b", b"\x1b[2J",
    b"\x1b]0;owned\x07", b"\xe2\x80\xae", b"\xc2\x9b", b"\x7f", FORGED.encode(),
    b'"', b"'", b"\\", b"\\\n", b"[", b"]", b"(", b")", b"{", b"}", b"<", b">", b"&", b";", b"=",
    b",", b"%", b"$", b"$(", b"$$", b"@(", b"@{", b"--", b"<!--", b"-->", b"]]>", b"<?", b"?>",
    b"<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;", b"&#0;", b"&#xD800;",
    b"9" * 5000, b"-1", b"-0", b"0", b"4294967296", b"18446744073709551616", b"1e999", b"-1e999",
    b"NaN", b"Infinity", b"0x", b"0xFFFFFFFF", b"1" * 40,
    b"hex:", b"dword:", b"dword:100000000", b"hex(7):", b"hex(", b"=-", b"@=", b"hex:zz,",
    b"S-1-5-32-544", b"*S-1-", b"S-1-" + b"1-" * 20 + b"1", b"S-1-99999999999999999999-1",
    b"../../etc/passwd", b"/etc/passwd", b"C:\\Windows\\", b"\\\\?\\",
    b" " * 200, b"A" * 70000, b"\xf0\x9f\x92\xa9", b"\xef\xbf\xbe", b"\xef\xbf\xbf",
    b"D:(A;;CCDCLCSWRP;;;WD)", b"O:BAG:BA", b"D:P(A;;0x1f;;;S-1-5-7)",
    b"advfirewall firewall add rule", b" remoteip=any", b'name="a"b',
    b"$true", b"$null", b"$env:PATH", b"@'", b"'@", b"#>", b"<#",
)

# Openers that nest: (opener, closer) in the syntax of each text format.
NESTERS: tuple[tuple[bytes, bytes], ...] = (
    (b"[", b"]"), (b"{\"a\":", b"}"), (b"<a>", b"</a>"), (b"@(", b")"), (b"@{a=", b"}"),
    (b"(", b")"), (b"$(", b")"),
)

# Strings for the text-level mutation of UTF-16 files (encoded with surrogatepass: a lone
# surrogate reaches the file as such).
HOSTILE_TEXT: tuple[str, ...] = (
    "\ud800", "\udfff", "\ufeff", "\ufffe", "\uffff", "\x00", "\r", "\n", "\u2028", "\u202e",
    "\x1b[2J", FORGED, '"', "\\", "[", "]", "=", ",", ";", "hex:", "dword:", "=-", "*S-1-",
    "9" * 5000,
    "[Unicode]", "[Version]", '"$CHICAGO$"', "signature=", "[Privilege Rights]",
    "[Registry Values]", "\\\r\n  ", "hex(2):", "@=", "Windows Registry Editor Version 5.00",
)

SMALL_INTS = (0, 1, 2, 3, 4, 7, 8, 15, 16, 19, 20, 21, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000,
              0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


class Mutator:
    """Random mutations of bytes, UTF-16 text, JSON documents and binary descriptors."""

    def __init__(self, rng: random.Random, donors: list[bytes]) -> None:
        self.rng = rng
        self.donors = donors  # other artifacts, for splices

    # --- bytes -----------------------------------------------------------------------------

    def bytes_(self, data: bytes, rounds: int | None = None) -> tuple[bytes, list[str]]:
        """1-4 byte-level operators in a row; returns the result and what was done."""
        done: list[str] = []
        for _ in range(rounds or self.rng.choice((1, 1, 1, 2, 2, 3, 4))):
            op = self.rng.choice(self._byte_ops)
            data, what = op(self, bytearray(data))
            done.append(what)
        return data, done

    def _pos(self, data: bytearray, end: bool = True) -> int:
        return self.rng.randint(0, len(data) if end else max(len(data) - 1, 0))

    def _flip(self, data: bytearray) -> tuple[bytes, str]:
        if not data:
            return bytes(data), "flip (empty)"
        at = self._pos(data, end=False)
        bit = self.rng.randrange(8)
        data[at] ^= 1 << bit
        return bytes(data), f"flip bit {bit} at {at}"

    def _set(self, data: bytearray) -> tuple[bytes, str]:
        if not data:
            return bytes(data), "set (empty)"
        at = self._pos(data, end=False)
        data[at] = self.rng.randrange(256)
        return bytes(data), f"set byte {at} to {data[at]:#04x}"

    def _insert(self, data: bytearray) -> tuple[bytes, str]:
        at = self._pos(data)
        token = self.rng.choice(HOSTILE)
        return bytes(data[:at] + token + data[at:]), f"insert {token[:20]!r} at {at}"

    def _delete(self, data: bytearray) -> tuple[bytes, str]:
        at = self._pos(data)
        size = self.rng.choice((1, 2, 3, 4, 8, 16, 64, 512))
        return bytes(data[:at] + data[at + size:]), f"delete {size} at {at}"

    def _truncate(self, data: bytearray) -> tuple[bytes, str]:
        at = self._pos(data)
        return bytes(data[:at]), f"truncate at {at}"

    def _duplicate(self, data: bytearray) -> tuple[bytes, str]:
        at = self._pos(data)
        size = self.rng.choice((1, 2, 4, 16, 64, 512, 4096))
        times = self.rng.choice((1, 2, 10, 100))
        chunk = bytes(data[at:at + size])
        return bytes(data[:at] + chunk * times + data[at:]), f"repeat {size}x{times} at {at}"

    def _splice(self, data: bytearray) -> tuple[bytes, str]:
        donor = self.rng.choice(self.donors) if self.donors else bytes(data)
        start = self.rng.randint(0, len(donor))
        chunk = donor[start:start + self.rng.choice((4, 32, 256, 2048))]
        at = self._pos(data)
        size = self.rng.choice((0, len(chunk)))
        return bytes(data[:at] + chunk + data[at + size:]), f"splice {len(chunk)} at {at}"

    def _swap_lines(self, data: bytearray) -> tuple[bytes, str]:
        lines = bytes(data).split(b"\n")
        if len(lines) < 2:
            return bytes(data), "swap lines (one line)"
        a, b = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
        lines[a], lines[b] = lines[b], lines[a]
        return b"\n".join(lines), f"swap lines {a} and {b}"

    def _nest(self, data: bytearray) -> tuple[bytes, str]:
        opener, closer = self.rng.choice(NESTERS)
        depth = self.rng.choice((100, 1000, 5000, 50000))
        closed = self.rng.random() < 0.5
        at = self._pos(data)
        blob = opener * depth + (b"1" + closer * depth if closed else b"")
        return bytes(data[:at] + blob + data[at:]), f"nest {opener!r} x{depth} at {at}"

    def _number(self, data: bytearray) -> tuple[bytes, str]:
        """A run of digits replaced by an edge value (huge, negative, hex, exponent)."""
        digits = [i for i, c in enumerate(data) if 0x30 <= c <= 0x39]
        if not digits:
            return self._insert(data)
        at = self.rng.choice(digits)
        end = at
        while end < len(data) and 0x30 <= data[end] <= 0x39:
            end += 1
        value = self.rng.choice((b"9" * 5000, b"4294967296", b"18446744073709551616", b"-1",
                                 b"1e999", b"0", b"99999999999999999999", b"1.5", b"-0"))
        return bytes(data[:at] + value + data[end:]), f"number {value[:12]!r} at {at}"

    _byte_ops: tuple[Callable[[Mutator, bytearray], tuple[bytes, str]], ...] = (
        _flip, _flip, _set, _insert, _insert, _insert, _delete, _truncate, _duplicate, _splice,
        _swap_lines, _nest, _number, _number,
    )

    # --- UTF-16LE text (regedit, secedit) --------------------------------------------------

    def utf16(self, data: bytes) -> tuple[bytes, list[str]]:
        """Mutated as text (so the mutation survives decoding), sometimes also as bytes."""
        bom, body = data[:2], data[2:]
        text = body.decode("utf-16-le", "surrogatepass")
        done: list[str] = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            kind = self.rng.random()
            at = self.rng.randint(0, len(text))
            if kind < 0.5:
                token = self.rng.choice(HOSTILE_TEXT)
                text = text[:at] + token + text[at:]
                done.append(f"text insert {token[:12]!r} at {at}")
            elif kind < 0.7:
                size = self.rng.choice((1, 2, 5, 20, 200))
                text = text[:at] + text[at + size:]
                done.append(f"text delete {size} at {at}")
            elif kind < 0.85:
                raw, what = self._number(bytearray(text.encode("utf-8", "surrogatepass")))
                text = raw.decode("utf-8", "surrogatepass")
                done.append(f"text {what}")
            else:
                lines = text.split("\r\n")
                line = self.rng.randrange(len(lines))
                lines[line] = lines[line][: self.rng.randint(0, len(lines[line]))]
                text = "\r\n".join(lines)
                done.append(f"text cut line {line}")
        out = bom + text.encode("utf-16-le", "surrogatepass")
        if self.rng.random() < 0.2:
            out, more = self.bytes_(out, 1)
            done += more
        return out, done

    # --- JSON documents --------------------------------------------------------------------

    def json_(self, value: Any, paths: tuple[str, ...] = ()) -> tuple[bytes, list[str]]:
        """A JSON document with 1-3 nodes replaced by hostile values, serialized; `paths` are
        strings worth planting (manifest paths), besides the generic hostile values."""
        placeholders: dict[str, str] = {}
        done: list[str] = []
        value = json.loads(json.dumps(value))
        for n in range(self.rng.choice((1, 1, 2, 3))):
            holder, key = self._node(value)
            raw = self._hostile_json(paths)
            mark = f"\x00fuzz{n}\x00"
            placeholders[json.dumps(mark)] = raw
            if holder is None:
                value = mark
            else:
                holder[key] = mark
            done.append(f"json {key!r} = {raw[:40]!r}")
        text = json.dumps(value, indent=self.rng.choice((None, 2, 4)), ensure_ascii=False)
        for mark, raw in placeholders.items():
            text = text.replace(mark, raw)
        encoding = self.rng.choice(("utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16"))
        data = text.encode(encoding, "surrogatepass")
        if self.rng.random() < 0.15:
            data, more = self.bytes_(data, 1)
            done += more
        return data, done

    def _node(self, value: Any) -> tuple[Any, Any]:
        """A random (container, key) of the document; (None, None) for the root."""
        holder: Any = None
        key: Any = None
        node = value
        while isinstance(node, dict | list) and node and self.rng.random() < 0.8:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            holder, key = node, self.rng.choice(keys)
            node = node[key]
        if isinstance(node, dict | list) and node and holder is None:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            holder, key = node, self.rng.choice(keys)
        return holder, key

    def _hostile_json(self, paths: tuple[str, ...]) -> str:
        pick = self.rng.random()
        depth = self.rng.choice((50, 500, 5000, 100000))
        if pick < 0.1:
            return "[" * depth + "]" * depth
        if pick < 0.15:
            return '{"a":' * depth + "1" + "}" * depth
        if pick < 0.25 and paths:
            return json.dumps(self.rng.choice(paths))
        choices = (
            "null", "true", "false", "0", "-1", "1e999", "-1e999", "NaN", "Infinity", "1.5",
            "9" * 5000, "18446744073709551616", '""', '"\\ud800"', '"\\udfff x"', '"\\u0000"',
            '"\\u001b[2J\\u001b]0;x\\u0007"', json.dumps("a" + FORGED), '"\\u202e"', "[]",
            "{}", "[1, 2]", '{"Id": 1}', '[{"Id": "x", "Compliant": true}]',
            json.dumps("A" * 70000), '"../../etc/passwd"', '"/etc/passwd"', '"."', '"/"',
            '{"kind": "powershell-data", "path": "/etc/passwd"}',
        )
        return self.rng.choice(choices)

    # --- binary security descriptors -------------------------------------------------------

    def descriptor(self, data: bytes) -> tuple[bytes, list[str]]:
        """Field-aware (a 16/32-bit field set to an edge value) or byte-level mutations."""
        done: list[str] = []
        out = bytearray(data)
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            if self.rng.random() < 0.5 and len(out) >= 4:
                size = self.rng.choice((1, 2, 4))
                at = self.rng.randrange(0, max(len(out) - size, 0) + 1)
                value = self.rng.choice((*SMALL_INTS, len(out), len(out) - 4, len(out) + 4))
                value &= (1 << (8 * size)) - 1
                fmt = {1: "<B", 2: "<H", 4: "<I"}[size]
                out[at:at + size] = struct.pack(fmt, value)
                done.append(f"field u{8 * size} at {at} = {value:#x}")
            else:
                raw, more = self.bytes_(bytes(out), 1)
                out = bytearray(raw)
                done += more
        return bytes(out), done

    def hex_text(self, data: bytes) -> str:
        """Bytes in one of the forms `dcomc sd decode` accepts: plain hex (spaced or not), a
        comma list, or a `reg export` value wrapped with continuation lines."""
        style = self.rng.random()
        if style < 0.3:
            return data.hex()
        if style < 0.45:
            return " ".join(f"{b:02x}" for b in data)
        if style < 0.6:
            return ",".join(f"{b:02x}" for b in data)
        items = [f"{b:02x}" for b in data]
        lines, line = [], '"LaunchPermission"=hex:'
        for i, item in enumerate(items):
            line += item + ("," if i < len(items) - 1 else "")
            if len(line) > 76 and i < len(items) - 1:
                lines.append(line + "\\")
                line = "  "
        lines.append(line)
        return "\r\n".join(lines) if self.rng.random() < 0.5 else "\n".join(lines)
