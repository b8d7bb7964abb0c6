"""MSI per host: built from the WiX project with wixl, patched in place (msidb), read back with
msiinfo (msitools). See wixl-notes for every workaround below.

- strict: `G_DEBUG=fatal-warnings` turns wixl's silently dropped rows into a failure;
- relative `Source` paths, wixl run with `cwd` = the host folder;
- the rollback action's type patched to 3442 (wixl writes an immediate action);
- what wixl has no attribute for (strict, it aborts on one): wixl reads a copy of the product
  .wxs without `Win64` on the JScript actions and `Secure` on properties (`wix.wixl_input`),
  and the patch adds the 64-bit script bit to their types and swaps the complete list into
  SecureCustomProperties;
- byte-reproducible: the cabinet's file times, the SummaryInformation PackageCode and dates
  rewritten (`SOURCE_DATE_EPOCH`, else a fixed date); the bundle's files keep their real times.
Hosts build in parallel, one wixl per core plus one (`workers`), each host as soon as its files
are written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dcomc.epoch import EpochError, source_date_epoch
from dcomc_targets import msidb
from dcomc_targets.wix import (
    CABINET,
    ROLLBACK_TYPE,
    SECURE_DONOR,
    WIXL_ROLLBACK_TYPES,
    WixlInput,
    product_codes,
    wixl_input,
)

TOOLS = ("wixl",)  # msiinfo (msitools) only reads MSIs back: `dcomc inspect` and the tests
CABINET_FIRST, CABINET_LAST = 315532800, 4354819199  # 1980-01-01 .. 2107-12-31 (DOS dates)
DEFAULT_EPOCH = 946684800  # 2000-01-01T00:00:00Z: fixed, so builds match without SOURCE_DATE_EPOCH
# wixl as strict as it goes: a GLib warning (a row wixl would drop silently) aborts the run
_WIXL_ENV = {**os.environ, "G_DEBUG": "fatal-warnings"}


class MsiError(RuntimeError):
    """wixl failed, or its MSI is not what the patch expects; the message says which."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def build_epoch() -> int:
    """The time the MSIs carry (SummaryInformation dates, cabinet file times); MsiError when
    SOURCE_DATE_EPOCH is malformed or outside what a cabinet can store (1980-2107)."""
    try:
        epoch = source_date_epoch()
    except EpochError as exc:
        raise MsiError(str(exc)) from exc
    if epoch is None:
        return DEFAULT_EPOCH
    if not CABINET_FIRST <= epoch <= CABINET_LAST:
        raise MsiError(f"SOURCE_DATE_EPOCH={epoch} is not between 1980 and 2107, the years an "
                       "MSI's cabinet can store (build with --no-msi, or choose another date)")
    return epoch


def wixl_source(host_dir: Path, host: str) -> WixlInput:
    """The host's product .wxs as wixl 0.101 can read it, and the patches its MSI needs."""
    data = (host_dir / "wix" / f"{host}.wxs").read_bytes()
    with _SOURCES_LOCK:
        found = _SOURCES.pop(data, None)  # the run's copy, for the patch after it
    if found is not None:
        return found
    try:
        found = wixl_input(data)
    except ValueError as exc:
        raise MsiError(f"{host}: {exc}") from exc
    with _SOURCES_LOCK:  # worker threads and the main thread: an eviction iterates the dict
        if len(_SOURCES) >= MAX_SOURCES:
            _SOURCES.pop(next(iter(_SOURCES)), None)
        _SOURCES[data] = found
    return found


# Each product .wxs is read twice, by `run_wixl` (a worker thread) and by `finish` (the main
# thread, after the run): the second takes the first's parse, by the file's bytes, instead of
# parsing it again (a tenth of the Python time of a 200-host build). Bounded: hosts queued
# for wixl while emission goes on may outnumber it; a source not found is parsed again.
MAX_SOURCES = 1024
_SOURCES: dict[bytes, WixlInput] = {}
_SOURCES_LOCK = threading.Lock()


