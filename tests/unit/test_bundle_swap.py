"""The swap of a new bundle into OUT is atomic for a reader (issue 17, item 6): a build killed
at any step of the swap leaves the complete old or the complete new bundle at OUT. On Linux
the two folders are exchanged in one step (renameat2 RENAME_EXCHANGE); where that is not
offered, the fallback's one-rename window is repaired by the next build."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
OLD_ARGS = ("--no-msi", "--replace-machine-limits")  # another .reg: a distinguishable bundle
NEW_ARGS = ("--no-msi",)
EXCHANGE_STEPS = ["staged", "exchanged"]
FALLBACK_STEPS = ["staged", "moved-aside", "swapped", "retired"]

# A `dcomc build` in its own process that stops at one step of the swap and waits there to
# be killed: `_reached` is the swap's (no-op) hook for exactly this. `fallback` makes the
# exchange unavailable, as on a file system that answers EINVAL.
CHILD = r"""
import sys
from dcomc.emit import bundle
from dcomc.cli import main

step, mode, out, spec, *args = sys.argv[1:]
if mode == "fallback":
    bundle._renameat2 = lambda: None

def reached(name):
    if name == step:
        print(name, flush=True)
        sys.stdin.read()  # wait here for the SIGKILL

bundle._reached = reached
main(["build", spec, "-o", out, *args], prog_name="dcomc")
"""


def build(out: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), *args])
    assert result.exit_code == 0, result.output


def snapshot(out: Path) -> dict[str, str] | None:
    """Every file of the bundle at OUT by its sha256, after checking it against the bundle's
    own manifest; None when there is no bundle at OUT."""
    if not out.exists():
        return None
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in out.rglob("*") if p.is_file()}
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {a["path"]: a["sha256"] for host in manifest["hosts"].values()
              for a in host["artifacts"]}
    listed.update((r["path"], r["sha256"]) for r in manifest["review"])
    assert {k: v for k, v in files.items() if k != "manifest.json"} == listed
    return files


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """The old and the new bundle's files, built elsewhere for comparison."""
    ref = tmp_path_factory.mktemp("ref")
    build(ref / "old", *OLD_ARGS)
    build(ref / "new", *NEW_ARGS)
    old, new = snapshot(ref / "old"), snapshot(ref / "new")
    assert old is not None and new is not None
    assert old["manifest.json"] != new["manifest.json"]
    return old, new


def beside(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir())


def kill_at(step: str, mode: str, out: Path) -> tuple[dict[str, str] | None, str]:
    """Run a build of OUT in a child process, stop it at `step` of the swap, look at OUT (as a
    reader would at that moment), then SIGKILL it. Returns what the reader saw and what the
    child printed on its way."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, step, mode, str(out), str(PLANT7), *NEW_ARGS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline() if ready else ""
        assert line == f"{step}\n", (line, child.poll(), child.stderr and child.stderr.read())
        seen = snapshot(out)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return seen, line


@pytest.mark.parametrize(("mode", "step"), [
    *(("exchange", step) for step in EXCHANGE_STEPS),
    *(("fallback", step) for step in FALLBACK_STEPS)])
def test_a_build_killed_inside_the_swap_leaves_a_whole_bundle(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        mode: str, step: str) -> None:
    """(1) Killed at each step of the swap, a build leaves the complete old or the complete
    new bundle at OUT, seen both while it is stopped there and after the kill — except in the
    fallback's documented window (`moved-aside`: the old bundle renamed aside, the new one
    not yet in), which the next build repairs. Then the next build writes the new bundle and
    leaves nothing beside it."""
    old, new = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    assert snapshot(out) == old
    expected = {"staged": old, "moved-aside": None}.get(step, new)
    seen, _ = kill_at(step, mode, out)
    assert seen == expected
    assert snapshot(out) == expected  # after the kill
    if expected is None:  # the window: the old bundle is aside, whole
        assert len([n for n in beside(out) if n.startswith(".out.old-")]) == 1
    build(out, *NEW_ARGS)
    assert snapshot(out) == new
    assert beside(out) == ["out"]  # no staged, old or retired folder, no lock file


def test_the_next_build_restores_the_previous_bundle_before_anything_else(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(2) The repair of a swap killed in the fallback's window: the next build puts the
    previous bundle back at OUT before it stages its own (the killed build's staged bundle is
    never promoted: that build failed), then swaps as usual."""
    old, new = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    kill_at("moved-aside", "fallback", out)
    left = beside(out)
    assert "out" not in left and len([n for n in left if n.startswith(".out.old-")]) == 1
    assert len([n for n in left if n.startswith(".out.tmp-")]) == 1  # the killed staged bundle
    at_staging: list[dict[str, str] | None] = []
    monkeypatch.setattr(bundle, "_reached", lambda step: at_staging.append(snapshot(out))
                        if step == "staged" else None)
    build(out, *NEW_ARGS)
    assert at_staging == [old]  # repaired first: the previous bundle was back at OUT
    assert snapshot(out) == new
    assert beside(out) == ["out"]


