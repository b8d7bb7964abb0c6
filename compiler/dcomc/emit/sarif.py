"""`dcomc check --format sarif`: the diagnostics as a SARIF 2.1.0 log, the format CI systems
(GitHub code scanning, GitLab, Azure DevOps) read to annotate the spec's lines in a review.

One run, one result per diagnostic (ruleId = the error code, level = its severity, the spec's
line and column), and one rule per code that occurs, whose help is its row in docs/errors.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from dcomc import __version__
from dcomc.diagnostics import Diagnostic, Diagnostics, Span

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
HELP = "docs/errors.md#{code}"  # relative: the documentation ships beside the spec's repository


def sarif_log(diags: Diagnostics) -> dict[str, Any]:
    """The SARIF log of `diags`, in source order (deterministic: no time, no absolute path
    that the input did not give)."""
    ordered = diags.sorted()
    codes = sorted({d.code for d in ordered})
    index = {code: i for i, code in enumerate(codes)}
    driver = {"name": "dcomc", "version": __version__, "semanticVersion": __version__,
              "rules": [{"id": code, "helpUri": HELP.format(code=code)} for code in codes]}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            # a spec's columns count characters (as Python's str does), not UTF-16 units
            "columnKind": "unicodeCodePoints",
            "results": [_result(d, index[d.code]) for d in ordered],
        }],
    }


def _result(diag: Diagnostic, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": diag.code, "ruleIndex": rule_index,
                              "level": str(diag.severity),
                              "message": {"text": diag.short_message()}}
    if diag.span is not None:
        result["locations"] = [{"physicalLocation": _physical(diag.span)}]
    return result


def _physical(span: Span) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": file_uri(span.file)}}
    if span.line >= 1:  # a file-wide problem (unreadable, empty) has no line to point at
        location["region"] = {"startLine": span.line, "startColumn": max(span.col, 1)}
    return location


def file_uri(path: str) -> str:
    """A file name as a URI reference: a relative path stays relative (CI systems resolve it
    against the checkout), with `/` separators and percent-escapes; an absolute one becomes
    a file: URI. Any character can be escaped, even a lone surrogate of an undecodable name."""
    local = Path(path)
    text = quote(local.as_posix(), safe="/:", errors="surrogatepass")
    if not local.is_absolute():
        return text.replace(":", "%3A")  # a colon before any slash would read as a scheme
    return "file://" + ("" if text.startswith("/") else "/") + text