def run_wixl(host_dir: Path, host: str) -> Path:
    """wixl on the host folder's wix/ project (strict, relative sources: it runs in the host
    folder); the product .wxs as `wixl_source` gives it, on wixl's standard input (a temporary
    folder per host cost 2 ms on the VM measured, a tenth of a wixl run); the MSI, unpatched."""
    msi = host_dir / f"{host}.msi"
    source = wixl_source(host_dir, host)
    _wixl(["wixl", "-a", "x64", "-o", msi.name, "/dev/stdin", "wix/DcomConfig.wxs"], host_dir,
          source.data, host)
    return msi


def finish(msi: Path, site: str, host: str, version: str, inputs_sha: str) -> bytes:
    """Patch what wixl cannot write: the rollback action's type, the 64-bit script actions'
    types and SecureCustomProperties (what the host folder's product .wxs says), the
    PackageCode derived from site, host, version and the host's inputs hash (as
    `base.package_inputs` gives it: with the options that change the files), and fixed dates
    in the summary and the cabinet (msidb). Returns the MSI's final bytes."""
    package = product_codes(site, host, version, inputs_sha)["package"]
    return _patch(msi, wixl_source(msi.parent, host), package, host)


@dataclass(frozen=True, slots=True)
class Built:
    path: Path
    sha256: str


def workers() -> int:
    """One wixl per core, plus one: between two runs a worker thread collects the ended wixl
    and starts the next (waiting for the GIL meanwhile), and the extra process keeps the core
    busy in that gap. Measured on 2 cores, 200 hosts: exactly one per core left the cores
    without a wixl 6% of the time and made the build 6% slower. Cores are those this process
    may run on (a container's cpuset), not all the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) + 1
    return (os.cpu_count() or 1) + 1


class Builds:
    """Host MSIs building in parallel (see `workers`), while the caller goes on emitting.

    The worker threads only run wixl, so that a core gets its next wixl as soon as one ends;
    the caller patches the MSIs in `results()`, while the last ones are still building. During
    the build the interpreter hands the GIL over every 0.5 ms instead of 5: a worker whose wixl
    has ended needs it to start the next, and at 5 ms the cores were without a wixl 12-15% of
    the time (measured: 200 hosts, 2 cores). Leaving the block early (an error) cancels what
    has not started and waits for the rest."""

    SWITCH_INTERVAL = 0.0005

    def __init__(self, out: Path, site: str, version: str, inputs_sha: str = "",
                 progress: Callable[[str], None] | None = None) -> None:
        self._out, self._codes = out, (site, version)
        self._inputs: dict[str, str] = {}  # host -> the inputs hash its PackageCode is made of
        self._default = inputs_sha
        self._progress = progress
        self._pool = ThreadPoolExecutor(max_workers=workers())
        self._futures: dict[str, Future[Path]] = {}
        self._interval = sys.getswitchinterval()

    def submit(self, host: str, inputs_sha: str | None = None) -> None:
        """Build `host`'s MSI; its PackageCode from `inputs_sha` (the host's inputs hash),
        else from the one given to the constructor."""
        self._inputs[host] = self._default if inputs_sha is None else inputs_sha
        future = self._pool.submit(run_wixl, self._out / host, host)
        if self._progress is not None:  # from the worker thread: rich's Progress is thread-safe
            future.add_done_callback(lambda done: self._done(host, done))
        self._futures[host] = future

    def _done(self, host: str, future: Future[Path]) -> None:
        if self._progress is not None and not future.cancelled() and future.exception() is None:
            self._progress(host)

    def results(self) -> dict[str, Built]:
        """Every host's MSI, patched, with its hash; raises the first failure (MsiError)."""
        site, version = self._codes
        hosts = {future: host for host, future in self._futures.items()}
        built: dict[str, Built] = {}
        for future in as_completed(hosts):
            host, path = hosts[future], future.result()
            data = finish(path, site, host, version, self._inputs[host])
            built[host] = Built(path, hashlib.sha256(data).hexdigest())
        return {host: built[host] for host in self._futures}

    def __enter__(self) -> Builds:
        sys.setswitchinterval(self.SWITCH_INTERVAL)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            sys.setswitchinterval(self._interval)