def test_a_failed_build_after_the_window_still_restores_the_previous_bundle(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The repair does not depend on the repairing build succeeding: one that fails while
    writing leaves the previous bundle at OUT, as any failed build does."""
    old, _ = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    kill_at("moved-aside", "fallback", out)

    def failing(path: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle, "_write_file", failing)
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), *NEW_ARGS])
    assert result.exit_code == 2 and "No space left on device [E403]" in result.output
    assert snapshot(out) == old
    assert beside(out) == ["out"]


def test_leftovers_beside_out_are_removed_and_never_promoted(tmp_path: Path) -> None:
    """A staged folder is never put at OUT by the repair (only a `.OUT.old-*` is, when OUT is
    missing); a tree being deleted (`.OUT.del-*`) is removed like every other leftover."""
    site = tmp_path / "site"
    site.mkdir()
    out = site / "out"
    for name in (".out.tmp-1-0", ".out.del-2-0", ".out.del-3-0/x"):
        (site / name).mkdir(parents=True)
        (site / name / "manifest.json").write_text("{}")
    (site / ".out.tmp-4-0").mkdir()
    bundle._sweep(out)
    assert beside(out) == []  # nothing promoted: there was no previous bundle to restore
    out.mkdir()
    (out / "manifest.json").write_text('{"current": true}')
    (site / ".out.old-5-0").mkdir()  # the previous bundle, left by a swap that completed
    (site / ".out.del-6-0").mkdir()
    bundle._sweep(out)
    assert beside(out) == ["out"] and (out / "manifest.json").read_text() == '{"current": true}'


def test_of_several_previous_bundles_the_latest_renamed_aside_is_restored(
        tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for n in (7, 8):
        (site / f".out.old-{n}-0").mkdir()
        (site / f".out.old-{n}-0" / "manifest.json").write_text(str(n))
    (site / ".out.old-7-0").rename(site / ".out.old-7-1")  # renamed aside last
    bundle._sweep(site / "out")
    assert beside(site / "out") == ["out"]
    assert (site / "out" / "manifest.json").read_text() == "7"


# A reader in another process (a thread of the building process rarely runs between two
# renames): opens OUT/manifest.json until told to stop, then prints the digests it read and
# how often there was none.
READER = r"""
import hashlib, json, os, sys
out, stop = sys.argv[1:]
seen, missing = set(), 0
print("reading", flush=True)
while not os.path.exists(stop):
    try:
        with open(os.path.join(out, "manifest.json"), "rb") as f:
            seen.add(hashlib.sha256(f.read()).hexdigest())
    except OSError:
        missing += 1
print(json.dumps({"seen": sorted(seen), "missing": missing}))
"""


def test_a_reader_always_finds_a_bundle_at_out(tmp_path: Path) -> None:
    """While builds replace OUT again and again, a reader that opens OUT/manifest.json never
    misses it and always reads one of the two bundles' manifests (the exchange path). With
    the two renames alone this reader missed OUT in 4 of 6 runs (1 to 1,017 times in 30
    builds): a reproducer by chance only; the deterministic one stops a build inside the
    fallback's window (`moved-aside` above)."""
    out, stop = tmp_path / "out", tmp_path / "stop"
    one = bundle.emit(compile_file(PLANT7), Options(), PLANT7.name)
    two = bundle.emit(compile_file(PLANT7), Options(replace_machine_limits=True), PLANT7.name)
    manifests = {hashlib.sha256(b.files["manifest.json"]).hexdigest() for b in (one, two)}
    bundle.write(one, out)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(out), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        for i in range(30):
            bundle.write(two if i % 2 == 0 else one, out)
    finally:
        stop.touch()
        found = json.loads(reader.communicate(timeout=30)[0])
    assert found["missing"] == 0
    assert found["seen"] and set(found["seen"]) <= manifests


def record_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    steps: list[str] = []
    monkeypatch.setattr(bundle, "_reached", steps.append)
    return steps


def test_the_exchange_is_used_on_this_file_system(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(3) renameat2(RENAME_EXCHANGE) works where the tests run (tmp_path), and a rebuild of
    an existing OUT uses it rather than the two-rename fallback."""
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    assert bundle._renameat2() is not None
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from-a").touch()
    inode_a = a.stat().st_ino
    assert bundle._exchange(a, b)
    assert (b / "from-a").exists() and not (a / "from-a").exists()
    assert b.stat().st_ino == inode_a
    _, new = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    steps = record_steps(monkeypatch)
    build(out, *NEW_ARGS)
    assert steps == EXCHANGE_STEPS
    assert snapshot(out) == new and beside(out) == ["out"]


def answering(code: int) -> Callable[[], Callable[..., int]]:
    def renameat2(*args: object) -> int:
        ctypes.set_errno(code)
        return -1

    return lambda: renameat2


@pytest.mark.parametrize("unavailable", [
    lambda: None,  # no renameat2 in libc (another OS, an old or another libc)
    answering(errno.EINVAL),  # a file system without RENAME_EXCHANGE (NFS, CIFS, FUSE)
    answering(errno.ENOSYS),  # a kernel without renameat2, a seccomp sandbox
], ids=["missing", "EINVAL", "ENOSYS"])
def test_the_fallback_works_where_the_exchange_is_unavailable(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch, unavailable: Callable[[], object]) -> None:
    _, new = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    monkeypatch.setattr(bundle, "_renameat2", unavailable)
    steps = record_steps(monkeypatch)
    build(out, *NEW_ARGS)
    assert steps == FALLBACK_STEPS
    assert snapshot(out) == new and beside(out) == ["out"]


def test_an_exchange_refused_for_another_reason_keeps_the_previous_bundle(
        tmp_path: Path, bundles: tuple[dict[str, str], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other answer (a permission, a busy mount point) is an error of the output folder,
    not a reason to try the fallback: E403, and the previous bundle stays."""
    old, _ = bundles
    out = tmp_path / "site" / "out"
    build(out, *OLD_ARGS)
    monkeypatch.setattr(bundle, "_renameat2", answering(errno.EBUSY))
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), *NEW_ARGS])
    assert result.exit_code == 2
    assert f"cannot write the output folder {out}: {os.strerror(errno.EBUSY)}" in result.output
    assert "[E403]" in result.output and "Traceback" not in result.output
    assert snapshot(out) == old and beside(out) == ["out"]


