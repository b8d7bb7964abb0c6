"""MSI per host: built from the WiX project with wixl, patched with msibuild, read back with
msiinfo (msitools). See wixl-notes for every workaround below.

- strict: `G_DEBUG=fatal-warnings` turns wixl's silently dropped rows into a failure;
- relative `Source` paths, wixl run with `cwd` = the host folder;
- the rollback action's type patched to 3442 (wixl writes an immediate action);
- byte-reproducible: payload mtimes fixed, SummaryInformation PackageCode and dates rewritten
  (`SOURCE_DATE_EPOCH`, else a fixed date), `TZ=UTC` (msibuild reads times as local time).
Hosts build in parallel, one wixl process per core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dcomc_targets.wix import ROLLBACK_TYPE, payload_files, product_codes

TOOLS = ("wixl", "msibuild", "msidump", "msiinfo")
DEFAULT_EPOCH = 946684800  # 2000-01-01T00:00:00Z: fixed, so builds match without SOURCE_DATE_EPOCH
INSTALL_HINT = "wixl not found: MSIs skipped (apt-get install wixl msitools)"


class MsiError(RuntimeError):
    """wixl or msitools failed; the message carries the tool's own output."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def build_epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "G_DEBUG": "fatal-warnings", "TZ": "UTC"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MsiError(f"{' '.join(args[:3])} failed ({proc.returncode}): "
                       f"{(proc.stderr or proc.stdout).strip()[-2000:]}")


def build_host(host_dir: Path, site: str, host: str, version: str, spec_sha: str) -> Path:
    """Build `<host_dir>/<host>.msi` from the host folder's wix/ project; returns its path."""
    epoch = build_epoch()
    payload = [host_dir / f.source for f in payload_files(host)]
    for path in [*payload, *sorted((host_dir / "wix").iterdir())]:
        os.utime(path, (epoch, epoch))  # the cab stores payload times
    msi = f"{host}.msi"
    _run(["wixl", "-a", "x64", "-o", msi, f"wix/{host}.wxs", "wix/DcomConfig.wxs"], host_dir)
    package = product_codes(site, host, version, spec_sha)["package"]
    _patch(host_dir / msi, package, epoch)
    return host_dir / msi


def _patch(msi: Path, package: str, epoch: int) -> None:
    """One msibuild call: the rollback action's type, then the SummaryInformation properties
    wixl makes random or time-dependent (PackageCode, created, last saved); msibuild merges
    the given properties into the stream and keeps the others."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(epoch))
    rows = [("9", package), ("12", stamp), ("13", stamp)]
    idt = "PropertyId\tValue\r\ni2\tl255\r\n_SummaryInformation\tPropertyId\r\n" + "".join(
        f"{pid}\t{value}\r\n" for pid, value in rows)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "_SummaryInformation.idt").write_bytes(idt.encode("ascii"))
        _run(["msibuild", str(msi.resolve()),
              "-q", f"UPDATE `CustomAction` SET `Type`={ROLLBACK_TYPE} "
                    "WHERE `Action`='DcomcApplyRollback'",
              "-i", "_SummaryInformation.idt"], Path(tmp))


def build_all(out: Path, site: str, hosts: list[str], version: str, spec_sha: str,
              progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Build every host's MSI in parallel (one wixl per core); raises MsiError on a failure."""
    workers = max(1, os.cpu_count() or 1)
    results: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(build_host, out / h, site, h, version, spec_sha): h for h in hosts}
        for future, host in futures.items():
            results[host] = future.result()
            if progress:
                progress(host)
    return results


# --- reader ------------------------------------------------------------------------------------


def read_tables(msi: Path, tables: list[str] | None = None) -> dict[str, list[dict[str, str]]]:
    """Tables of an MSI as rows of column → value (msiinfo export; NULL reads as '')."""
    with tempfile.TemporaryDirectory() as tmp:  # stream columns are written into the cwd
        names = tables or _table_names(msi)
        return {name: _export(msi, name, Path(tmp)) for name in names}


def _table_names(msi: Path) -> list[str]:
    out = subprocess.run(["msiinfo", "tables", str(msi)], capture_output=True, text=True,
                         check=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def _export(msi: Path, table: str, cwd: Path) -> list[dict[str, str]]:
    out = subprocess.run(["msiinfo", "export", str(msi.resolve()), table], cwd=cwd,
                         capture_output=True, check=True).stdout.decode("utf-8", "replace")
    lines = out.split("\r\n")
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:] if line]


def summary(msi: Path) -> dict[str, str]:
    out = subprocess.run(["msiinfo", "suminfo", str(msi)], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
