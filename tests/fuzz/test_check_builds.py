"""Property: `check` accepts exactly what `build` can build (issue 17, item 2).

Specs are the shipped examples with a few mutations of their values (names, descriptions,
addresses, executables, ProgIDs, profiles, lists; hostile and random strings among them; see
specfuzz.py). For each: a spec that check accepts builds with exit 0 (every fifth with its
MSIs, where wixl is installed); a spec that check refuses is refused with exit 2 and every
error at its place; nothing ends in a traceback. A few hundred examples, derandomized; the
long run is `python tests/fuzz/fuzz_specs.py --count 10000 --seed 1`.
"""

from __future__ import annotations

import random
from pathlib import Path

import specfuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcomc.diagnostics import CompileError
from dcomc.pipeline import compile_file

EXAMPLES = 500
WITH_MSI = specfuzz.wixl_installed()


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_check_accepts_exactly_what_build_builds(tmp_path: Path, seed: int) -> None:
    spec = specfuzz.mutant(random.Random(seed))
    verdict = specfuzz.judge(spec, tmp_path / "case", msi=WITH_MSI and seed % 5 == 0)
    problems = [(kind, detail) for kind, detail in verdict.problems
                if kind != "skipped" and specfuzz.known(detail) is None]
    assert not problems, (f"seed {seed}: {spec.filename!r}\n" + "\n".join(spec.ops) + "\n"
                          + "\n".join(f"{kind}: {detail}" for kind, detail in problems)
                          + "\n--- spec ---\n" + spec.text)


def test_the_mutants_reach_build(tmp_path: Path) -> None:
    """The generator is worth its time: a good share of its specs pass check and are built,
    the rest exercise check's refusals."""
    accepted = 0
    for seed in range(100):
        spec = specfuzz.mutant(random.Random(seed))
        path = tmp_path / "spec.yaml"
        path.write_bytes(spec.text.encode("utf-8", "surrogatepass"))
        try:
            compile_file(path)
        except CompileError:
            continue
        accepted += 1
    assert 15 <= accepted <= 60
