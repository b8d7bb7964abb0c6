"""The error every reader of a foreign file raises: a ValueError that knows where it happened,
so `dcomc inspect` can print `file:line:col: error: message` (one line, exit 2)."""

from __future__ import annotations

from collections.abc import Callable


class ReadError(ValueError):
    """An input a reader cannot read, at 1-based `line` and `col` (0: the whole line)."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        # Callers that do not know the file name still get the position in the text.
        if not self.line:
            return self.message
        return f"line {self.line}, col {max(self.col, 1)}: {self.message}"

    def located(self, path: str) -> str:
        """`path:line:col: error: message`, the compiler's own diagnostic form."""
        if not self.line:
            return f"{path}: error: {self.message}"
        return f"{path}:{self.line}:{max(self.col, 1)}: error: {self.message}"


def decode_windows_text(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of a text file a Windows tool wrote or read — .reg (as `reg import`
    tells the encodings apart) and security templates (secedit writes UTF-16LE with a BOM;
    hand-written ones are often UTF-8 or ANSI)."""
    try:
        if data.startswith(b"\xff\xfe"):
            return data[2:].decode("utf-16-le"), "UTF-16LE with BOM"
        if len(data) >= 4 and data[0] and not data[1] and not data[3]:
            return data.decode("utf-16-le"), "UTF-16LE without BOM"
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-16LE text: {exc.reason} at byte {exc.start}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 with BOM"
        except UnicodeDecodeError as exc:
            raise ReadError(f"not UTF-8 text: {exc.reason} at byte {exc.start + 3}") from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:  # the ANSI code page: cp1252 on the Western European PCs this reader assumes
        return data.decode("cp1252"), "ANSI (cp1252)"
    except UnicodeDecodeError:  # five bytes cp1252 leaves undefined; Windows maps them 1:1
        return data.decode("latin-1"), "ANSI (cp1252)"


def decode_head(data: bytes, size: int, decode: Callable[[bytes], str]) -> str:
    """The text of a file's first `size` bytes, for recognising the file: a cut that falls
    inside a character (a UTF-16 surrogate pair, a UTF-8 sequence) moves back to its start
    instead of failing. A file whose start cannot be decoded at all raises `decode`'s error for
    the whole file."""
    if len(data) <= size:
        return decode(data)
    for cut in range(size, size - 4, -1):
        try:
            return decode(data[:cut])
        except ReadError:
            continue
    return decode(data)
