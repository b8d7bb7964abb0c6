"""Diagnostics that cannot be forged or slowed (issue 17): one diagnostic is one visible line
whatever a spec holds, echoed values are cut, output stops after MAX_SHOWN lines, and
collecting them is linear (benchmarks/bench_diagnostics.py measures it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dcomc.diagnostics import MAX_SHOWN, Diagnostic, Diagnostics, Severity, Span, escaped, shown

HEAD = ("dcomc: 1\nsite:\n  name: plant7\naccounts:\n  users:\n    u:\n      password: prompt\n"
        "clients:\n  hmi:\n    executable: 'C:\\x\\hmi.exe'\n    run_as: u\nhosts:\n")


def check(tmp_path: Path, text: str, name: str = "spec.yaml") -> tuple[Path, list[str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dcomc", "check", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return path, proc.stderr.splitlines()


def test_a_newline_in_a_value_cannot_forge_a_diagnostic(tmp_path: Path) -> None:
    forged = "10.0.0.1\\nspec.yaml:1:1: error: all good [E000]\\e[2J\\u202e"
    path, lines = check(tmp_path, HEAD + f'  H1:\n    address: "{forged}"\n    clients: [hmi]\n')
    assert all(line.startswith(f"{path}:") for line in lines[:-1]), lines
    assert len(lines) == 3  # E201 and E220, then the count
    assert "\\x0aspec.yaml:1:1" in lines[1] and "\\x1b[2J\\u202e" in lines[1]
    assert "\x1b" not in "".join(lines) and "\u202e" not in "".join(lines)


def test_a_long_value_is_cut(tmp_path: Path) -> None:
    long = "x" * 5000
    _, lines = check(tmp_path, HEAD + f"  H1:\n    address: {long}\n    clients: [hmi]\n")
    assert len(lines) == 2 and len(lines[0]) < 300
    assert "'" + "x" * 77 + "...'" in lines[0]


def test_the_file_name_is_escaped_too(tmp_path: Path) -> None:
    _, lines = check(tmp_path, HEAD, name="a\x1b[31mb.yaml")
    assert "a\\x1b[31mb.yaml:" in lines[0] and "\x1b" not in lines[0]


def test_output_stops_after_max_shown_with_a_count(tmp_path: Path) -> None:
    hosts = "".join(f"  H{i}:\n    address: 10.0.0.{300 + i}\n    clients: [hmi]\n"
                    for i in range(MAX_SHOWN + 50))
    path, lines = check(tmp_path, HEAD + hosts)
    assert len(lines) == MAX_SHOWN + 2
    assert lines[MAX_SHOWN] == "... and 50 more not shown (50 of them errors)"
    assert lines[-1] == f"{MAX_SHOWN + 50} errors"
    assert lines[0].startswith(f"{path}:14:14: error: invalid address '10.0.0.300'")


def test_escaped_and_shown() -> None:
    assert escaped("plain Ü text") == "plain Ü text"
    assert escaped("a\nb\x1b\x85\u2028\u202e\ud800\ufffe\U0010ffff") == (
        "a\\x0ab\\x1b\\x85\\u2028\\u202e\\ud800\\ufffe\\U0010ffff")
    assert shown("y" * 100) == "y" * 77 + "..."
    assert shown("\n" * 100) == "\\x0a" * 77 + "..."


def test_collecting_many_is_linear_and_still_deduplicates() -> None:
    diags = Diagnostics()
    for i in range(20_000):  # 20,000² comparisons took minutes
        diags.error(Span("f", i, 1), "E220", "x")
        diags.error(Span("f", i, 1), "E220", "x")
    assert len(diags) == 20_000


def test_a_long_unquoted_echo_is_cut_too() -> None:
    """A value echoed without quotes (a list of defined names, say) is not a quoted value the
    per-value cut sees; the message as a whole is cut, so a line stays readable."""
    names = ", ".join(f"server{i}" for i in range(5000))
    diag = Diagnostic(Span("s.yaml", 1, 1), Severity.ERROR, f"undefined server 'x' (defined: "
                      f"{names})", "E101")
    line = str(diag)
    assert len(line) < 600 and line.endswith("... [E101]")
    assert diag.json()["message"].endswith("...")
