"""A text build emits half its hosts in a forked child (emit/forked.py): the bundle must be
the one a single process writes, byte for byte, and a failure or a diagnostic in the child
must reach the build as if it had happened in the parent."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dcomc.diagnostics import CompileError
from dcomc.emit import bundle, forked
from dcomc.pipeline import compile_file
from dcomc_targets import TARGETS, Options

ROOT = Path(__file__).resolve().parents[2]
LARGE = ROOT / "examples" / "large" / "large-site.yaml"
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def force_split(monkeypatch: pytest.MonkeyPatch, split: bool) -> list[int]:
    """Fork at any size (or never); returns the list the split points are recorded in."""
    points: list[int] = []

    def point(count: int) -> int:
        points.append(count // 2 if split else count)
        return points[-1]

    monkeypatch.setattr(forked, "split_point", point)
    return points


def fail_at(monkeypatch: pytest.MonkeyPatch, name: str, error: Exception) -> None:
    """The first target raises `error` when it emits the host `name` (in whichever process
    emits that host)."""
    target = TARGETS[0]
    emit = target.emit

    def failing(host, ctx):  # type: ignore[no-untyped-def]
        if host.name == name:
            raise error
        return emit(host, ctx)

    monkeypatch.setattr(target, "emit", failing)


def test_a_forked_build_is_the_single_process_build(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_file(LARGE)
    options = Options(site_package=True)
    force_split(monkeypatch, False)
    bundle.build(compiled, options, LARGE.name, tmp_path / "one", reuse_hosts=False)
    points = force_split(monkeypatch, True)
    bundle.build(compiled, options, LARGE.name, tmp_path / "two", reuse_hosts=False)
    assert points == [len(compiled.plan.hosts) // 2]  # it did fork: 150 hosts in the child
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert len(one) > 3000 and one == two


def test_the_default_forks_only_large_sites_on_two_cores() -> None:
    assert forked.split_point(forked.MIN_HOSTS - 1) == forked.MIN_HOSTS - 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    expected = 5000 if cores >= 2 else 10_000
    assert forked.split_point(10_000) == expected


def test_diagnostics_of_the_childs_hosts_come_back(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """E401 found while emitting (--self-contained with --replace-machine-limits) on hosts of
    either half: the same errors, forked or not, and nothing written."""
    compiled = compile_file(PLANT7)
    options = Options(self_contained=True, replace_machine_limits=True)
    found = []
    for split in (False, True):
        force_split(monkeypatch, split)
        out = tmp_path / f"out-{split}"
        with pytest.raises(CompileError) as raised:
            bundle.build(compiled, options, PLANT7.name, out, reuse_hosts=False)
        found.append(sorted(d.message for d in raised.value.diagnostics.items))
        assert not out.exists()
    hosts = {m.split(":")[0] for m in found[1]}
    child = [h.name for h in compiled.plan.hosts[len(compiled.plan.hosts) // 2:]]
    assert found[0] == found[1] and hosts and hosts <= set(child)  # all from the child's half


def test_an_exception_in_the_child_fails_the_build(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_file(PLANT7)
    out = tmp_path / "out"
    bundle.build(compiled, Options(), PLANT7.name, out, reuse_hosts=False)
    before = tree(out)
    last = compiled.plan.hosts[-1].name  # in the child's half
    fail_at(monkeypatch, last, OSError(28, "No space left on device"))
    force_split(monkeypatch, True)
    with pytest.raises(OSError, match="No space left"):
        bundle.build(compiled, Options(), PLANT7.name, out, reuse_hosts=False)
    assert tree(out) == before  # the previous bundle, untouched


def test_a_failure_in_the_parent_stops_the_child(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent's half fails: the child is stopped and reaped before the staging folder is
    removed, so no file of it lands there afterwards, and nothing is left beside OUT."""
    compiled = compile_file(LARGE)
    first = compiled.plan.hosts[0].name  # in the parent's half
    fail_at(monkeypatch, first, RuntimeError("parent failed"))
    force_split(monkeypatch, True)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="parent failed"):
        bundle.build(compiled, Options(), LARGE.name, out, reuse_hosts=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    time.sleep(0.3)  # a child still running would recreate its host folders by now
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_interrupt_while_waiting_stops_the_child() -> None:
    """Ctrl-C while the parent waits for the child's result: the child is killed and reaped
    before the interrupt reaches the build, which then removes its staging folder."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        child = forked.Child(lambda: time.sleep(30))
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            child.join()
        assert time.monotonic() - start < 10
        with pytest.raises(ProcessLookupError):
            os.kill(child._pid, 0)  # gone, and reaped (a zombie would still take the signal)
        child.cancel()  # a second stop is a no-op
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
