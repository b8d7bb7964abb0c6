"""Stage 5, emit: every target for every host, written as one bundle — atomically.

All artifacts are produced in memory first; a failure (or a --strict or --self-contained
refusal) writes nothing. The bundle is then written into a temporary folder beside OUT and
swapped into place, so an interrupted build never leaves a half-written bundle, and the
previous OUT survives any failure. A folder that is not a dcomc bundle is never replaced: `-o
~` must not wipe a home. A build into a previous bundle takes the hosts whose inputs did not
change from it (reuse.py) as hard links into the temporary folder: the previous bundle's files
are never written to, so it survives a failure as well.

The swap, for a reader of OUT (see `_swap`): on Linux the staged folder and the previous OUT
are exchanged in one step (renameat2 RENAME_EXCHANGE), so OUT is at every moment the complete
old or the complete new bundle, whatever the moment a build is killed. Where the exchange is
not offered (another OS; a file system that refuses it, e.g. some network or FUSE file
systems) the old OUT is renamed aside and the new one renamed in: between those two renames
there is no OUT. A build killed in that window leaves the previous bundle as `.OUT.old-*`
beside it, and the next build of OUT that gets to write puts it back before anything else
(`_sweep`; a build refused before writing, by errors, --strict or --self-contained, leaves it
as it is).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import gc
import glob
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcomc import __version__
from dcomc.diagnostics import CompileError, Diagnostics, Span
from dcomc.emit import forked, reuse, review, sign
from dcomc.emit.layout import MANIFEST as MANIFEST  # bundle.MANIFEST for its callers
from dcomc.epoch import source_date_epoch
from dcomc.pipeline import Compiled
from dcomc.plan.model import HostPlan
from dcomc_targets import TARGETS, EmitContext, Options, msi, wixsite
from dcomc_targets.base import package_inputs

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_STAGING_IDS = itertools.count()  # with the PID: unique staging/old/retired folder names


@dataclass(frozen=True, slots=True)
class Bundle:
    """The files of a bundle by path relative to OUT, and its manifest. From `emit`, every
    file; from `build`, which writes each host's files as they are made, only the reports and
    the manifest (and its signature)."""

    files: dict[str, bytes]
    manifest: dict[str, Any]


def emit(compiled: Compiled, options: Options, spec_name: str) -> Bundle:
    """Run every target on every host, in memory; raises CompileError if --self-contained found
    something."""
    result, ctx = _emit(compiled, options, spec_name, None)
    _add_reports(result, compiled, ctx, msis_built=False)
    result.files[MANIFEST] = _manifest_bytes(result.manifest)
    return result


Land = Callable[[str, dict[str, bytes], bool], dict[str, bytes]]


def _emit(compiled: Compiled, options: Options, spec_name: str, land: Land | None,
          reuser: _Reuser | None = None, *, fork: bool = False) -> tuple[Bundle, EmitContext]:
    """Emit host by host; `land(host, files, ok)` gets each host's files as soon as they exist
    (`ok` is False once an error is known: nothing may be built from them), so that writing
    and MSI building overlap with the emission of the next hosts; it returns the files as
    they are in the bundle (the scripts signed), which the manifest lists. A host that
    `reuser` takes from the previous bundle is not emitted (see reuse.py): its files are
    being linked meanwhile, and the manifest lists them as the previous one did. The manifest
    is left to the caller to serialize (once, when it is complete), and the review reports to
    the caller too: they come last, when the hashes they list (the MSIs' among them) are
    known. `fork`: the caller builds no MSI and signs nothing, so half the hosts may be
    emitted by a forked child (forked.py)."""
    with _collector_paused():
        result, ctx = _emit_all(compiled, options, spec_name, land, reuser, fork)
    if options.site_package:
        _emit_site(result, ctx, land)
    return result, ctx


def _emit_site(result: Bundle, ctx: EmitContext, land: Land | None) -> None:
    """The site package's WiX files (--site-msi), listed in the manifest's `site_package`; its
    MSI is built after the hosts' (`build`), from the files they landed."""
    files = wixsite.emit(ctx.plan, ctx)
    if land is not None:
        files = land(wixsite.FOLDER, files, not ctx.diagnostics.has_errors)
    else:
        result.files.update(files)
    kinds = dict(zip(wixsite.paths(ctx.plan.site), ("wix-site-product", "wix-script"),
                     strict=False))
    result.manifest["site_package"] = [{"kind": kinds[path], "path": path,
                                        "sha256": _sha256(data)}
                                       for path, data in files.items()]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Emission allocates hundreds of thousands of short-lived containers and makes almost no
    reference cycles (1,000 hosts: 8,666 objects, 2 MB): the cyclic collector's passes cost 5%
    of its CPU and free next to nothing. Reference counting still frees everything else."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _emit_all(compiled: Compiled, options: Options, spec_name: str, land: Land | None,
              reuser: _Reuser | None, fork: bool) -> tuple[Bundle, EmitContext]:
    ctx = EmitContext(compiled.plan, options, spec_name, compiled.sha256)
    files: dict[str, bytes] = {}
    plan_hosts = compiled.plan.hosts
    kept = {} if reuser is None else reuser.plan(plan_hosts, ctx)
    fresh = [host for host in plan_hosts if host.name not in kept]
    # `fork`: a text build whose files land on disk; the second half of the hosts in a child
    split = forked.split_point(len(fresh)) if fork and land is not None else len(fresh)
    child = None
    if split < len(fresh):
        seen = len(ctx.diagnostics.items)
        child = forked.Child(lambda: _emitted(fresh[split:], ctx, land, seen))
    if reuser is not None:
        reuser.start()  # the linking child: forked after the emitting one, beside it
    try:
        entries = _emit_hosts(fresh[:split], ctx, land, files)
    except BaseException:
        if child is not None:
            child.cancel()
        raise
    if child is not None:
        theirs, diagnostics = child.join()
        entries.update(theirs)
        ctx.diagnostics.extend(diagnostics)
    if ctx.diagnostics.has_errors:
        raise CompileError(ctx.diagnostics)
    entries.update((h.name, _host_entry(h, ctx, kept[h.name])) for h in plan_hosts
                   if h.name in kept)
    hosts = {h.name: entries[h.name] for h in plan_hosts}  # plan order, whoever emitted them
    return Bundle(files, _manifest(compiled, spec_name, ctx, hosts)), ctx


