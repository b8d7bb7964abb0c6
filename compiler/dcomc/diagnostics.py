"""Diagnostics: source spans, collected errors, and their one text format.

Every stage reports into a `Diagnostics` collection instead of raising at the first problem, so
that an engineer fixing a spec sees all of its errors at once. A build writes nothing when the
collection holds an error (issue 2 §3).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A place in a source file; line and column are 1-based, as editors count."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    span: Span | None
    severity: Severity
    message: str
    code: str

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity}: {self.message} [{self.code}]"


@dataclass(slots=True)
class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, span: Span | None, code: str, message: str) -> None:
        self._add(Diagnostic(span, Severity.ERROR, message, code))

    def warning(self, span: Span | None, code: str, message: str) -> None:
        self._add(Diagnostic(span, Severity.WARNING, message, code))

    def _add(self, diag: Diagnostic) -> None:
        if diag not in self.items:
            self.items.append(diag)

    def extend(self, other: Diagnostics) -> None:
        for diag in other.items:
            self._add(diag)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Diagnostics in source order (those without a place first), stable otherwise."""
        return sorted(self.items, key=lambda d: (d.span or Span("", 0, 0)))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self.items)


class CompileError(Exception):
    """Raised by a stage when its diagnostics hold errors; carries them all."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
