"""The in-place MSI patch (msidb) against two references: olefile reads every stream the same
way, and msibuild — the tool the patch replaces — makes the very same streams from the same
wixl output (the rollback type, the 64-bit script types, the SecureCustomProperties swap).
Its refusals are checked on real MSIs with one byte or one value changed."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import olefile
import pytest

from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options, msi, msidb
from dcomc_targets.wix import (
    CABINET,
    ROLLBACK_TYPE,
    SECURE_DONOR,
    WIXL_ROLLBACK_TYPES,
    WixlInput,
    wixl_input,
)
from tools import require

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PACKAGE = "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}"
EPOCH = 1700000000
ACTION = "DcomcApplyRollback"


def _source(host_dir: Path) -> WixlInput:
    """The host's product .wxs as wixl reads it, and the patches its MSI needs."""
    return wixl_input((host_dir / "wix" / f"{host_dir.name}.wxs").read_bytes())


def _wixl(host_dir: Path, output: str, **env: str) -> None:
    """wixl as msi.run_wixl runs it (strict, in the host folder, the product .wxs without
    what wixl does not know), with more environment."""
    with tempfile.TemporaryDirectory() as tmp:
        product = Path(tmp) / f"{host_dir.name}.wxs"
        product.write_bytes(_source(host_dir).data)
        subprocess.run(["wixl", "-a", "x64", "-o", output, str(product), "wix/DcomConfig.wxs"],
                       cwd=host_dir, check=True, capture_output=True,
                       env={**os.environ, "G_DEBUG": "fatal-warnings", **env})


def _raw_msis(spec: Path, out: Path) -> list[Path]:
    """wixl's own output for every host of `spec`, not patched."""
    require(shutil.which("wixl") is not None and shutil.which("msibuild") is not None,
            "wixl/msitools")
    bundle.build(compile_file(spec), Options(), spec.name, out)
    raws = []
    for host_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        _wixl(host_dir, "raw.msi")
        raws.append(host_dir / "raw.msi")
    return raws


