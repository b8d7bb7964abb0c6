"""Stage 5, emit: every target for every host, written as one bundle — atomically.

All artifacts are produced in memory first; a failure (or a --strict refusal) writes nothing.
The bundle is then written into a temporary folder beside OUT and renamed into place, so an
interrupted build never leaves a half-written bundle, and the previous OUT survives any
failure. A folder that is not a dcomc bundle is never replaced: `-o ~` must not wipe a home.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcomc import __version__, review
from dcomc.diagnostics import CompileError, Diagnostics, Span
from dcomc.pipeline import Compiled
from dcomc_targets import TARGETS, Artifact, EmitContext, Options, msi

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Bundle:
    """The files of a bundle by path relative to OUT, and its manifest."""

    files: dict[str, bytes]
    manifest: dict[str, Any]


def emit(compiled: Compiled, options: Options, spec_name: str) -> Bundle:
    """Run every target on every host; raises CompileError if --strict found something."""
    ctx = EmitContext(compiled.plan, options, spec_name, compiled.sha256)
    files: dict[str, bytes] = {}
    hosts: dict[str, Any] = {}
    for host in compiled.plan.hosts:
        artifacts: list[Artifact] = []
        for target in TARGETS:
            artifacts += target.emit(host, ctx)
        entries = []
        for art in artifacts:
            path = f"{host.name}/{art.path}"
            files[path] = art.data
            entries.append({"kind": art.kind, "path": path,
                            "sha256": hashlib.sha256(art.data).hexdigest()})
        hosts[host.name] = {"address": host.address, "roles": list(host.roles),
                            "artifacts": entries}
    if ctx.diagnostics.has_errors:
        raise CompileError(ctx.diagnostics)
    reports = review.render(review.build_view(compiled.plan, ctx, compiled.findings, files))
    files.update(reports)
    manifest = _manifest(compiled, spec_name, hosts)
    manifest["review"] = [{"kind": "review", "path": name,
                           "sha256": hashlib.sha256(data).hexdigest()}
                          for name, data in sorted(reports.items())]
    files[MANIFEST] = _manifest_bytes(manifest)
    return Bundle(files, manifest)


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()


def _manifest(compiled: Compiled, spec_name: str, hosts: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": 1,
        "dcomc": __version__,
        "site": compiled.plan.site,
        "spec": {"name": spec_name, "sha256": compiled.sha256},
        "hosts": hosts,
    }
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:  # reproducible builds: a timestamp only when the caller fixes it
        manifest["built"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
    return manifest


def default_out(site: str) -> Path:
    return Path("build") / site


def check_out(out: Path) -> Diagnostics:
    """Refuse to replace anything that is not a previous dcomc bundle (or an empty folder)."""
    diags = Diagnostics()
    if out.exists() and not out.is_dir():
        diags.error(Span(str(out), 1, 1), "E402", f"output {out} exists and is not a folder")
    elif out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        diags.error(Span(str(out), 1, 1), "E402", f"output folder {out} is not empty and holds "
                    f"no {MANIFEST}: refusing to replace what dcomc did not write")
    return diags


def write(bundle: Bundle, out: Path, msis: MsiRequest | None = None) -> None:
    """Write the bundle to OUT atomically (temporary folder beside OUT, then rename); with
    `msis`, build every host's MSI inside the temporary folder first."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        folders: set[Path] = set()
        for rel, data in sorted(bundle.files.items()):
            path = tmp / rel
            if path.parent not in folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                folders.add(path.parent)
            path.write_bytes(data)
        if msis is not None:
            _build_msis(bundle, tmp, msis)
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True, slots=True)
class MsiRequest:
    version: str
    progress: Callable[[str], None] | None = None


def _build_msis(bundle: Bundle, tmp: Path, request: MsiRequest) -> None:
    manifest = bundle.manifest
    hosts = list(manifest["hosts"])
    built = msi.build_all(tmp, manifest["site"], hosts, request.version,
                          manifest["spec"]["sha256"], request.progress)
    for host, path in built.items():
        manifest["hosts"][host]["artifacts"].append({
            "kind": "msi", "path": f"{host}/{path.name}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    (tmp / MANIFEST).write_bytes(_manifest_bytes(manifest))


def _swap(tmp: Path, out: Path) -> None:
    if not out.exists():
        tmp.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)  # put the previous bundle back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sweep(out: Path) -> None:
    """Remove leftovers of builds killed between their two renames."""
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.old-*"):
        if out.exists():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.rename(out)  # the previous bundle, left half-swapped: restore it first
