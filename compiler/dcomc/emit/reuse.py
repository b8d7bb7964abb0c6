"""Incremental builds (issue 18): a build into an existing bundle takes the files of every host
whose inputs did not change from the previous bundle at OUT instead of emitting them (and
building their MSI) again. The result is the bundle a full build gives, byte for byte.

A host's files are reused when the previous bundle was written by this dcomc for the same site
with the same options and signing (`Previous`), its manifest records the same inputs hash for
the host (`EmitContext.inputs_sha256`: the host's plan, the spec's file name, dcomc and its
templates, nothing of the other hosts), and every file it lists for the host is still, byte for
byte, what it says: each is linked (or copied) into the staging folder and checked there
(hashed, or compared with the bytes of a file that had the same hash). The host's MSI is reused
too when the previous MSIs were built with the same wixl and the same date (`built`, from
SOURCE_DATE_EPOCH). Anything else (no manifest, another dcomc, a file edited, missing or not a
regular file, a path outside the host's folder) and the host is emitted again.

A signed bundle's files are reused only by a build signed the same way (certificate, chain,
time, timestamp server: the manifest's `signature.inputs`), and only when its manifest still
holds with its signature by that certificate: no one without the key changed a file together
with the hash the manifest lists for it. An unsigned manifest is trusted as `dcomc verify`
would trust it without a signature: a file changed together with its listed hash is taken as it
is. What this cannot see either: dcomc's own code changed without its version (a development
checkout). `dcomc build --no-reuse`, or a build into an empty folder, emits every host.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcomc.emit.layout import MANIFEST

_MIN_SEEN, _MAX_SEEN = 16384, 64 << 20
# link() the link itself where the system can say so (Linux; Windows cannot)
_NO_FOLLOW: dict[str, Any] = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks \
    else {}
_MAX_MANIFEST = 1 << 30  # 10,000 hosts: about 22 MB


@dataclass(frozen=True, slots=True)
class Previous:
    """The bundle at OUT before this build, as far as this build may reuse it."""

    folder: Path
    hosts: dict[str, Any]  # its manifest's host entries, by host name
    msis: bool  # its MSIs were built as this build builds them (same wixl, same date)
    repeated: frozenset[str] = frozenset()  # hashes of more than one listed file
    # the bytes of large files checked already, by sha256: the engine is the same 200 kB on
    # every host, and comparing bytes costs a fraction of hashing them (issue 18)
    seen: dict[str, bytes] = field(default_factory=dict)
    # files checked already, by inode: a build links a large file's copies to its first one
    # (the engine of every host is one file), which is then read once
    checked: dict[tuple[int, int], tuple[str, int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Kept:
    """A host's files to take from the previous bundle (`planned`): their manifest entries,
    the MSI's apart (None: the MSI is to be built), as the previous manifest lists them. They
    are the host's only once `link` has linked and checked them."""

    host: str
    artifacts: list[dict[str, str]]
    msi: dict[str, str] | None


def previous(out: Path, same: dict[str, Any], signing: str | None,
             msi_same: dict[str, Any] | None, signer: bytes | None = None) -> Previous | None:
    """The bundle at `out` if its manifest has every key of `same` with the same value (the
    format, dcomc, site, options) and was signed with the same `signing` (None: unsigned), its
    manifest's signature holding and made by `signer` (the certificate, PEM); its MSIs
    reusable when it also has those of `msi_same` (None: no MSIs wanted). None when there is
    nothing to reuse."""
    try:
        text = _read_regular(out / MANIFEST)
        data = json.loads(text)
    except (OSError, ValueError, RecursionError):  # no bundle yet, or not a dcomc manifest
        return None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        return None
    if any(data.get(key) != value for key, value in same.items()):
        return None
    signature = data.get("signature")
    if (signature.get("inputs") if isinstance(signature, dict) else signature) != signing:
        return None  # signed files are reused only from a bundle signed the same way
    if signer is not None and not _signed_by(out, text, signer):
        return None  # a signed bundle's files are reused only as its signer listed them
    msis = msi_same is not None and all(data.get(k) == v for k, v in msi_same.items())
    return Previous(out, data["hosts"], msis, _repeated(data["hosts"]))


