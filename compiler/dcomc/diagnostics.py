"""Diagnostics: source spans, collected errors, and their one text format.

Every stage reports into a `Diagnostics` collection instead of raising at the first problem, so
that an engineer fixing a spec sees all of its errors at once. A build writes nothing when the
collection holds an error (issue 2 §3).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# C0 and C1 control characters, the Unicode line and paragraph separators, and the invisible
# format characters (Unicode category Cf: bidirectional overrides and isolates, zero-width
# spaces and joiners, the BOM, tags...). Those render as nothing or reorder the text around
# them, so a name in a reviewed script or report could read as another one ("Trojan Source",
# CVE-2021-42574); a test checks the list against Python's Unicode database.
CONTROL_CHARS = (
    r"\x00-\x1f\x7f-\x9f\u2028\u2029"
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
# Lone surrogates (no UTF-8 or UTF-16 file can hold one) and the 66 noncharacters (U+FFFE,
# U+FFFF... which Unicode reserves for internal use and Windows tools may take for a BOM).
NONCHARACTERS = r"\ud800-\udfff\ufdd0-\ufdef" + "".join(
    rf"\U{plane:04x}fffe\U{plane:04x}ffff" for plane in range(17))
_UNSAFE = re.compile(f"[{CONTROL_CHARS}{NONCHARACTERS}]")
MAX_VALUE = 80  # an echoed value longer than this is cut
MAX_MESSAGE = 500  # a message longer than this (values cut) is cut too
MAX_SHOWN = 200  # diagnostics printed at most; a last line counts the rest


def escaped(text: str) -> str:
    """`text` with every character a terminal or a log would act on, hide or choke on written
    as an escape (`\x1b`, `\u202e`, `\ud800`): shown text is always one visible line."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: _escape(ord(m.group())), text)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def cut(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` cut after `limit` characters, the last three of them `...`."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: str, limit: int = MAX_VALUE) -> str:
    """A value as a diagnostic echoes it: cut after `limit` characters, then escaped."""
    return escaped(cut(value, limit))


# A quoted value in a message longer than MAX_VALUE (every message quotes what it echoes): it
# opens after a space, `(` or the start, and closes before a space, punctuation or the end.
_LONG_QUOTED = re.compile(rf"(?<![^\s(])'([^'\s][^']{{{MAX_VALUE},}})'(?![^\s:;,.)])")


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
        return self.text()

    def text(self, style: Callable[[Severity], str] | None = None) -> str:
        """The one text format, always one line: the file name and the message escaped (a
        newline in either would forge another diagnostic), and long quoted values cut.
        `style` may dress the severity word (colour on a terminal); the rest stays plain."""
        where = f"{escaped(str(self.span))}: " if self.span else ""
        severity = style(self.severity) if style else str(self.severity)
        return f"{where}{severity}: {escaped(self.short_message())} [{self.code}]"

    def short_message(self) -> str:
        """The message with long quoted values cut, and the whole cut after MAX_MESSAGE
        characters: a value echoed without quotes (a list of names, a path) must not make a
        line of megabytes either (not escaped: each format escapes)."""
        if len(self.message) <= MAX_VALUE:
            return self.message
        message = _LONG_QUOTED.sub(lambda m: f"'{m.group(1)[: MAX_VALUE - 3]}...'", self.message)
        return cut(message)

    def json(self) -> dict[str, Any]:
        """The machine-readable form every `--json` output and `check --format json` carry."""
        span = self.span
        return {"file": span.file if span else None, "line": span.line if span else None,
                "col": span.col if span else None, "severity": str(self.severity),
                "code": self.code, "message": self.short_message()}


@dataclass(slots=True)
class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics."""

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[Diagnostic] = field(default_factory=set, repr=False, compare=False)

    def error(self, span: Span | None, code: str, message: str) -> None:
        self._add(Diagnostic(span, Severity.ERROR, message, code))

    def warning(self, span: Span | None, code: str, message: str) -> None:
        self._add(Diagnostic(span, Severity.WARNING, message, code))

    def _add(self, diag: Diagnostic) -> None:
        if diag not in self._seen:  # a set: 20,000 errors must not take 20,000² comparisons
            self._seen.add(diag)
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

    @property
    def error_count(self) -> int:
        return sum(1 for d in self.items if d.severity is Severity.ERROR)

    def lines(self, limit: int = MAX_SHOWN,
              style: Callable[[Severity], str] | None = None) -> list[str]:
        """The diagnostics as printed, in source order: at most `limit`, then one line that
        counts the rest (a spec with 20,000 errors is fixed from its first ones)."""
        ordered = self.sorted()
        out = [d.text(style) for d in ordered[:limit]]
        if len(ordered) > limit:
            rest = ordered[limit:]
            errors = sum(1 for d in rest if d.severity is Severity.ERROR)
            out.append(f"... and {len(rest):,} more not shown ({errors:,} of them errors)")
        return out


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 host`, `3 hosts`, `1,200 errors`: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural_form or noun + 's'}"


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.75) -> str:
    """`; did you mean 'X'?` for the candidate closest to `name`, or "" when none is close.
    Case-insensitive, as Windows compares names; the candidate keeps its own spelling."""
    by_folded = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=cutoff)
    if not close or by_folded[close[0]] == name:
        return ""
    return f"; did you mean '{by_folded[close[0]]}'?"


class CompileError(Exception):
    """Raised by a stage when its diagnostics hold errors; carries them all."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
