"""The error every reader of a foreign file raises: a ValueError that knows where it happened,
so `dcomc inspect` can print `file:line:col: error: message` (one line, exit 2)."""

from __future__ import annotations


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