def _repeated(hosts: dict[str, Any]) -> frozenset[str]:
    """The hashes the manifest lists for more than one file (the engine, the entry point): the
    only bytes worth keeping to compare the next copy with. An MSI is one host's own."""
    counts = Counter(art.get("sha256") for entry in hosts.values() if isinstance(entry, dict)
                     and isinstance(entry.get("artifacts"), list)
                     for art in entry["artifacts"] if isinstance(art, dict))
    return frozenset(sha for sha, n in counts.items() if n > 1 and isinstance(sha, str))


def _signed_by(out: Path, manifest: bytes, signer: bytes) -> bool:
    """Whether `manifest` (the bytes read) holds with the bundle's detached signature, made by
    the certificate `signer`: then no file it lists was changed with it but by the key's
    holder (openssl, as `dcomc verify` checks it; the chain is the signer's own)."""
    from dcomc.emit.sign import SIGNATURE, split_pem

    try:
        p7s = _read_regular(out / SIGNATURE)
    except OSError:
        return False
    with tempfile.TemporaryDirectory(prefix="dcomc-reuse-") as work:
        folder = Path(work)
        (folder / "m").write_bytes(manifest)
        (folder / "s").write_bytes(p7s)
        try:
            proc = subprocess.run(
                ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
                 "-in", str(folder / "s"), "-content", str(folder / "m"),
                 "-signer", str(folder / "c"), "-out", os.devnull],
                capture_output=True, check=False, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return False
        found = split_pem((folder / "c").read_bytes()) if (folder / "c").is_file() else []
    return proc.returncode == 0 and bool(found) and _der(found[0]) == _der(signer)


def _der(pem: bytes) -> bytes:
    """A PEM certificate's DER bytes (however its base64 is wrapped); b"" when it is not."""
    body = b"".join(word for word in pem.split() if b"-----" not in word)  # no armour lines
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        return b""


def _read_regular(path: Path) -> bytes:
    """A regular file's bytes (OSError for anything else: a link, a FIFO that would block the
    build, a device, a file too large to be a manifest)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MANIFEST:
            raise OSError(f"{path}: not a regular file of a bundle")
        with os.fdopen(os.dup(fd), "rb") as stream:
            return stream.read()
    finally:
        os.close(fd)


def planned(prev: Previous, host: str, inputs: str, *, msi: bool) -> Kept | None:
    """What the previous bundle offers for `host` (its MSI too, with `msi`, when reusable),
    from its manifest alone: None when the host must be emitted again (other inputs, an entry
    dcomc does not write). Nothing is read or linked yet: see `link`."""
    entry = prev.hosts.get(host)
    if not isinstance(entry, dict) or entry.get("inputs") != inputs:
        return None
    listed = entry.get("artifacts")
    if not isinstance(listed, list) or not all(_plain(a, host) for a in listed):
        return None
    texts = [{"kind": a["kind"], "path": a["path"], "sha256": a["sha256"]} for a in listed
             if a["kind"] != "msi"]
    msis = [{"kind": "msi", "path": a["path"], "sha256": a["sha256"]} for a in listed
            if a["kind"] == "msi"]
    take_msi = msi and prev.msis and [a["path"] for a in msis] == [f"{host}/{host}.msi"]
    return Kept(host, texts, msis[0] if take_msi else None)


def link(prev: Previous, kept: Kept, tmp: Path) -> bool:
    """Link `kept`'s files from the previous bundle into `tmp`, each checked there against the
    hash the previous manifest lists; False (and nothing left in `tmp`) when one is not that
    file: the host must be emitted again. A build runs it in a forked child while it emits
    the changed hosts (bundle.py `_Reuser`): nothing it does is needed back but the answer."""
    linked: list[str] = []
    folders = {_folder(f"{tmp}/{kept.host}")}  # first: its subfolders are then one mkdir each
    try:
        for art in kept.artifacts + ([] if kept.msi is None else [kept.msi]):
            target = f"{tmp}/{art['path']}"
            _link(f"{prev.folder}/{art['path']}", target, folders)
            linked.append(target)
            if not _holds(target, art["sha256"], prev):
                raise _UnusableError
    except (_UnusableError, OSError):
        for path in linked:  # the host is written again: no link to the old bundle may stay
            os.unlink(path)  # noqa: PTH108 (writing it would write into the old file)
        return False
    return True


class StaleError(Exception):
    """Files of hosts taken from the previous bundle were not those its manifest lists (found
    once linked): the build is to start again and emit these hosts."""

    def __init__(self, hosts: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(hosts)))
        self.hosts = hosts


class _UnusableError(Exception):
    """A previous file is not the one its manifest lists."""


# After the host's name: one or more path parts, none empty, `.` or `..`, and no backslash,
# colon or NUL (what `manifest.bundle_path` refuses too).
_INSIDE = re.compile(r"(?:/(?!\.\.?(?:/|$))[^/\\:\x00]+)+")


def _plain(art: Any, host: str) -> bool:
    """An artifact entry as dcomc writes it, naming a plain path inside the host's folder."""
    return (isinstance(art, dict) and type(art.get("kind")) is str
            and type(art.get("sha256")) is str and type(path := art.get("path")) is str
            and path.startswith(host) and _INSIDE.fullmatch(path, len(host)) is not None)