@pytest.fixture(scope="module")
def raw_msis(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    found: list[Path] = []
    for spec in EXAMPLES:
        found += _raw_msis(spec, tmp_path_factory.mktemp("raw") / spec.stem)
    return found


def _streams(path: Path) -> dict[str, bytes]:
    with olefile.OleFileIO(str(path)) as ole:
        return {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}


def _msibuild_patch(msi_path: Path, raw: Path | None = None) -> None:
    """The reference: what msibuild does with the same intent (the route msidb replaces)."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(EPOCH))
    idt = "PropertyId\tValue\r\ni2\tl255\r\n_SummaryInformation\tPropertyId\r\n" + "".join(
        f"{pid}\t{value}\r\n" for pid, value in [("9", PACKAGE), ("12", stamp), ("13", stamp)])
    queries = [f"UPDATE `CustomAction` SET `Type`={ROLLBACK_TYPE} WHERE `Action`='{ACTION}'"]
    if raw is not None:
        source = _source(raw.parent)
        queries += [f"UPDATE `CustomAction` SET `Type`={new} WHERE `Action`='{action}'"
                    for action, _, new in source.script_types]
        if source.secure is not None:
            old, wanted = source.secure
            queries += [f"UPDATE `Property` SET `Value`='{wanted}' WHERE "
                        "`Property`='SecureCustomProperties'",
                        f"UPDATE `Property` SET `Value`='{old}' WHERE `Property`='{SECURE_DONOR}'"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "_SummaryInformation.idt").write_bytes(idt.encode("ascii"))
        subprocess.run(["msibuild", str(msi_path), *[a for q in queries for a in ("-q", q)],
                        "-i", "_SummaryInformation.idt"],
                       cwd=tmp, check=True, capture_output=True, env={**os.environ, "TZ": "UTC"})


def _fixes(raw: Path) -> tuple[list[msidb.ActionType], list[msidb.PropertySwap]]:
    """The 64-bit script types and the SecureCustomProperties swap for `raw`'s host, as
    msi.finish derives them."""
    source = _source(raw.parent)
    types = [msidb.ActionType(a, frozenset({old}), new) for a, old, new in source.script_types]
    swaps = [] if source.secure is None else [
        msidb.PropertySwap("SecureCustomProperties", SECURE_DONOR, *source.secure)]
    return types, swaps


def _patch(path: Path, raw: Path | None = None) -> None:
    """The rollback type, and with `raw` (the wixl output `path` is a copy of) its host's
    other fixes."""
    types, swaps = _fixes(raw) if raw is not None else ([], [])
    msidb.patch(path, ACTION, WIXL_ROLLBACK_TYPES, ROLLBACK_TYPE, PACKAGE, CABINET, EPOCH,
                types=types, swaps=swaps)


def test_compound_reads_every_stream_as_olefile_does(raw_msis: list[Path]) -> None:
    for raw in raw_msis:
        cfb = msidb.Compound(raw.read_bytes())
        streams = _streams(raw)
        assert len(streams) > 20
        for name, data in streams.items():
            assert cfb.read(name) == data, (raw, name)


def test_stream_names_are_libmsi_encoded(raw_msis: list[Path]) -> None:
    names = set(_streams(raw_msis[0]))
    for table in ("_StringPool", "_StringData", "_Columns", "CustomAction", "File",
                  "InstallExecuteSequence"):
        assert msidb.stream_name(table) in names


def test_patch_makes_the_streams_msibuild_makes(raw_msis: list[Path], tmp_path: Path) -> None:
    for i, raw in enumerate(raw_msis):
        _assert_patched_as_by_msibuild(raw, tmp_path / f"{i}")


def _assert_patched_as_by_msibuild(raw: Path, work: Path, same_streams: bool = True,
                                   origin: Path | None = None) -> None:
    """Our patch and msibuild's give the same tables and summary; the same streams too, byte
    for byte, unless msibuild's rewrite of the whole database lays the string pool out anew.
    `origin`: the wixl output in its host folder that `raw` was made from (default: raw)."""
    origin = origin or raw
    work.mkdir()
    ours, reference = work / "ours.msi", work / "ref.msi"
    shutil.copy(raw, ours)
    shutil.copy(raw, reference)
    _patch(ours, origin)
    _msibuild_patch(reference, origin)
    cab = msidb.stream_name(CABINET, is_table=False)
    mine, theirs = _streams(ours), _streams(reference)
    assert _cab_entries(mine.pop(cab)) == [
        (name, size, (2023, 11, 14, 22, 13, 20)) for name, size, _ in
        _cab_entries(theirs.pop(cab))]  # msibuild leaves the times as wixl found them
    if same_streams:
        assert mine == theirs, raw
    assert msi.summary(ours) == msi.summary(reference)
    assert msi.read_tables(ours) == msi.read_tables(reference)
    types = {r["Action"]: r["Type"] for r in msi.read_tables(ours)["CustomAction"]}
    assert types[ACTION] == str(ROLLBACK_TYPE)
    fixes, swaps = _fixes(origin)
    for fix in fixes:
        assert types[fix.action] == str(fix.new) and fix.new & 0x1000
    properties = {r["Property"]: r["Value"] for r in msi.read_tables(ours)["Property"]}
    for swap in swaps:
        assert (properties[swap.name], properties[swap.donor]) == (swap.new, swap.old)
    # only the patched bytes changed: same size, the rest of the file untouched
    before, after = raw.read_bytes(), ours.read_bytes()
    assert len(before) == len(after)
    cells = 2 + 2 * len(fixes) + 2 * 3 * len(swaps)  # type cells; two string references
    assert sum(a != b for a, b in zip(before, after, strict=True)) <= cells + 38 + 16 + 6 * 4


def test_every_example_host_with_passwords_gets_the_new_fixes(raw_msis: list[Path]) -> None:
    """The reference comparison above covers the 64-bit script types and the swap: every MSI
    has CheckReboot; a host with passwords also Prepare and Apply, and the swap."""
    fixes = {raw: _fixes(raw) for raw in raw_msis}
    assert all(types[-1].action == "DcomcCheckReboot" for types, _ in fixes.values())
    with_passwords = [raw for raw, (_, swaps) in fixes.items() if swaps]
    assert with_passwords and all(len(fixes[raw][0]) == 3 for raw in with_passwords)
    assert all(len(types) == 1 for types, swaps in fixes.values() if not swaps)


def test_a_string_over_64_kib_in_the_pool(raw_msis: list[Path], tmp_path: Path) -> None:
    """libmsi stores a string over 64 KiB with its length in two pool entries (msibuild writes
    one here): the string and every id after it must still be found."""
    raw = tmp_path / "long.msi"
    shutil.copy(raw_msis[0], raw)
    subprocess.run(["msibuild", str(raw), "-q", "INSERT INTO `Property` (`Property`, `Value`) "
                    f"VALUES ('DCOMC_LONG', '{'x' * 70000}')"], check=True, capture_output=True)
    cfb = msidb.Compound(raw.read_bytes())
    words = struct.unpack("<" + "H" * (len(cfb.read(msidb.stream_name("_StringPool"))) // 2),
                          cfb.read(msidb.stream_name("_StringPool")))
    assert any(words[i] == 0 and words[i + 1] for i in range(2, len(words) - 1, 2))
    pool, _ = msidb._string_pool(cfb)
    assert pool.text(pool.id_of(b"x" * 70000) or 0) == b"x" * 70000
    # msibuild's rewrite appends an empty entry to this pool: tables and summary must match
    _assert_patched_as_by_msibuild(raw, tmp_path / "patched", same_streams=False,
                                   origin=raw_msis[0])


class _Streams:
    """A compound file reduced to what `_string_pool` reads; a string over 64 KiB takes two
    entries, (0, high word of its length) then (low word, references), as libmsi writes it."""

    def __init__(self, strings: list[bytes], refs: list[int]) -> None:
        words = [0, 0]
        for text, ref in zip(strings, refs, strict=True):
            if len(text) > 0xFFFF:
                words += [0, len(text) >> 16, len(text) & 0xFFFF, ref]
            else:
                words += [len(text), ref]
        self.streams = {msidb.stream_name("_StringPool"): struct.pack(f"<{len(words)}H", *words),
                        msidb.stream_name("_StringData"): b"".join(strings)}

    def read(self, name: str) -> bytes:
        return self.streams[name]


@pytest.mark.parametrize("long", [b"", b"x" * 70000], ids=["short", "over-64-KiB"])
def test_string_ids_count_empty_entries_and_only_whole_strings_match(long: bytes) -> None:
    """An empty entry (a string no row uses any more) keeps its id, and so does a string over
    64 KiB; a lookup matches a whole string, never a piece across two; the first of two equal
    strings wins."""
    strings = [b"Type", long, b"Action", b"CustomAction", b"", b"Action"]
    pool, width = msidb._string_pool(_Streams(strings, [1, int(bool(long)), 2, 1, 0, 1]))  # type: ignore[arg-type]
    assert width == 2
    assert [pool.id_of(s) for s in (b"Type", b"Action", b"CustomAction")] == [1, 3, 4]
    for piece in (b"eAct", b"Custom", b"ction", b"Typ"):  # across two, or a part of one
        assert pool.id_of(piece) is None, piece
    assert [pool.text(sid) for sid in range(0, 8)] == [b"", *strings, b""]
    if long:
        assert pool.id_of(long) == 2


def test_a_pool_whose_lengths_miss_its_data_is_refused() -> None:
    broken = _Streams([b"ab", b"x" * 70000], [1, 1])
    broken.streams[msidb.stream_name("_StringData")] += b"!"
    with pytest.raises(msidb.MsiPatchError, match="does not match its data"):
        msidb._string_pool(broken)  # type: ignore[arg-type]


def _cab_entries(cab: bytes) -> list[tuple[bytes, int, tuple[int, ...]]]:
    """(name, size, (year, month, day, hour, minute, second)) of each CFFILE entry."""
    at, = struct.unpack_from("<I", cab, 16)
    count, = struct.unpack_from("<H", cab, 28)
    entries = []
    for _ in range(count):
        size, _, _, date, clock, _ = struct.unpack_from("<IIHHHH", cab, at)
        end = cab.index(b"\0", at + 16)
        stamp = (1980 + (date >> 9), (date >> 5) & 15, date & 31, clock >> 11,
                 (clock >> 5) & 63, (clock & 31) * 2)
        entries.append((cab[at + 16:end], size, stamp))
        at = end + 1
    return entries


def test_payload_times_and_time_zone_do_not_reach_the_msi(raw_msis: list[Path]) -> None:
    """The cabinet stores file times; the patch fixes them, so the same spec gives the same
    MSI whenever and wherever it is built, and the bundle's files keep their real times."""
    host_dir = raw_msis[0].parent
    host = host_dir.name
    first = msi.finish(msi.run_wixl(host_dir, host), "site", host, "1.0.0", "00")
    assert first == (host_dir / f"{host}.msi").read_bytes()
    for path in host_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (EPOCH + 86400 * 400, EPOCH + 86400 * 400))
    _wixl(host_dir, f"{host}.msi", TZ="Asia/Tokyo")
    assert (host_dir / f"{host}.msi").read_bytes() != first  # wixl wrote other times
    again = msi.finish(host_dir / f"{host}.msi", "site", host, "1.0.0", "00")
    assert again == first