def _emitted(hosts: Sequence[HostPlan], ctx: EmitContext, land: Land | None,
             seen: int) -> tuple[dict[str, Any], Diagnostics]:
    """The forked child's work: its hosts' manifest entries, and the diagnostics it added."""
    entries = _emit_hosts(hosts, ctx, land, None)
    return entries, Diagnostics(ctx.diagnostics.items[seen:])


def _emit_hosts(hosts: Sequence[HostPlan], ctx: EmitContext, land: Land | None,
                files: dict[str, bytes] | None) -> dict[str, Any]:
    """Each host's manifest entry; its files landed (`land`) or, without, kept in `files`."""
    entries: dict[str, Any] = {}
    digests: dict[bytes, str] = {}  # the engine is the same bytes on every host: hashed once
    for host in hosts:
        own = {f"{host.name}/{art.path}": art for target in TARGETS
               for art in target.emit(host, ctx)}
        data = {path: art.data for path, art in own.items()}
        if land is not None:
            data = land(host.name, data, not ctx.diagnostics.has_errors)
        entries[host.name] = _host_entry(host, ctx, [
            {"kind": art.kind, "path": path, "sha256": _digest(data[path], digests)}
            for path, art in own.items()])
        if land is None and files is not None:  # landed files are on disk: keeping their
            files.update(data)  # bytes made a 10,000-host build hold 5 GB (issue 18)
    return entries


def _host_entry(host: HostPlan, ctx: EmitContext, artifacts: list[dict[str, str]],
                ) -> dict[str, Any]:
    """The manifest's entry of a host: what it was built from (its inputs hash; the options
    are the manifest's), and every file's hash."""
    return {"address": host.address, "roles": list(host.roles),
            "inputs": ctx.inputs_sha256(host), "artifacts": artifacts}


def _add_reports(result: Bundle, compiled: Compiled, ctx: EmitContext, *,
                 msis_built: bool, signer: sign.CertInfo | None = None) -> dict[str, bytes]:
    """Render the review reports from the manifest as it stands (with the MSIs' hashes when
    they were built, the signed files' when signed) and list them in it: the approved
    document pins every other file, and names the signer."""
    listed = {name: entry["artifacts"] for name, entry in result.manifest["hosts"].items()}
    reports = review.render(review.build_view(
        compiled.plan, ctx, compiled.findings, listed, msis_built=msis_built, signer=signer,
        site_package=result.manifest.get("site_package")))
    result.files.update(reports)
    result.manifest["review"] = [{"kind": "review", "path": name, "sha256": _sha256(data)}
                                 for name, data in sorted(reports.items())]
    return reports


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(data: bytes, seen: dict[bytes, str]) -> str:
    if len(data) < 16384:  # small files are cheaper to hash than to look up
        return _sha256(data)
    found = seen.get(data)
    if found is None:
        found = seen[data] = _sha256(data)
    return found


