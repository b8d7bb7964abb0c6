"""Benchmark (issue 18): `dcomc inspect` of a whole bundle against the `dcomc build` that wrote it.

Target: inspecting a bundle takes no longer than building it (1,000 hosts: at most 10 s). Both
run as a user runs them, each in a fresh process, timed from outside (start-up and output
included; inspect's JSON goes to /dev/null), on the bench_build site without MSIs (an MSI is
read by msiinfo, whose time is not dcomc's). The median of ROUNDS runs of each. On the shared
VM the disk's speed varies 50x within minutes, so compare code on tmpfs:
    python benchmarks/bench_inspect.py [N ...] [--rounds 3] [--dir /dev/shm/bench]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import generate

SIZES = (100, 1000)


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the child (the wall time of a shared VM swings with
    its neighbours' load; the CPU time much less)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("build"),
                        help="where the bundles go (default: ./build, as `dcomc build`)")
    args = parser.parse_args()
    dcomc = [sys.executable, "-m", "dcomc"]
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"in {args.dir.resolve()}, median of {args.rounds}")
    print(f"{'hosts':>6} {'build s':>8} {'inspect s':>10} {'inspect/build':>14} "
          f"{'build cpu s':>12} {'inspect cpu s':>14}")
    for hosts in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-inspect-", dir=args.dir) as tmp:
            spec = Path(tmp) / "site.yaml"
            spec.write_text(yaml.safe_dump(generate(hosts)), encoding="utf-8")
            out = Path(tmp) / "out"
            builds, inspects = [], []
            for _ in range(args.rounds):
                shutil.rmtree(out, ignore_errors=True)
                builds.append(timed([*dcomc, "build", "--no-msi", "-o", str(out), str(spec)]))
                inspects.append(timed([*dcomc, "inspect", "--json", str(out)]))
            build, inspect = (statistics.median(t[0] for t in builds),
                              statistics.median(t[0] for t in inspects))
            build_cpu, inspect_cpu = (statistics.median(t[1] for t in builds),
                                      statistics.median(t[1] for t in inspects))
            print(f"{hosts:>6} {build:>8.2f} {inspect:>10.2f} {inspect / build:>14.2f} "
                  f"{build_cpu:>12.2f} {inspect_cpu:>14.2f}")


if __name__ == "__main__":
    main()