def test_patch_is_idempotent(raw_msis: list[Path], tmp_path: Path) -> None:
    once = tmp_path / "once.msi"
    shutil.copy(raw_msis[0], once)
    assert _fixes(raw_msis[0])[1]  # the swap is tried twice too
    _patch(once, raw_msis[0])
    data = once.read_bytes()
    _patch(once, raw_msis[0])  # a fixed wixl that wrote 3442 (or 7173) itself is accepted too
    assert once.read_bytes() == data


@pytest.mark.parametrize(("query", "message"), [
    ("UPDATE `CustomAction` SET `Type`=3078 WHERE `Action`='DcomcApply'",
     r"CustomAction 'DcomcApply' has type 3078, expected one of \[3077, 7173\]"),
    ("UPDATE `Property` SET `Value`='WIX_UPGRADE_DETECTED' WHERE "
     "`Property`='SecureCustomProperties'",
     r"Property 'SecureCustomProperties' = 'WIX_UPGRADE_DETECTED' and "
     f"'{SECURE_DONOR}' = .*; expected 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED'"),
    (f"UPDATE `Property` SET `Value`='x' WHERE `Property`='{SECURE_DONOR}'",
     f"'{SECURE_DONOR}' = 'x'"),
    (f"DELETE FROM `Property` WHERE `Property`='{SECURE_DONOR}'",
     f"Property '{SECURE_DONOR}': 0 rows, expected 1"),
])
def test_new_fixes_refuse_what_they_do_not_expect(raw_msis: list[Path], tmp_path: Path,
                                                  query: str, message: str) -> None:
    broken = tmp_path / "broken.msi"
    shutil.copy(raw_msis[0], broken)
    subprocess.run(["msibuild", str(broken), "-q", query], check=True, capture_output=True)
    with pytest.raises(msidb.MsiPatchError, match=message):
        _patch(broken, raw_msis[0])


