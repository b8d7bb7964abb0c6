"""What the check/build fuzzer (tests/fuzz/fuzz_specs.py) found, each as its smallest spec.

The account names outside the MSI's code page (E218) have their own tests
(test_msi_codepage.py) and error cases (tests/errors/*-outside-msi-codepage.yaml). A defect
outside the checker is pinned here as a strict xfail: when it is fixed the test passes, fails
as XPASS, and its marker and its entry in specfuzz.KNOWN are to be removed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SURROGATE_AFTER_BANG = """\
dcomc: 1
site:
  name: x
  description: "Hi! \\ud800"
hosts: {}
"""


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "dcomc", "check", str(path)],
                          capture_output=True, text=True, check=False)


def test_a_surrogate_escape_in_a_spec_with_a_bang_is_a_located_error(tmp_path: Path) -> None:
    """Any `!` in the text (here in a description, not a tag) makes the loader look for tags
    with libyaml; a `\\ud800` escape then ended `check` in a traceback instead of E201."""
    proc = _check(tmp_path, SURROGATE_AFTER_BANG)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert ":4:16: error: lone surrogate U+D800 in value 'Hi! \\ud800' [E201]" in proc.stderr


def test_the_same_without_a_bang_is_a_located_error(tmp_path: Path) -> None:
    proc = _check(tmp_path, SURROGATE_AFTER_BANG.replace("!", ""))
    assert proc.returncode == 2
    assert ":4:16: error: lone surrogate U+D800 in value 'Hi \\ud800' [E201]" in proc.stderr