def _folder(path: str) -> str:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)  # noqa: PTH102 (plain strings: a bundle is thousands of small files)
    return path


def _link(source: str, target: str, folders: set[str]) -> None:
    """Hard-link the previous bundle's file `source` as `target` (a copy where the file system
    has no hard links); OSError when it is not there. A link is linked as a link, and `_holds`
    then refuses it. Plain strings and system calls: a bundle is thousands of small files."""
    folder = target.rpartition("/")[0]
    if folder not in folders:
        try:
            os.mkdir(folder)  # noqa: PTH102 (the host's folder is there: `link` made it)
        except FileNotFoundError:  # a path deeper than dcomc writes
            os.makedirs(folder)  # noqa: PTH103
        except FileExistsError:
            pass
        folders.add(folder)
    try:
        os.link(source, target, **_NO_FOLLOW)
    except FileExistsError:
        raise
    except (OSError, NotImplementedError):  # no hard links here (FAT, some network shares)
        if not stat.S_ISREG(os.lstat(source).st_mode):
            raise
        shutil.copyfile(source, target, follow_symlinks=False)


def _holds(path: str, sha256: str, prev: Previous) -> bool:
    """Whether `path` is a regular file (no link followed) with the hash `sha256`: the file
    checked already (another link to it), or its bytes compared with those of a file that had
    the hash (`seen`), else hashed."""
    fd = os.open(path, _READ)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO, a device: not a file of the bundle
            return False
        inode, state = (info.st_dev, info.st_ino), (sha256, info.st_size, info.st_mtime_ns)
        if prev.checked.get(inode) == state:
            return True
        known = prev.seen.get(sha256)
        if info.st_size > _MAX_SEEN:  # not held in memory
            with os.fdopen(os.dup(fd), "rb") as stream:
                good = hashlib.file_digest(stream, "sha256").hexdigest() == sha256
        elif known is not None:
            good = info.st_size == len(known) and _read(fd, info.st_size) == known
        else:
            data = _read(fd, info.st_size)
            good = hashlib.sha256(data).hexdigest() == sha256
            if good and len(data) >= _MIN_SEEN and sha256 in prev.repeated:
                prev.seen[sha256] = data  # not a small file (hashing costs less), nor a unique
                # one (1,000 hosts' MSIs would be held in memory for nothing)
    finally:
        os.close(fd)
    if good and info.st_size >= _MIN_SEEN:
        prev.checked[inode] = state
    return good


_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _read(fd: int, size: int) -> bytes:
    """A file's bytes in one read (a file object costs more than reading a small file): a
    regular file's read stops short only at its end; one byte past `size`, so that a file
    grown since fstat reads longer and matches nothing."""
    return os.read(fd, size + 1)


def signing_inputs(leaf: bytes, chain: bytes, time: int, timestamp: str | None) -> str:
    """What a signed file's signature is made of besides its bytes: the certificate, its
    chain, the signing time and the timestamp server. Two builds with the same may share
    signed files."""
    sha = hashlib.sha256()
    for part in (leaf, chain, str(time).encode(), (timestamp or "").encode()):
        sha.update(len(part).to_bytes(8, "big") + part)
    return sha.hexdigest()


@functools.cache
def wixl_version() -> str:
    """`wixl --version`: another wixl may build other MSI bytes from the same files."""
    try:
        proc = subprocess.run(["wixl", "--version"], capture_output=True, check=False,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.decode(errors="replace").strip()