def _cell(path: Path) -> int:
    """File offset of the rollback action's Type cell (wixl's value, found in the table)."""
    cfb = msidb.Compound(path.read_bytes())
    name = msidb.stream_name("CustomAction")
    table = cfb.read(name)
    at = table.index(struct.pack("<H", min(WIXL_ROLLBACK_TYPES) + 0x8000))
    for offset, length in cfb._extents(name):  # the test needs the on-disk position
        if at < length:
            return offset + at
        at -= length
    raise AssertionError("cell not found")


@pytest.mark.parametrize(("edit", "message"), [
    ("type", r"has type 2163, expected one of \[2162, 3442\]: wixl changed"),
    ("action", r"CustomAction 'DcomcApplyRollback': 0 rows, expected 1"),
    ("magic", r"not an OLE compound file"),
])
def test_patch_refuses_what_it_does_not_expect(raw_msis: list[Path], tmp_path: Path,
                                               edit: str, message: str) -> None:
    broken = tmp_path / "broken.msi"
    data = bytearray(raw_msis[0].read_bytes())
    if edit == "type":
        data[_cell(raw_msis[0])] += 1
    elif edit == "action":
        at = data.index(ACTION.encode())  # in _StringData: the row no longer names it
        data[at] = ord("X")
    else:
        data[0] ^= 0xFF
    broken.write_bytes(bytes(data))
    with pytest.raises(msidb.MsiPatchError, match=message):
        _patch(broken)


def test_summary_property_of_another_size_is_refused(raw_msis: list[Path],
                                                     tmp_path: Path) -> None:
    broken = tmp_path / "broken.msi"
    shutil.copy(raw_msis[0], broken)
    expected = r"property 9: type 30, 43 bytes; expected type 30, 42 bytes"
    with pytest.raises(msidb.MsiPatchError, match=expected):
        msidb.patch(broken, ACTION, WIXL_ROLLBACK_TYPES, ROLLBACK_TYPE, PACKAGE[:-1], CABINET,
                    EPOCH)