_json_string = json.encoder.encode_basestring  # json's own (C) string escape, without \uXXXX


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """`json.dumps(manifest, indent=2, ensure_ascii=False)` and a newline, byte for byte, in
    a third of the time: json indents with its pure-Python encoder, a generator per level,
    and the manifest is serialized at the end of every build, incremental ones too (10,000
    hosts: 0.55 -> 0.21 s)."""
    out: list[str] = []
    _pretty(manifest, "\n", out)
    out.append("\n")
    return "".join(out).encode()


def _pretty(value: Any, newline: str, out: list[str]) -> None:
    """Append `value` as json.dumps(indent=2) writes it at the indentation `newline` holds."""
    kind = type(value)
    if kind is str:
        out.append(_json_string(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            out.append(separator)
            out.append(_json_string(key))
            out.append(": ")
            if type(item) is str:  # most values: no call
                out.append(_json_string(item))
            else:
                _pretty(item, inner, out)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _pretty(item, inner, out)
            separator = "," + inner
        out.append(newline + "]")
    else:  # numbers, true, false, null: as json writes them (TypeError for anything else)
        out.append(json.dumps(value))


def _manifest(compiled: Compiled, spec_name: str, ctx: EmitContext, hosts: dict[str, Any],
              ) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        **_identity(compiled),
        "spec": {"name": spec_name, "sha256": compiled.sha256},
        "options": ctx.built_from(),
        "hosts": hosts,
    }
    built = _built()
    if built is not None:  # reproducible builds: a timestamp only when the caller fixes it
        manifest["built"] = built
    return manifest


def _identity(compiled: Compiled) -> dict[str, Any]:
    """The manifest's first keys: which bundle format, dcomc and site it is. A previous
    bundle is reused only when they are the same (`_Reuser`), so both take them from here."""
    return {"format": 1, "dcomc": __version__, "site": compiled.plan.site}


def _tools() -> dict[str, str]:
    """The manifest's `tools` of a build with MSIs: another wixl builds other MSI bytes."""
    return {"wixl": reuse.wixl_version()}


def _built() -> str | None:
    """SOURCE_DATE_EPOCH as the manifest's `built` (the MSIs' dates), None when unset."""
    epoch = source_date_epoch()
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def default_out(site: str) -> Path:
    return Path("build") / site


def check_out(out: Path, spec: Path | None = None) -> Diagnostics:
    """Refuse to replace anything that is not a previous dcomc bundle (or an empty folder), or
    a folder that holds the spec itself: a build replaces OUT whole."""
    diags = Diagnostics()
    if out.exists() and not out.is_dir():
        diags.error(Span(str(out), 1, 1), "E402", f"output {out} exists and is not a folder")
    elif out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        diags.error(Span(str(out), 1, 1), "E402", f"output folder {out} is not empty and holds "
                    f"no {MANIFEST}: refusing to replace what dcomc did not write")
    elif spec is not None and out.resolve() in spec.resolve().parents:
        diags.error(Span(str(out), 1, 1), "E402", f"output folder {out} holds the spec {spec}; "
                    "a build replaces the folder whole, the spec with it: move the spec out")
    return diags


def unwritable(out: Path, exc: OSError) -> Diagnostics | None:
    """The error for an output folder the system refuses (permissions, a file in the way, a
    full disk): the build left the previous bundle as it was. None when `exc` is about another
    file (a damaged installation): that one is not the user's output folder's fault."""
    if exc.filename is not None:  # a write that fails (a full disk) names no file
        concerned = Path(os.fsdecode(exc.filename)).resolve()
        folder = out.resolve().parent
        if concerned != folder and folder not in concerned.parents \
                and concerned not in folder.parents:
            return None
    diags = Diagnostics()
    where = f" ({exc.filename})" if exc.filename else ""
    diags.error(Span(str(out), 1, 1), "E403",
                f"cannot write the output folder {out}: {exc.strerror or exc}{where}")
    return diags


def write(bundle: Bundle, out: Path) -> None:
    """Write an in-memory bundle to OUT atomically."""
    with _staging(out) as tmp:
        _write_files(tmp, bundle.files, {})


def build(compiled: Compiled, options: Options, spec_name: str, out: Path,
          msis: MsiRequest | None = None, signer: sign.Signer | None = None, *,
          reuse_hosts: bool = True) -> Bundle:
    """Emit and write the bundle to OUT atomically; with `msis`, each host's MSI is built as
    soon as its files are written, in parallel with the emission of the next hosts (wixl runs
    are most of a build's time). With `signer`, in this order (issue 14): each host's scripts
    are signed before they are written, its MSI is built from the signed files, the MSIs are
    signed, then the reports and the manifest pin the signed bytes and the manifest is signed.
    With `reuse_hosts`, a host whose inputs are those it was built from in the bundle at OUT
    is taken from it, files and MSI, instead of being emitted (`_Reuser`, reuse.py); should a
    file taken prove not to be the one its manifest lists, the build starts again (nothing
    was swapped in) and emits that host. Raises CompileError (nothing written) like `emit`,
    SignError too."""
    redo: frozenset[str] = frozenset()
    while True:  # ends: each round emits at least one more host than the one before
        try:
            return _build(compiled, options, spec_name, out, msis, signer,
                          reuse_hosts=reuse_hosts, redo=redo)
        except reuse.StaleError as exc:
            redo |= exc.hosts


def _build(compiled: Compiled, options: Options, spec_name: str, out: Path,
           msis: MsiRequest | None, signer: sign.Signer | None, *, reuse_hosts: bool,
           redo: frozenset[str]) -> Bundle:
    with _staging(out) as tmp, ExitStack() as stack:
        builds = None if msis is None else stack.enter_context(msi.Builds(
            tmp, compiled.plan.site, msis.version, compiled.sha256, msis.progress))
        reuser = _Reuser(tmp, out, compiled, options, msis, signer, enabled=reuse_hosts,
                         redo=redo)
        stack.callback(reuser.stop)  # before the staging folder is removed on a failure
        links: dict[bytes, str] = {}  # _write_files: a large file written once, linked after

        def land(host: str, files: dict[str, bytes], ok: bool) -> dict[str, bytes]:
            if signer is not None and ok:
                files = signer.sign_scripts(files)
            _write_files(tmp, files, links)
            if builds is not None and ok and host != wixsite.FOLDER:
                builds.submit(host, reuser.packages[host])
            return files

        result, ctx = _emit(compiled, options, spec_name, land, reuser,
                            fork=builds is None and signer is None)
        if builds is not None and msis is not None:
            if reuser.builds_msis:  # MSIs built from reused files: once they are linked
                reuser.settle(builds)
            result.manifest["tools"] = _tools()
            built = {host: {"kind": "msi", "path": f"{host}/{b.path.name}", "sha256": b.sha256}
                     for host, b in _signed_msis(builds.results(), signer).items()}
            for host, entry in (reuser.msis | built).items():
                result.manifest["hosts"][host]["artifacts"].append(entry)
            if options.site_package:
                reuser.settle(None)  # the site package carries every host's files
                _site_msi(tmp, result, compiled, msis.version, signer)
        # the reports after the MSIs: they list the MSIs' hashes (still inside the staging
        # folder, so the swap below puts the whole approved bundle in place at once)
        _finish(tmp, result, compiled, ctx, msis_built=builds is not None, signer=signer)
        reuser.settle(None)  # every reused file linked and checked, before the swap
    return result


class _Reuser:
    """The hosts of an incremental build (issue 18): which host's files are taken from the
    previous bundle at OUT (reuse.py says when that is safe), and what every host's MSI's
    PackageCode is made of.

    A bundle is thousands of small files, and taking one is system calls (a link, an open, a
    read) and a hash, 20 us a file: 0.2 s for 1,000 hosts, more than the rest of a one-host
    rebuild but the compile. So the hosts are planned from the previous manifest first, and
    their files linked and checked by a forked child (forked.py) on the second core while this
    process emits the changed hosts, builds their MSIs and writes the review; `settle` waits
    for it before anything is built from those files, and before the swap. Where no fork runs
    beside (one core, Windows, or signing: the signer's key stays in one process) they are
    linked here, before emission."""

    def __init__(self, tmp: Path, out: Path, compiled: Compiled, options: Options,
                 msis: MsiRequest | None, signer: sign.Signer | None, *, enabled: bool,
                 redo: frozenset[str] = frozenset()) -> None:
        self.tmp, self.progress = tmp, None if msis is None else msis.progress
        self.packages: dict[str, str] = {}  # host -> what its MSI's PackageCode is made of
        self.msis: dict[str, dict[str, str]] = {}  # host -> the manifest entry of a kept MSI
        self.kept: dict[str, reuse.Kept] = {}  # host -> its files to take
        self.redo, self.wants_msis, self.signing = redo, msis is not None, signer is not None
        same = {**_identity(compiled), "options": EmitContext(compiled.plan, options).built_from()}
        msi_same = None if msis is None else {"built": _built(), "tools": _tools()}
        self.previous = reuse.previous(out.resolve(), same, _signing(signer), msi_same,
                                       None if signer is None else signer.leaf) \
            if enabled else None
        self._child: forked.Child | None = None
        self._failed: list[str] = []  # hosts whose files proved unusable (linked here)
        self._settled = False

    def plan(self, hosts: Sequence[HostPlan], ctx: EmitContext,
             ) -> dict[str, list[dict[str, str]]]:
        """Every host's inputs hash; the manifest entries of the hosts to take from the
        previous bundle (`start` links their files), by host."""
        for host in hosts:
            self.packages[host.name] = ctx.package_inputs(host)
            if self.previous is not None and host.name not in self.redo:
                kept = reuse.planned(self.previous, host.name, ctx.inputs_sha256(host),
                                     msi=self.wants_msis)
                if kept is not None:
                    self.kept[host.name] = kept
        for name, kept in self.kept.items():
            if kept.msi is not None:
                self.msis[name] = kept.msi
                if self.progress is not None:
                    self.progress(name)
        return {name: kept.artifacts for name, kept in self.kept.items()}

    @property
    def builds_msis(self) -> bool:
        """Whether hosts taken from the previous bundle get their MSI built (another wixl)."""
        return self.wants_msis and any(k.msi is None for k in self.kept.values())

    def start(self) -> None:
        """Link the kept hosts' files into the staging folder: in a forked child, else now."""
        if not self.kept:
            return
        if forked.usable() and not self.signing:
            self._child = forked.Child(self._link_all)
        else:
            self._failed = self._link_all()

    def _link_all(self) -> list[str]:
        """The kept hosts whose files could not be taken (nothing of theirs left linked)."""
        assert self.previous is not None
        return [name for name, kept in self.kept.items()
                if not reuse.link(self.previous, kept, self.tmp)]

    def settle(self, builds: msi.Builds | None) -> None:
        """Wait until the kept hosts' files are linked and checked; raise StaleError naming
        those that were not as listed (the build starts again and emits them). With `builds`,
        build the MSIs of kept hosts whose MSI could not be taken. Once."""
        if self._settled:
            return
        self._settled = True
        if self._child is not None:
            self._failed = self._child.join()
            self._child = None
        if self._failed:
            raise reuse.StaleError(frozenset(self._failed))
        if builds is not None:
            for name, kept in self.kept.items():
                if kept.msi is None:
                    builds.submit(name, self.packages[name])

    def stop(self) -> None:
        """The build failed or was interrupted: stop the linking child, if any."""
        if self._child is not None:
            self._child.cancel()
            self._child = None


def _signing(signer: sign.Signer | None) -> str | None:
    """What the signatures are made of besides the files (the manifest's `signature.inputs`)."""
    if signer is None:
        return None
    return reuse.signing_inputs(signer.leaf, signer.chain, signer.time,
                                signer.settings.timestamp)


def _site_msi(tmp: Path, result: Bundle, compiled: Compiled, version: str,
              signer: sign.Signer | None) -> None:
    """Build (and sign) the site package's MSI from the hosts' files in `tmp`, and list it."""
    package = package_inputs(compiled.sha256, result.manifest["options"])
    built = _signed_msis({wixsite.FOLDER: msi.build_site(tmp, compiled.plan.site, version,
                                                          package)}, signer)
    path = built[wixsite.FOLDER].path.relative_to(tmp).as_posix()
    result.manifest["site_package"].append(
        {"kind": "msi", "path": path, "sha256": built[wixsite.FOLDER].sha256})


def _signed_msis(built: dict[str, msi.Built], signer: sign.Signer | None,
                 ) -> dict[str, msi.Built]:
    """The MSIs, signed in place when there is a signer (one osslsigncode per core)."""
    if signer is None:
        return built
    signed = signer.sign_files([b.path for b in built.values()], msi.workers())
    return {host: msi.Built(b.path, _sha256(signed[b.path])) for host, b in built.items()}


def _finish(tmp: Path, result: Bundle, compiled: Compiled, ctx: EmitContext, *,
            msis_built: bool, signer: sign.Signer | None) -> None:
    """Write the reports, the manifest and, when signing, its detached signature."""
    info = None if signer is None else signer.info
    _write_files(tmp, _add_reports(result, compiled, ctx, msis_built=msis_built, signer=info))
    if signer is not None:
        result.manifest["signature"] = {"file": sign.SIGNATURE, "subject": signer.info.subject,
                                        "sha256": signer.info.sha256,
                                        "inputs": _signing(signer)}
    result.files[MANIFEST] = _manifest_bytes(result.manifest)
    (tmp / MANIFEST).write_bytes(result.files[MANIFEST])
    if signer is not None:
        result.files[sign.SIGNATURE] = signer.sign_manifest(result.files[MANIFEST])
        (tmp / sign.SIGNATURE).write_bytes(result.files[sign.SIGNATURE])


def sign_existing(folder: Path, compiled: Compiled, signer: sign.Signer) -> Bundle:
    """`dcomc sign`: sign a bundle built earlier (unsigned, untouched, of `compiled`) in the
    order of a signed build, giving the same bytes: the scripts, the MSIs built again from
    them (wixl is reproducible), the MSIs, the reports and the manifest. Atomic like a build.
    Raises sign.SignError when the bundle cannot be signed."""
    manifest = sign_precheck(folder, compiled)
    spec_name = manifest["spec"]["name"]
    ctx = EmitContext(compiled.plan, Options(), spec_name, compiled.sha256)
    hosts = manifest["hosts"]
    with _staging(folder) as tmp:
        files: dict[str, bytes] = {}
        for entry in hosts.values():
            kept = {a["path"]: (folder / a["path"]).read_bytes() for a in entry["artifacts"]
                    if a["kind"] != "msi"}
            files.update(signer.sign_scripts(kept))
        _write_files(tmp, files)
        msis = [host for host, entry in hosts.items()
                if any(a["kind"] == "msi" for a in entry["artifacts"])]
        options = manifest.get("options") or {}
        built = _rebuild_msis(tmp, compiled, msis, signer,
                              {host: package_inputs(str(entry.get("inputs")), options)
                               for host, entry in hosts.items()})
        for entry in hosts.values():
            for a in entry["artifacts"]:
                a["sha256"] = _sha256(files[a["path"]]) if a["kind"] != "msi" else \
                    built[a["path"].partition("/")[0]].sha256
        _resign_site_package(folder, tmp, compiled, manifest, signer)
        result = Bundle(files, manifest)
        _finish(tmp, result, compiled, ctx, msis_built=bool(msis), signer=signer)
    return result


def _resign_site_package(folder: Path, tmp: Path, compiled: Compiled, manifest: dict[str, Any],
                         signer: sign.Signer) -> None:
    """`dcomc sign` of a bundle with a site package: its WiX files as they were (no script),
    its MSI built again from the signed host files in `tmp` (as a signed build does), signed."""
    entries = manifest.get("site_package") or []
    _write_files(tmp, {a["path"]: (folder / a["path"]).read_bytes() for a in entries
                       if a["kind"] != "msi"})
    if not any(a["kind"] == "msi" for a in entries):
        return
    site = compiled.plan.site
    version = _product_version(tmp / wixsite.paths(site)[0])
    package = package_inputs(compiled.sha256, manifest.get("options") or {})
    built = _signed_msis({wixsite.FOLDER: msi.build_site(tmp, site, version, package)},
                         signer)[wixsite.FOLDER]
    for a in entries:
        if a["kind"] == "msi":
            a["sha256"] = built.sha256


def _rebuild_msis(tmp: Path, compiled: Compiled, hosts: list[str], signer: sign.Signer,
                  inputs: dict[str, str]) -> dict[str, msi.Built]:
    if not hosts:
        return {}
    version = _product_version(tmp / hosts[0] / "wix" / f"{hosts[0]}.wxs")
    with msi.Builds(tmp, compiled.plan.site, version) as builds:
        for host in hosts:  # each MSI's PackageCode from its host's inputs (sign_precheck:
            builds.submit(host, inputs[host])  # built by this dcomc, untouched)
        return _signed_msis(builds.results(), signer)


def _product_version(wxs: Path) -> str:
    """The MSIs' ProductVersion, as the build wrote it into the product .wxs (every host's is
    the same): the MSI built again must be the one built before. Read as wixl reads it (the
    WiX target's own reader: no entities, the preprocessor's escapes undone)."""
    from dcomc_targets.wix import WixTarget

    try:
        version = WixTarget().read(wxs.read_bytes()).version
    except ValueError:  # no Product element
        version = ""
    if not version:
        raise sign.SignError("E412", f"{wxs}: no Product Version to build the MSI again with")
    return version


def sign_precheck(folder: Path, compiled: Compiled) -> dict[str, Any]:
    """The manifest of a bundle `dcomc sign` may sign: written by this dcomc from this spec,
    every file as the manifest lists it, not signed yet; SignError (E412) otherwise."""
    from dcomc.readback import manifest as bundle_manifest
    from dcomc.readback.files import InputError

    try:
        listed = bundle_manifest.read_manifest(folder)
        tampered = bundle_manifest.tampered(folder, listed)
    except InputError as exc:
        raise sign.SignError("E412", str(exc)) from None
    manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_bytes())
    if (folder / sign.SIGNATURE).exists() or "signature" in manifest:
        problem = "is signed already (build it again to sign it with another certificate)"
    elif tampered:
        rel, what = tampered[0]
        problem = f"is not as dcomc wrote it: {rel} {what} (build it again)"
    elif manifest.get("dcomc") != __version__:
        problem = (f"was built by dcomc {manifest.get('dcomc')}, this is {__version__}: the "
                   "review would differ (build it again, or sign with that version)")
    elif listed.spec_sha256 != compiled.sha256:
        problem = "was built from another spec (its sha256 differs): give the spec it lists"
    else:
        return manifest
    raise sign.SignError("E412", f"{folder}: the bundle {problem}")


