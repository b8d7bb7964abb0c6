"""Half of a text build's hosts emitted in a forked child, on the second core (issue 18).

Emission is pure Python, one host after another, so one core does it all while the other
idles: 10,000 hosts cost 6.5 s of per-host work. After compile, the plan is in memory and
immutable, so a fork gives a child the same plan, options and caches at no cost; it emits
its hosts, writes their files into the same staging folder (other paths than the parent's),
and sends back only what the manifest needs (each host's entry) and any diagnostic it added,
pickled through a pipe. The parent emits the other half meanwhile and merges by host name,
in plan order, so the bundle is byte-identical to a build in one process (tested).

Used only where nothing else runs beside emission: no MSI builds (their wixl processes use
the cores already, and a fork would copy the worker threads' state), no signing (the signer
holds a private key and tool processes), Linux/Unix with two usable cores, and enough hosts
that the fork pays (a fork and the pickle cost about 30 ms). An exception in the child is
raised again in the parent (the original when it can be pickled), so a build fails the same
way: nothing is swapped into OUT.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Any

MIN_HOSTS = 500  # below this a build takes well under a second: one process


def split_point(count: int) -> int:
    """How many of `count` hosts the parent emits itself: all of them when a fork does not
    pay or is not possible, else the first half."""
    if count < MIN_HOSTS or not usable():
        return count
    return count // 2


def usable() -> bool:
    """Whether a forked child runs beside this process: Linux/Unix, two usable cores."""
    return hasattr(os, "fork") and _cores() >= 2


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Child:
    """`work()` run in a forked child; `join()` returns its result or raises its exception."""

    def __init__(self, work: Callable[[], Any]) -> None:
        read, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: never returns into the caller's code
            os.close(read)
            _run_and_send(work, write)
        os.close(write)
        self._read = read
        self._done = False  # reaped, and the pipe closed

    def cancel(self) -> None:
        """Stop the child (the parent failed or was interrupted: its files must not go on
        landing in a staging folder being removed) and reap it; once."""
        if self._done:
            return
        self._done = True
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self._pid, 0)
        except ChildProcessError:  # reaped already (an interrupt right after join's wait)
            pass
        os.close(self._read)

    def join(self) -> Any:
        try:  # an interrupt while waiting stops the child too, before the caller cleans up
            with os.fdopen(self._read, "rb", closefd=False) as stream:
                payload = stream.read()  # to the end: the child has written all and exited
            _, status = os.waitpid(self._pid, 0)
        except BaseException:
            self.cancel()
            raise
        self._done = True
        os.close(self._read)
        if not payload:
            raise RuntimeError(f"the emitting child process ended without a result "
                               f"(wait status {status})")
        ok, value = pickle.loads(payload)  # our own child's bytes, through a pipe
        if not ok:
            raise value
        return value


def _run_and_send(work: Callable[[], Any], write: int) -> None:
    """In the child: run, send (True, result) or (False, exception), and exit at once —
    `os._exit`, so that no exit handler, context manager or buffered output of the parent
    runs twice."""
    code = 0
    try:
        try:
            payload = pickle.dumps((True, work()))
        except BaseException as exc:  # every failure goes to the parent
            try:
                payload = pickle.dumps((False, exc))
            except Exception:  # an exception that cannot be pickled
                payload = pickle.dumps((False, RuntimeError(f"in the emitting child: {exc!r}")))
        with os.fdopen(write, "wb") as stream:
            stream.write(payload)
    except BaseException:  # the pipe failed: the parent sees no result
        code = 1
    finally:
        os._exit(code)