def test_the_first_build_of_out_is_one_rename(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    steps = record_steps(monkeypatch)
    build(tmp_path / "out", *NEW_ARGS)
    assert steps == ["staged", "renamed"]


def test_a_tree_beside_out_is_removed_without_following_links(tmp_path: Path) -> None:
    """The previous bundle's tree is removed name by name, each folder opened relative to its
    parent and never through a link: a link in it to a folder or file elsewhere is removed,
    what it points to is not; a folder it cannot open is left to shutil.rmtree's best effort."""
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file.txt").write_text("mine", encoding="utf-8")
    tree = tmp_path / ".out.del-1"
    for rel in ("HOST/reg/HOST.reg", "HOST/powershell/x.psd1", "HOST/HOST.msi", "REVIEW.md"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    (tree / "HOST" / "wix").symlink_to(outside / "keep", target_is_directory=True)
    (tree / "HOST" / "reg" / "file-link").symlink_to(outside / "keep" / "file.txt")
    os.link(tree / "REVIEW.md", tree / "HOST" / "hard")
    bundle._remove_tree(tree)
    assert not tree.exists()
    assert (outside / "keep" / "file.txt").read_text(encoding="utf-8") == "mine"
    bundle._remove_tree(tmp_path / "absent")  # nothing there: nothing to do, no error
    link = tmp_path / ".out.del-2"
    link.symlink_to(outside, target_is_directory=True)
    bundle._remove_tree(link)  # a link in OUT's place is not followed either
    assert (outside / "keep" / "file.txt").exists()