@dataclass(frozen=True, slots=True)
class MsiRequest:
    version: str
    progress: Callable[[str], None] | None = None


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside OUT that replaces OUT when the block succeeds (`_swap`) and
    is removed when it fails (or is interrupted): the previous OUT survives any failure. What
    a killed build left is repaired first (`_sweep`). An OUT that is a symbolic link is
    replaced where it points, and stays a link."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        _sweep(out)
        # mkdir, not mkdtemp: the bundle gets the user's usual permissions (umask), not 0700
        tmp = _beside(out, "tmp")
        tmp.mkdir()
        try:
            yield tmp
            _swap(tmp, out)
        except BaseException:
            _remove_tree(tmp)
            raise


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One build of OUT at a time: a second build waits for the first instead of sweeping its
    temporary folder away as a leftover (two CI jobs, a double start). The lock file beside
    OUT is removed while still held; a waiter that then locks the removed file tries again.
    Without fcntl (Windows) or file locks (some network shares) builds are not serialized."""
    if fcntl is None:
        yield
        return
    lock = out.parent / f".{out.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network shares): not serialized
            os.close(fd)
            lock.unlink(missing_ok=True)
            yield
            return
        try:
            if lock.stat().st_ino == os.fstat(fd).st_ino:
                break  # the file is still the lock, not one a finished build removed
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _write_files(root: Path, files: dict[str, bytes],
                 links: dict[bytes, str] | None = None) -> None:
    """`links` (one per staging folder): a large file whose bytes were written already in
    this build is a hard link to the first copy. The engine (200 kB) is the same on every
    host: 10,000 copies were 2 GB to write, a third of a 10,000-host build's writing (issue
    18); a bundle copied elsewhere (USB stick, zip, rsync without -H) has copies again. Where
    the file system has no hard links, or one has too many, a copy is written."""
    folders: set[str] = set()
    for rel, data in files.items():
        folder = rel.rpartition("/")[0]
        if folder not in folders:
            (root / folder).mkdir(parents=True, exist_ok=True)  # mkdir first, parents if need be
            folders.add(folder)
        path = f"{root}/{rel}"
        if links is None or len(data) < LINK_MIN or not _linked(links, data, path):
            _write_file(path, data)


LINK_MIN, MAX_LINKED = 65536, 64  # files this large; the first so many distinct contents


def _linked(links: dict[bytes, str], data: bytes, path: str) -> bool:
    """Link `path` to the first file of these bytes; False (and `path` the first file, to be
    written) if there is none yet or it cannot be linked to."""
    first = links.get(data)
    if first is not None:
        try:
            os.link(first, path)
            return True
        except OSError:  # no hard links here, or too many to that file: a copy, linked to next
            pass
    if first is not None or len(links) < MAX_LINKED:
        links[data] = path
    return False


def _write_file(path: str, data: bytes) -> None:
    """One new file, by plain system calls (a bundle is thousands of small files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _swap(tmp: Path, out: Path) -> None:
    """Put the staged bundle `tmp` at OUT and remove the previous one.

    The names beside OUT tell the next build (`_sweep`) what a killed build left:
    `.OUT.tmp-*` is never the bundle at OUT (a staged bundle that was not swapped in, or the
    previous bundle after an exchange), `.OUT.old-*` is always a complete previous bundle (it
    exists only while OUT is missing, unless the swap got past its second rename), and
    `.OUT.del-*` is a tree being removed (never restored: it may be half gone)."""
    _reached("staged")
    if not out.exists():
        tmp.rename(out)  # one rename: atomic
        _reached("renamed")
        return
    if _exchange(tmp, out):  # one step: a reader sees the old or the new bundle, nothing else
        _reached("exchanged")  # tmp holds the previous bundle now
        _remove_tree(tmp)
        return
    # The fallback: between the two renames there is no OUT (a documented window; the next
    # build repairs it, see _sweep).
    old = _beside(out, "old")
    try:
        out.rename(old)
        _reached("moved-aside")
        tmp.rename(out)
    except BaseException:
        if not out.exists() and old.is_dir():
            old.rename(out)  # put the previous bundle back
        raise
    _reached("swapped")
    gone = _retire(old, out)
    _reached("retired")
    _remove_tree(gone)


def _remove_tree(tree: Path) -> None:
    """Remove a folder beside OUT that is no bundle any more, as far as it can be (what is
    left is swept by the next build). A bundle is a folder per host of five folders of a file
    or two: its names are the cost, and this walk makes no system call per name but the one
    that removes it (shutil.rmtree stats and opens more: 0.11 vs 0.08 s for 1,000 hosts).
    Each folder is opened relative to its parent's descriptor, never following a link: a
    link in the tree is removed, not what it points to."""
    try:
        top = os.open(tree, _FOLDER)
    except OSError:
        shutil.rmtree(tree, ignore_errors=True)  # not a folder (gone, a link): as before
        return
    try:
        _empty(top)
    except OSError:
        pass
    finally:
        os.close(top)
    try:
        tree.rmdir()
    except OSError:
        shutil.rmtree(tree, ignore_errors=True)  # something it could not remove: try again


_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)


