"""A bundle's manifest.json: its shape checked, the paths it names kept inside the bundle, and
the files that differ from it (edited, missing, unlisted). Read by `diff`, `verify` and
`sign`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dcomc.emit.layout import MANIFEST
from dcomc.emit.sign import SIGNATURE
from dcomc.readback.files import (
    InputError,
    Within,
    json_type,
    load_json,
    open_regular,
    read_regular,
    reason,
)

PSD1_KIND = "powershell-data"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A bundle's manifest.json, checked for shape: what `diff` reads of it."""

    path: Path
    site: str
    spec_name: str | None
    spec_sha256: str | None
    version: str | None
    psd1: dict[str, str]  # host -> path of its data file, relative to the bundle
    listed: dict[str, str]  # path relative to the bundle -> sha256, every file listed


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the bundle `folder`; InputError when it is not a regular file of the
    bundle, not JSON, or not shaped as dcomc writes it."""
    path = folder / MANIFEST
    data = load_json(read_regular(path, "the manifest", inside=folder), str(path),
                     "a dcomc manifest")

    def refuse(where: str, value: Any, expected: str) -> InputError:
        return InputError(f"{path}: not a dcomc manifest: {where} is {json_type(value)}, "
                          f"not {expected}")

    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise InputError(f"{path}: not a dcomc manifest (no `hosts` object)")

    def text(holder: dict[str, Any], key: str, where: str) -> str | None:
        value = holder.get(key)
        if value is not None and not isinstance(value, str):
            raise refuse(where, value, "a string")
        return value

    spec = data.get("spec", {})
    if not isinstance(spec, dict):
        raise refuse("`spec`", spec, "an object")
    listed: dict[str, str] = {}
    psd1: dict[str, str] = {}

    def artifacts(holder: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        items = holder.get(key, [])
        if not isinstance(items, list):
            raise refuse(where, items, "a list")
        for index, art in enumerate(items):
            at = f"{where}[{index}]"
            if not isinstance(art, dict):
                raise refuse(at, art, "an object")
            rel = text(art, "path", f"{at}.path")
            if not rel:
                raise InputError(f"{path}: not a dcomc manifest: {at} has no `path`")
            text(art, "kind", f"{at}.kind")
            listed[rel] = text(art, "sha256", f"{at}.sha256") or ""
        return items

    for name, entry in data["hosts"].items():
        where = f"`hosts.{name}`"
        if not isinstance(entry, dict):
            raise refuse(where, entry, "an object")
        found = [a["path"] for a in artifacts(entry, "artifacts", f"{where}.artifacts")
                 if a.get("kind") == PSD1_KIND]
        psd1[name] = found[0] if found else f"{name}/powershell/{name}.psd1"
    artifacts(data, "review", "`review`")
    artifacts(data, "site_package", "`site_package`")  # --site-msi: its .wxs, script and MSI
    return Manifest(path, text(data, "site", "`site`") or "", text(spec, "name", "`spec.name`"),
                    text(spec, "sha256", "`spec.sha256`"), text(data, "dcomc", "`dcomc`"),
                    psd1, listed)


def bundle_path(folder: Path, rel: str, manifest: Path) -> Path:
    """`folder / rel` for a path the manifest names, refused unless it is a plain relative
    path inside the bundle: no absolute path, drive, `..`, backslash or empty part."""
    parts = rel.split("/")
    if not rel or any(c in rel for c in "\\:\x00") or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{manifest}: the manifest names {rel!r}, which is not a path inside "
                         "the bundle (absolute, a drive, '..' or a backslash); refused")
    return folder / rel


def tampered(folder: Path, manifest: Manifest) -> tuple[tuple[str, str], ...]:
    """Files that differ from the manifest: edited (another sha256), missing, or unlisted.
    A listed path outside the bundle, or that is not a regular file there, is an InputError.
    A file linked into every host's folder (the engine: one inode) is hashed once."""
    found: list[tuple[str, str]] = []
    within = Within(folder)
    digests: dict[tuple[int, int, int, int], str] = {}  # by inode, size and time
    for rel, digest in sorted(manifest.listed.items()):
        path = bundle_path(folder, rel, manifest.path)
        # nothing, a link to nothing, or a name too long (Path.exists raises ENAMETOOLONG)
        if not os.path.exists(path):  # noqa: PTH110
            found.append((rel, "missing"))
            continue
        with open_regular(path, "a file the manifest lists", inside=within) as stream:
            info = os.fstat(stream.fileno())
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            actual = digests.get(key)
            if actual is None:
                actual = digests[key] = _sha256(stream, path)
        if actual != digest:
            found.append((rel, "edited"))
    own = {MANIFEST, SIGNATURE}  # the manifest and its signature list the others
    found += [(rel, "unlisted") for rel in sorted(_files(folder) - set(manifest.listed) - own)]
    return tuple(found)


def _sha256(stream: IO[bytes], path: Path) -> str:
    sha = hashlib.sha256()
    try:
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read a file the manifest lists: "
                         f"{reason(exc)}") from None
    return sha.hexdigest()


def _files(folder: Path) -> set[str]:
    """Every file under `folder` (links to files too), as paths relative to it: one listing per
    folder, a file's kind from the listing (no stat but for links)."""
    found: set[str] = set()
    pending = [("", str(folder))]
    try:
        while pending:
            prefix, path = pending.pop()
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((f"{prefix}{entry.name}/", entry.path))
                    elif entry.is_file() or entry.is_dir():  # a link to a folder: listed
                        found.add(prefix + entry.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the bundle: {reason(exc)}") from None
    return found
