"""The edits of a wixl MSI that wixl 0.101 cannot express, done in place.

wixl writes a rollback custom action as an immediate one (wixl-notes: `Execute="rollback"` →
2162), fills the SummaryInformation with a random PackageCode and the build time, and stores the
payload files' modification times in the embedded cabinet. All fixes are same-size edits: a
2-byte cell of the CustomAction table, three properties of the SummaryInformation property set,
and the date and time of each file entry of the cabinet (so the bundle's own files keep their
real times: a fixed old time would let `rsync` skip a changed file of the same size). `msibuild`
can make the first two, but it is a process that loads libmsi and rewrites the whole database —
about half of one wixl run per host, more than the issue's build-time budget allows. Here they
cost about 0.3 ms: the compound file is mapped just far enough to find the streams, and only the
changed bytes are written (olefile would do, but its full parse costs four times more). The
tests check every stream against olefile's reading and the result against msibuild's on every
example (the same streams, byte for byte), so both stay the reference.

Besides, the 64-bit script bit of other actions' types (2-byte cells as well), and one swap of
two Property values (two string references: wixl writes SecureCustomProperties itself, and the
list wanted arrives as the value of a donor property; the string pool is unchanged, every
string keeps its one reference).

Anything unexpected — a missing row, another type than wixl writes, a property of another
type or size, a property value not the one expected — raises MsiPatchError instead of
guessing: a wrong MSI must not be shipped.

Formats (Windows Installer database in an OLE compound file, as libmsi and Windows read it):
- table `T` is the stream named "!T", its name compressed two characters per code unit;
- rows are stored column by column; an i2 cell holds value + 0x8000 (0 = NULL), a string cell
  an index into the string pool, 2 bytes wide (3 when the pool header sets bit 31);
- the column layout of every table is in the `_Columns` table;
- SummaryInformation is an OLE property set: PID 9 (revision number = PackageCode, VT_LPSTR),
  PID 12/13 (created / last saved, VT_FILETIME);
- an embedded cabinet is a stream named like the cabinet, without the table marker (MS-CAB:
  CFHEADER, then at `coffFiles` one CFFILE per file: size, offset, folder, DOS date and time,
  attributes, name; no checksum covers them).
"""

from __future__ import annotations

import struct
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path

_MIME = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"
_STRING, _BINARY_MASK, _VALID = 0x0800, ~0x1000, 0x0100
_VT_LPSTR, _VT_FILETIME = 30, 64
_PID_REVISION, _PID_CREATED, _PID_SAVED = 9, 12, 13
_MAX_SECTOR = 0xFFFFFFFA  # above: free, end of chain, FAT and DIFAT markers
_DIRECTORY_ENTRY = struct.Struct("<64sHB49xII4x")
_FILETIME_1970 = 11644473600  # seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01


class MsiPatchError(RuntimeError):
    """The MSI is not laid out as expected; nothing was guessed."""


