"""Benchmark (issue 5): MSIs of a generated 200-host site, built in parallel.

Target: the whole build takes at most 1.3 x (200 x one host's bare wixl time / cores), with the
bare wixl time measured in the same run. Run:  python benchmarks/bench_msi.py [HOSTS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import generate


def bare_wixl(host_dir: Path, host: str, runs: int = 5) -> float:
    """Median wall time of wixl alone on one host's project (what 'one wixl process' costs)."""
    times = []
    env = {**os.environ, "G_DEBUG": "fatal-warnings", "TZ": "UTC"}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["wixl", "-a", "x64", "-o", "/dev/null" if False else "bare.msi",
                        f"wix/{host}.wxs", "wix/DcomConfig.wxs"], cwd=host_dir, env=env,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        (host_dir / "bare.msi").unlink()
    return statistics.median(times)


def main() -> None:
    from dcomc import bundle
    from dcomc.pipeline import compile_file
    from dcomc_targets import Options

    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "site.yaml"
        spec.write_text(yaml.safe_dump(generate(hosts)), encoding="utf-8")
        start = time.perf_counter()
        compiled = compile_file(spec)
        result = bundle.build(compiled, Options(), spec.name, Path(tmp) / "out",
                              bundle.MsiRequest("1.0.0"))
        whole = time.perf_counter() - start
        first = next(iter(result.manifest["hosts"]))
        one = bare_wixl(Path(tmp) / "out" / first, first)
    budget = 1.3 * hosts * one / cores
    print(f"hosts {hosts}, cores {cores}")
    print(f"bare wixl, one host (median of 5): {one * 1000:.1f} ms")
    print(f"whole build incl. compile and all artifacts: {whole:.2f} s")
    print(f"budget 1.3 x {hosts} x {one * 1000:.1f} ms / {cores}: {budget:.2f} s "
          f"-> {'OK' if whole <= budget else 'OVER'} ({whole / budget:.2f} of budget)")


if __name__ == "__main__":
    main()
