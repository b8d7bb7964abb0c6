"""Broken specs and the exact diagnostics they must produce.

Each `*.yaml` file in this folder starts with comment lines `# expect: LINE:COL: error: ...`
(the file name is left out). `dcomc check` must print exactly those diagnostics — all of them,
in source order — exit with code 2, and write nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.yaml"))


def expected(case: Path) -> list[str]:
    lines = case.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def test_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_spec(case: Path, tmp_path: Path) -> None:
    want = expected(case)
    assert want, f"{case.name} has no '# expect:' lines"
    proc = subprocess.run(
        [sys.executable, "-m", "dcomc", "check", str(case)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    got = proc.stderr.splitlines()
    # a count, and no "nothing written": check never writes
    assert re.fullmatch(r"\d+ errors?", got[-1]), got[-1]
    prefix = f"{case}:"
    diags = [line.removeprefix(prefix) for line in got[:-1]]
    assert diags == want
    assert list(tmp_path.iterdir()) == []