def _empty(folder: int) -> None:
    """Remove everything in the open folder `folder` (its files first, then each folder)."""
    folders = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=folder)
    for name in folders:
        inner = os.open(name, _FOLDER, dir_fd=folder)
        try:
            _empty(inner)
        finally:
            os.close(inner)
        os.rmdir(name, dir_fd=folder)


def _reached(step: str) -> None:
    """A point inside the swap. Does nothing; tests replace it, in a build process they then
    kill there, to check what a reader of OUT sees at each step and after the kill."""


def _beside(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{next(_STAGING_IDS)}"


def _retire(tree: Path, out: Path) -> Path:
    """Rename a tree beside OUT that is no longer a bundle to `.OUT.del-*`, for deletion: a
    deletion cut short leaves a `del` folder, never a half-deleted `old` one that a later
    repair could take for the previous bundle."""
    gone = _beside(out, "del")
    try:
        tree.rename(gone)
    except OSError:
        return tree
    return gone


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
# The answers of a kernel or file system that does not offer the exchange (nothing changed):
# ENOSYS (a kernel before 3.15, some seccomp sandboxes), EINVAL (a file system without
# RENAME_EXCHANGE: NFS, CIFS, most FUSE file systems, overlayfs on some kernels), ENOTSUP.
_NO_EXCHANGE = frozenset({errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})


@functools.cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """libc's renameat2 (glibc 2.28+), or None where there is none (another OS, an older or
    another libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Exchange two existing folders in one step; False (and nothing changed) where the
    system or the file system does not offer it."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _sweep(out: Path) -> None:
    """Repair what a killed build left beside OUT (run under the lock, before staging).

    OUT missing and a `.OUT.old-*` there means a build was killed inside the fallback
    swap's window: after renaming the previous bundle aside, before renaming its own in. Its
    staged folder is probably complete, but the previous bundle is restored, not the staged
    one: that build never reported success (its user saw it fail, and a failed build leaves
    the previous bundle as it was); nothing marks a staged folder as finished, whereas the
    `old` name is only ever given to a complete bundle (see `_retire`); and the staged files
    were never synced to disk, the previous bundle's had a whole build's time to be written
    back. The build running now replaces the restored bundle moments later anyway.
    Everything else beside OUT (staged folders, the previous bundle left by a killed
    exchange, trees being deleted) is not the bundle at OUT and is deleted."""
    prefix = glob.escape(f".{out.name}.")  # -o may name a folder `line[3]`
    if not out.exists():
        olds = sorted(out.parent.glob(f"{prefix}old-*"),
                      key=lambda p: p.lstat().st_ctime_ns)  # ctime: when renamed aside
        olds = [p for p in olds if p.is_dir() and not p.is_symlink()]
        if olds:
            olds[-1].rename(out)  # the previous bundle, left half-swapped: restore it
    for kind in ("tmp", "old", "del"):
        for stale in out.parent.glob(f"{prefix}{kind}-*"):
            _remove_tree(_retire(stale, out) if kind == "old" else stale)
