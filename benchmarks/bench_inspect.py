"""Benchmark (issue 18): `dcomc inspect` of a whole bundle against the `dcomc build` that wrote it.

Target: inspecting a bundle takes no longer than building it (1,000 hosts: at most 10 s). Both
run as a user runs them, each in a fresh process, timed from outside (start-up and output
included; inspect's JSON goes to /dev/null), on the bench_build site without MSIs (an MSI is
read by msiinfo, whose time is not dcomc's). The median of ROUNDS runs of each. On the shared
VM the disk's speed varies 50x within minutes, so compare code on tmpfs:
    python benchmarks/bench_inspect.py [N ...] [--rounds 3] [--dir /dev/shm/bench]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import generate, sizes_parser, timed

SIZES = (100, 1000)


def main() -> None:
    args = sizes_parser(__doc__, SIZES, "the bundles").parse_args()
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