@cache
def stream_name(table: str, is_table: bool = True) -> str:
    """The compound-file name of a table's stream, or of another stream such as an embedded
    cabinet (libmsi's encode_streamname)."""
    out, i = ["\u4840"] if is_table else [], 0
    while i < len(table):
        first = _MIME.find(table[i])
        second = _MIME.find(table[i + 1]) if i + 1 < len(table) else -1
        if first >= 0 and second >= 0:
            out.append(chr(0x3800 + first + (second << 6)))
            i += 2
        else:
            out.append(chr(0x4800 + first) if first >= 0 else table[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class ActionType:
    """Set `action`'s type to `new` (it must be one of `old`, or already `new`)."""

    action: str
    old: frozenset[int]
    new: int


@dataclass(frozen=True, slots=True)
class PropertySwap:
    """Give property `name` the value `new`, which the property `donor` holds, and `donor`
    the value `old`, which `name` holds (or nothing, if `name` holds `new` and `donor` `old`
    already); anything else is refused."""

    name: str
    donor: str
    old: str
    new: str


def patch(msi: Path, action: str, old_types: frozenset[int], new_type: int,
          package_code: str, cabinet: str, epoch: int, *,
          types: Sequence[ActionType] = (), swaps: Sequence[PropertySwap] = ()) -> bytes:
    """Set `action`'s type to `new_type` (it must be one of `old_types` or already `new_type`),
    and those of `types`, swap the property values of `swaps`, set the SummaryInformation
    PackageCode and both dates, and the times of the files in `cabinet` to `epoch`; in place:
    only the changed pieces are written back. Returns the file's bytes."""
    with msi.open("r+b") as file:
        cfb = Compound(file.read())
        strings, ref = _string_pool(cfb)  # the patches change cells, never a string
        _set_action_types(cfb, strings, ref, [ActionType(action, old_types, new_type), *types])
        for swap in swaps:
            _swap_property_values(cfb, strings, ref, swap)
        _set_summary(cfb, package_code, epoch)
        _set_cabinet_times(cfb, cabinet, epoch)
        for at, n in cfb.written:
            file.seek(at)
            file.write(cfb.data[at:at + n])
    return bytes(cfb.data)


class Compound:
    """Just enough of an OLE compound file (MS-CFB) to read a stream of the root storage and
    overwrite it with as many bytes. Every inconsistency is an error, never a guess."""

    def __init__(self, data: bytes) -> None:
        if data[:8] != b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise MsiPatchError("not an OLE compound file")
        self.data = bytearray(data)
        shift, mini_shift = struct.unpack_from("<HH", data, 0x1E)
        self._sector, self._mini = 1 << shift, 1 << mini_shift
        fields = struct.unpack_from("<IIIIIII", data, 0x2C)
        fat_count, first_dir, _, self._cutoff, first_minifat, _, first_difat = fields
        difat = list(struct.unpack_from("<109I", data, 0x4C))
        sector = first_difat
        while sector < _MAX_SECTOR:  # DIFAT sectors: 127 FAT sector numbers, then the next one
            more = self._words(sector)
            difat += more[:-1]
            sector = more[-1]
        self._fat = [w for s in difat[:fat_count] for w in self._words(s)]
        self._entries = self._directory(b"".join(self._sectors(first_dir)))
        root = self._entries[0]
        self._minifat = [w for chunk in self._sectors(first_minifat)
                         for (w,) in struct.iter_unpack("<I", chunk)]
        self._ministream = self._chain(root[1])
        self._mapped: dict[str, list[tuple[int, int]]] = {}
        self.written: list[tuple[int, int]] = []  # (offset, length) of every piece written

    def read(self, name: str, limit: int | None = None) -> bytes:
        """The stream's bytes (its first `limit` bytes only, if given)."""
        pieces, size = [], 0
        for at, n in self._extents(name):
            if limit is not None:
                if size >= limit:
                    break
                n = min(n, limit - size)
            pieces.append(self.data[at:at + n])
            size += n
        return b"".join(pieces)

    def write(self, name: str, data: bytes) -> None:
        """Overwrite the stream's first len(data) bytes (never more than it has)."""
        extents = self._extents(name)
        if sum(n for _, n in extents) < len(data):
            raise MsiPatchError(f"stream {name!r}: a write may not grow a stream")
        done = 0
        for at, n in extents:
            if done >= len(data):
                break
            n = min(n, len(data) - done)
            self.data[at:at + n] = data[done:done + n]
            self.written.append((at, n))
            done += n

    def _extents(self, name: str) -> list[tuple[int, int]]:
        """(file offset, length) of each piece of the stream, in order."""
        if name not in self._mapped:
            self._mapped[name] = self._map(name)
        return self._mapped[name]

    def _map(self, name: str) -> list[tuple[int, int]]:
        found = [(start, size) for entry, start, size in self._entries[1:] if entry == name]
        if len(found) != 1:
            raise MsiPatchError(f"stream {name!r}: {len(found)} entries, expected 1")
        start, size = found[0]
        if size >= self._cutoff:
            pieces = [(1 + s) * self._sector for s in self._chain(start)]
            unit = self._sector
        else:  # in the mini stream, itself stored in the root entry's chain of sectors
            per = self._sector // self._mini
            minis = self._follow(self._minifat, start)
            if minis and max(minis) // per >= len(self._ministream):
                raise MsiPatchError(f"stream {name!r}: past the end of the mini stream")
            pieces = [(1 + self._ministream[m // per]) * self._sector + (m % per) * self._mini
                      for m in minis]
            unit = self._mini
        if len(pieces) * unit < size:
            raise MsiPatchError(f"stream {name!r}: chain shorter than its size")
        return _coalesced([(at, min(unit, size - i * unit))
                           for i, at in enumerate(pieces) if i * unit < size])

    @staticmethod
    def _directory(raw: bytes) -> list[tuple[str, int, int]]:
        """(name, first sector, size) of each 128-byte entry (name, its length in bytes with
        the final NUL, type, ..., first sector at 116, size at 120); "" for unused entries."""
        return [(name[:max(0, length - 2)].decode("utf-16-le") if kind in (1, 2, 5) else "",
                 start, size)
                for name, length, kind, start, size in _DIRECTORY_ENTRY.iter_unpack(raw)]

    def _chain(self, start: int) -> list[int]:
        return self._follow(self._fat, start)

    @staticmethod
    def _follow(table: list[int], start: int) -> list[int]:
        chain: list[int] = []
        size = len(table)
        while start < _MAX_SECTOR:
            if start >= size or len(chain) > size:  # off the table, or a loop
                raise MsiPatchError("broken sector chain")
            chain.append(start)
            start = table[start]
        return chain

    def _sectors(self, start: int) -> list[bytes]:
        return [bytes(self.data[(1 + s) * self._sector:(2 + s) * self._sector])
                for s in self._chain(start)]

    def _words(self, sector: int) -> list[int]:
        at = (1 + sector) * self._sector
        return list(struct.unpack_from(f"<{self._sector // 4}I", self.data, at))


def _coalesced(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent pieces as one (consecutive sectors are the rule): fewer slices to join."""
    merged = [extents[0]] if extents else []
    for at, n in extents[1:]:
        last_at, last_n = merged[-1]
        if last_at + last_n == at:
            merged[-1] = (last_at, last_n + n)
        else:
            merged.append((at, n))
    return merged


# --- CustomAction.Type ------------------------------------------------------------------------


def _table(cfb: Compound, strings: _Pool, ref: int, table: str
           ) -> tuple[str, bytes, int, int, list[bytes], list[int]]:
    """A table's stream as the patches read it: (stream name, data, row count, the bytes left
    over when the data is not whole rows, column names, column widths)."""
    columns = _columns(cfb, strings, ref, table)
    widths = [_width(kind, ref) for _, kind in columns]
    name = stream_name(table)
    data = cfb.read(name)
    rows, rest = divmod(len(data), sum(widths))
    return name, data, rows, rest, [c for c, _ in columns], widths


def _set_action_types(cfb: Compound, strings: _Pool, ref: int,
                      fixes: Sequence[ActionType]) -> None:
    """Each fix in turn, on the table read once and written once (it was read and written
    per fix, four times per MSI)."""
    name, data, rows, rest, names, widths = _table(cfb, strings, ref, "CustomAction")
    if rest or names[:2] != [b"Action", b"Type"] or widths[1] != 2:
        raise MsiPatchError(f"CustomAction table has an unexpected layout: {names}")
    keys = _cells(data, 0, ref, rows)
    out = bytearray(data)
    for fix in fixes:
        at = rows * widths[0] + 2 * _only_row(keys, strings, "CustomAction", fix.action)
        current = int.from_bytes(out[at:at + 2], "little") - 0x8000
        if current != fix.new and current not in fix.old:
            raise MsiPatchError(f"CustomAction {fix.action!r} has type {current}, expected one "
                                f"of {sorted(fix.old | {fix.new})}: wixl changed, review the "
                                "patch")
        out[at:at + 2] = (fix.new + 0x8000).to_bytes(2, "little")
    cfb.write(name, bytes(out))


def _only_row(keys: list[int], strings: _Pool, table: str, key: str) -> int:
    """The row whose key column (`keys`, string ids) is `key`; MsiPatchError unless one."""
    wanted = strings.id_of(key.encode())
    found = [row for row, sid in enumerate(keys) if sid == wanted]
    if len(found) != 1:
        raise MsiPatchError(f"{table} {key!r}: {len(found)} rows, expected 1")
    return found[0]


# --- Property values ---------------------------------------------------------------------------


def _swap_property_values(cfb: Compound, strings: _Pool, ref: int, swap: PropertySwap) -> None:
    name, data, rows, rest, names, widths = _table(cfb, strings, ref, "Property")
    if rest or names != [b"Property", b"Value"] or widths != [ref, ref]:
        raise MsiPatchError(f"Property table has an unexpected layout: {names}")
    keys = _cells(data, 0, ref, rows)
    cells = [rows * ref + _only_row(keys, strings, "Property", key) * ref
             for key in (swap.name, swap.donor)]
    values = [int.from_bytes(data[at:at + ref], "little") for at in cells]
    texts = [strings.text(v).decode("utf-8", "replace") for v in values]
    if texts == [swap.new, swap.old]:
        return  # done already
    if texts != [swap.old, swap.new]:
        raise MsiPatchError(f"Property {swap.name!r} = {texts[0]!r} and {swap.donor!r} = "
                            f"{texts[1]!r}; expected {swap.old!r} and {swap.new!r}: wixl "
                            "changed, review the patch")
    out = bytearray(data)
    for at, sid in zip(cells, reversed(values), strict=True):
        out[at:at + ref] = sid.to_bytes(ref, "little")
    cfb.write(name, bytes(out))


class _Pool:
    """The MSI string pool, looked up without building a table of every string (the patch
    needs three of several hundred): string ids count from 1, `ends[i]` is where string i+1
    ends in the pool's data."""

    def __init__(self, data: bytes, lengths: list[int]) -> None:
        self._data, self._lengths = data, lengths
        self._ends = list(accumulate(lengths))

    def id_of(self, text: bytes) -> int | None:
        """The id of the (first) string equal to `text`. Compared as bytes: the names looked
        up are ASCII, which every MSI code page encodes alike."""
        at = self._data.find(text)
        while at >= 0:
            i = bisect_left(self._ends, at + len(text))  # empty strings share an end: first
            if i < len(self._ends) and self._ends[i] == at + len(text) \
                    and self._lengths[i] == len(text):
                return i + 1
            at = self._data.find(text, at + 1)
        return None

    def text(self, sid: int) -> bytes:
        if not 1 <= sid <= len(self._ends):
            return b""
        end = self._ends[sid - 1]
        return self._data[end - self._lengths[sid - 1]:end]


def _string_pool(cfb: Compound) -> tuple[_Pool, int]:
    """The string pool, and the width of a string reference (2 bytes, or 3 when the pool
    header sets bit 31)."""
    pool = cfb.read(stream_name("_StringPool"))
    data = cfb.read(stream_name("_StringData"))
    words = struct.unpack(f"<{len(pool) // 2}H", pool)
    width = 3 if words[1] & 0x8000 else 2
    lengths = list(words[2::2])
    if sum(lengths) == len(data):  # the usual pool: no string over 64 KiB
        return _Pool(data, lengths), width
    lengths, i = [], 2
    while i + 1 < len(words):  # entries (length, refcount); an empty entry takes an id too
        length, refs = words[i], words[i + 1]
        if length == 0 and refs != 0:  # over 64 KiB: the high word, then the low word
            length, i = (refs << 16) + words[i + 2], i + 4
        else:
            i += 2
        lengths.append(length)
    if sum(lengths) != len(data):
        raise MsiPatchError("the string pool does not match its data")
    return _Pool(data, lengths), width


def _columns(cfb: Compound, strings: _Pool, ref: int,
             table: str) -> list[tuple[bytes, int]]:
    """(name, type) of `table`'s columns in order, from `_Columns` (Table s64, Number i2,
    Name s64, Type i2)."""
    data = cfb.read(stream_name("_Columns"))
    rows = len(data) // (2 * ref + 4)
    wanted = strings.id_of(table.encode())
    mine = [r for r, sid in enumerate(_cells(data, 0, ref, rows)) if sid == wanted]
    if not mine:
        raise MsiPatchError(f"no table {table!r} in the MSI")
    numbers = _cells(data, rows * ref, 2, rows)
    names = _cells(data, rows * (ref + 2), ref, rows)
    types = _cells(data, rows * (2 * ref + 2), 2, rows)
    found = sorted((numbers[r], strings.text(names[r]), types[r] - 0x8000) for r in mine)
    return [(name, kind) for _, name, kind in found]


def _cells(data: bytes, start: int, width: int, rows: int) -> list[int]:
    """One column of a table stream: `rows` little-endian cells of `width` bytes."""
    if width in (2, 4):
        return list(struct.unpack_from(f"<{rows}{'H' if width == 2 else 'I'}", data, start))
    return [int.from_bytes(data[start + r * width:start + (r + 1) * width], "little")
            for r in range(rows)]


def _width(kind: int, ref: int) -> int:
    if kind & _BINARY_MASK == _STRING | _VALID:  # a stream column holds a 2-byte marker
        return 2
    if kind & _STRING:
        return ref
    return 2 if kind & 0xFF <= 2 else 4


# --- SummaryInformation ----------------------------------------------------------------------


def _set_summary(cfb: Compound, package_code: str, epoch: int) -> None:
    name = "\x05SummaryInformation"
    data = bytearray(cfb.read(name))
    section = struct.unpack_from("<I", data, 44)[0]
    count = struct.unpack_from("<I", data, section + 4)[0]
    offsets = dict(struct.iter_unpack("<II", data[section + 8:section + 8 + 8 * count]))
    filetime = (epoch + _FILETIME_1970) * 10_000_000
    code = package_code.encode("ascii") + b"\0"
    _put(data, section, offsets, _PID_REVISION, _VT_LPSTR, struct.pack("<I", len(code)) + code)
    for pid in (_PID_CREATED, _PID_SAVED):
        _put(data, section, offsets, pid, _VT_FILETIME, struct.pack("<Q", filetime))
    cfb.write(name, bytes(data))


def _put(data: bytearray, section: int, offsets: dict[int, int], pid: int, vt: int,
         value: bytes) -> None:
    """Overwrite property `pid` with `value` (its bytes after the type); same type and size."""
    if pid not in offsets:
        raise MsiPatchError(f"SummaryInformation has no property {pid}")
    at = section + offsets[pid]
    kind = struct.unpack_from("<I", data, at)[0]
    old_size = 8 if vt == _VT_FILETIME else 4 + struct.unpack_from("<I", data, at + 4)[0]
    if kind != vt or old_size != len(value):
        raise MsiPatchError(f"SummaryInformation property {pid}: type {kind}, {old_size} bytes; "
                            f"expected type {vt}, {len(value)} bytes")
    data[at + 4:at + 4 + len(value)] = value


# --- cabinet file times -----------------------------------------------------------------------


def _set_cabinet_times(cfb: Compound, cabinet: str, epoch: int) -> None:
    name = stream_name(cabinet, is_table=False)
    head = cfb.read(name, 36)
    if head[:4] != b"MSCF" or len(head) < 36:
        raise MsiPatchError(f"stream {cabinet!r} is not a cabinet")
    files_at, = struct.unpack_from("<I", head, 16)
    count, = struct.unpack_from("<H", head, 28)
    data = bytearray(cfb.read(name, files_at + count * (16 + 256)))  # the entries, names <= 256
    stamp = _dos_time(epoch)
    at = files_at
    for _ in range(count):  # CFFILE: cbFile, uoffFolderStart, iFolder, date, time, attribs, name
        end = data.find(b"\0", at + 16)
        if end < 0:
            raise MsiPatchError(f"cabinet {cabinet!r}: file entry at {at} has no name")
        data[at + 10:at + 14] = stamp
        at = end + 1
    cfb.write(name, bytes(data))


def _dos_time(epoch: int) -> bytes:
    """The DOS date and time of a cabinet file entry (UTC, as gcab writes them)."""
    t = time.gmtime(epoch)
    if not 1980 <= t.tm_year <= 2107:
        raise MsiPatchError(f"a cabinet cannot store the year {t.tm_year}")
    date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return struct.pack("<HH", date, (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2))
