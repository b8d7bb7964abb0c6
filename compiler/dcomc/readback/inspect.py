"""`dcomc inspect`: read any artifact back into the plan's terms, whatever wrote it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from dcomc.emit.layout import MANIFEST
from dcomc.readback.files import is_folder, load_json, read_regular
from dcomc_targets import TARGETS, msi

OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
MSI_TABLES = ("Property", "File", "CustomAction", "InstallExecuteSequence", "LaunchCondition",
              "Upgrade")


def files_of(paths: list[Path]) -> Iterator[Path]:
    """The files to inspect: each path given, and the regular files under each folder given
    (a FIFO or a device in a folder is skipped; one given by name is refused when read)."""
    for path in paths:
        if is_folder(path):
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def inspect_file(path: Path) -> dict[str, Any]:
    """The artifact's content as JSON-able data; `kind` names what it was recognised as.
    Raises ValueError or InputError with a one-line message for anything it cannot read.
    A file read already under the same name (another hard link to it: a bundle links every
    host's engine to one file) is not read again: its data once per bundle, not per host."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return _inspect_file(path)  # read_regular says why
    key = (path.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if st.st_nlink > 1 and key in _READ:
        return _READ[key]
    result = _inspect_file(path)
    if st.st_nlink > 1:
        if len(_READ) >= MAX_READ:
            del _READ[next(iter(_READ))]
        _READ[key] = result
    return result


MAX_READ = 64  # results kept of files with more than one link (the same few in every host)
_READ: dict[tuple[str, int, int, int, int, int], dict[str, Any]] = {}


def _inspect_file(path: Path) -> dict[str, Any]:
    data = read_regular(path, "the artifact")
    if path.name == MANIFEST:
        manifest = load_json(data, str(path), "a JSON manifest")
        if not isinstance(manifest, dict):
            raise ValueError("not a dcomc manifest (not a JSON object)")
        return {"kind": "manifest", **manifest}
    if data.startswith(OLE_MAGIC):  # an MSI: its tables, read with msitools
        return _inspect_msi(path)
    for target in TARGETS:
        if target.sniff(data, path.name):
            try:
                result: dict[str, Any] = target.inspect(data)
            except etree.LxmlError as exc:  # lxml's errors are not ValueErrors
                raise ValueError(f"not well-formed XML: {' '.join(str(exc).split())}") from None
            return result
    return {"kind": "unknown"}


def _inspect_msi(path: Path) -> dict[str, Any]:
    """ValueError (a clear message, not a traceback) for an MSI msiinfo cannot read: damaged,
    cut short, or no msitools on this machine."""
    try:
        tables = msi.read_tables(path, list(MSI_TABLES))
        return {"kind": "msi", "summary": msi.summary(path), **tables}
    except FileNotFoundError as exc:
        raise ValueError("msiinfo is needed to read an MSI (apt-get install msitools)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ValueError(f"msiinfo did not finish reading this MSI in {exc.timeout:g} s "
                         "(damaged?)") from None
    except subprocess.CalledProcessError as exc:
        said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        reason = (said or "").strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        raise ValueError(f"msiinfo cannot read this MSI (damaged or cut short?): "
                         f"{reason[0][-300:]}") from exc


def render_text(value: Any, indent: int = 0) -> list[str]:
    """A compact, indented text view of inspect data (YAML-like, for people)."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines += render_text(item, indent + 1)
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            sub = render_text(item, indent + 1)
            if sub:
                lines.append(f"{pad}- {sub[0].strip()}")
                lines += sub[1:]
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    return str(value)