def build_site(out: Path, site: str, version: str, spec_sha: str) -> Built:
    """The site package (wixsite.py): wixl run in the bundle folder `out`, whose host folders
    hold the files it carries, then patched as a host's MSI is (`finish`). Sequential, after
    the host MSIs: one wixl run of a few hundred small files. `spec_sha`: the spec's hash as
    `base.package_inputs` gives it (with the options that change the files carried)."""
    from dcomc_targets import wixsite

    wxs, _, target = wixsite.paths(site)
    try:
        source = wixl_input((out / wxs).read_bytes())
    except ValueError as exc:
        raise MsiError(f"site package: {exc}") from exc
    _wixl(["wixl", "-a", "x64", "-o", target, "/dev/stdin"], out, source.data, "site package")
    package = wixsite.site_codes(site, version, spec_sha)["package"]
    return Built(out / target, hashlib.sha256(_patch(out / target, source, package,
                                                     "site package")).hexdigest())


def _wixl(args: list[str], cwd: Path, data: bytes, what: str) -> None:
    """Run wixl (strict) in `cwd` on the product .wxs `data`; MsiError names `what` (the host,
    or the site package) with the end of wixl's complaint."""
    try:
        proc = subprocess.run(args, cwd=cwd, env=_WIXL_ENV, input=data,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    except OSError as exc:  # wixl vanished or cannot run: not the output folder's fault
        raise MsiError(f"{what}: wixl could not start: {exc}") from exc
    if proc.returncode != 0:
        raise MsiError(f"{what}: wixl failed ({proc.returncode}): "
                       f"{proc.stderr.decode(errors='replace').strip()[-2000:]}")


def _patch(msi: Path, source: WixlInput, package: str, what: str) -> bytes:
    """The patches of `finish` for the MSI wixl built from `source`, with PackageCode
    `package`; returns the MSI's final bytes."""
    types = [msidb.ActionType(action, frozenset({old}), new)
             for action, old, new in source.script_types]
    swaps = [] if source.secure is None else [
        msidb.PropertySwap("SecureCustomProperties", SECURE_DONOR, *source.secure)]
    try:
        return msidb.patch(msi, "DcomcApplyRollback", WIXL_ROLLBACK_TYPES, ROLLBACK_TYPE,
                           package, CABINET, build_epoch(), types=types, swaps=swaps)
    except msidb.MsiPatchError as exc:
        raise MsiError(f"{what}: {exc}") from exc


# --- reader ------------------------------------------------------------------------------------


def read_tables(msi: Path, tables: list[str] | None = None) -> dict[str, list[dict[str, str]]]:
    """Tables of an MSI as rows of column → value (msiinfo export; NULL reads as '')."""
    with tempfile.TemporaryDirectory() as tmp:  # stream columns are written into the cwd
        names = tables or _table_names(msi)
        return {name: _export(msi, name, Path(tmp)) for name in names}


# msiinfo reads an MSI in milliseconds; a damaged one must not keep `dcomc inspect` waiting
MSIINFO_SECONDS = 60


def _table_names(msi: Path) -> list[str]:
    out = subprocess.run(["msiinfo", "tables", str(msi)], capture_output=True, text=True,
                         check=True, timeout=MSIINFO_SECONDS).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def _export(msi: Path, table: str, cwd: Path) -> list[dict[str, str]]:
    out = subprocess.run(["msiinfo", "export", str(msi.resolve()), table], cwd=cwd,
                         capture_output=True, check=True,
                         timeout=MSIINFO_SECONDS).stdout.decode("utf-8", "replace")
    lines = out.split("\r\n")
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:] if line]


def summary(msi: Path) -> dict[str, str]:
    out = subprocess.run(["msiinfo", "suminfo", str(msi)], capture_output=True,
                         check=True, timeout=MSIINFO_SECONDS).stdout.decode("utf-8", "replace")
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
