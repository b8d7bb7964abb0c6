"""Reading untrusted inputs (bundles, reports, captures, artifacts) safely: regular files only,
inside the folder they belong to, within size limits, and JSON within depth limits (issue 17).
Anything else is an InputError: one line and exit 2. `diff`, `drift`, `inspect`, `verify` and
`import` all read through here."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class InputError(Exception):
    """An input that is not what the command expects (exit 2); `position` (line, column) where
    JSON's parser stopped, for a document that is not JSON."""

    def __init__(self, message: str, position: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.position = position


# --- reading inputs: regular files only, inside the bundle, JSON within limits ---------------

MAX_BYTES = 64 * 1024 * 1024  # no artifact, manifest or report dcomc reads is near this
MAX_DEPTH = 64  # JSON nested deeper is refused (dcomc's manifests and reports nest 5 deep)


def reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _not_regular(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular file, else None."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class Within:
    """A folder files are read from, its real path and its subfolders' resolved once: a bundle
    is thousands of files in a few folders per host, and resolving every file's path from the
    root (os.path.realpath: a system call per part) was most of `verify`'s and `diff`'s time
    reading a bundle (issue 18)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._folders: dict[Path, Path] = {}

    def real(self, path: Path) -> tuple[Path, int]:
        """`path`'s real path (strict: OSError when missing) and its mode, links followed."""
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = Path(os.path.realpath(path.parent,
                                                                        strict=True))
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):  # a link: wherever it leads, checked as such
            real = Path(os.path.realpath(path, strict=True))
            return real, real.stat().st_mode
        return folder / path.name, mode


def require_regular(path: Path, what: str, inside: Path | Within | None = None) -> Path:
    """The real path (symlinks resolved) of `path` if it is a regular file, and, with `inside`,
    if it lies in that folder; otherwise InputError. Checked before anything is opened: opening
    a FIFO waits for a writer, and a device may never end."""
    within = inside if isinstance(inside, Within) else None
    try:
        if within is not None:
            real, mode = within.real(path)
        else:
            real = Path(os.path.realpath(path, strict=True))
            mode = real.stat().st_mode
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read {what}: {reason(exc)}") from None
    if inside is not None:
        root = inside.root if isinstance(inside, Within) else Path(os.path.realpath(inside))
        if not real.is_relative_to(root):
            raise InputError(f"{path}: {what} leads outside the bundle (to {real}); refused")
    kind = _not_regular(mode)
    if kind is not None:
        raise InputError(f"{path}: {what} is {kind}, not a regular file")
    return real


@contextmanager
def open_regular(path: Path, what: str, inside: Path | Within | None = None,
                 ) -> Iterator[IO[bytes]]:
    """`path` opened for reading after require_regular, without blocking or following a link
    that appeared since (and checked again once open)."""
    real = require_regular(path, what, inside)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {reason(exc)}") from None
    with os.fdopen(fd, "rb") as stream:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"{path}: {what} is {kind}, not a regular file")
        yield stream


def read_regular(path: Path, what: str, inside: Path | Within | None = None,
                 limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file (see require_regular), at most `limit` of them."""
    with open_regular(path, what, inside) as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{path}: cannot read {what}: {reason(exc)}") from None
    if len(data) > limit:
        raise InputError(f"{path}: {what} is larger than {limit // 2**20} MiB; refused")
    return data


def decode_text(raw: bytes) -> str:
    """Text as Windows tools write it: UTF-16 with its BOM, else UTF-8 (BOM or not);
    UnicodeDecodeError otherwise."""
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding)
    return raw.decode("utf-8-sig")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > 40:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def load_json(raw: bytes, where: str, what: str = "JSON") -> Any:
    """A JSON document (UTF-8 or UTF-16 with BOM) within limits: InputError `where: not
    what (reason)` for bad text, NaN, Infinity, numbers out of range, and nesting deeper than
    MAX_DEPTH."""
    try:
        data = json.loads(decode_text(raw), parse_constant=_no_constant, parse_int=_json_int,
                          parse_float=_json_float)
    except RecursionError:
        data = None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        position = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else None
        raise InputError(f"{where}: not {what} ({exc})", position) from None
    else:
        if _depth_within(data, MAX_DEPTH):
            return data
    raise InputError(f"{where}: not {what} (nested deeper than {MAX_DEPTH} levels)")


def _depth_within(value: Any, limit: int) -> bool:
    """Whether lists and objects nest at most `limit` deep (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                return False
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return True


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def is_folder(path: Path) -> bool:
    """Whether `path` is a folder; a name the system refuses (too long: ENAMETOOLONG) is not
    one, so it is read as a file and refused with one line rather than a traceback."""
    return os.path.isdir(path)  # noqa: PTH112 (unlike Path.is_dir, False for every OSError)
