"""Benchmark (issue 18): what a long firewall scope costs the targets that write it.

A rule's remote addresses are written in every rule of every host: in the WiX firewall fragment
(one RemoteAddress element each, per profile) and in the PowerShell data file (one string
each). A site whose addresses do not collapse (`remote: site` over scattered hosts, or a long
list in the spec) makes that list hundreds of networks long. This benchmark compiles the
bench_build site of HOSTS hosts with a spec-given `remote` of NETWORKS scattered networks on
both roles, then times each target's emission of every host (medians of ROUNDS, in this
process; the compile, the same for every target, is not timed), and peak RSS:
    python benchmarks/bench_scope.py [--hosts 1000] [--networks 800] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import generate


def main() -> None:
    from dcomc.pipeline import compile_file
    from dcomc_targets import TARGETS, EmitContext, Options

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--networks", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    site = generate(args.hosts)
    # 8 networks per /24 as bench_build's scattered layout collapses to, the hosts' own
    # addresses first (so that every flow is admitted and the flow verifier stays quiet)
    cells = [f"10.{20 + c // 250}.{c % 250}" for c in range(-(-args.networks // 8))]
    nets = [f"{cell}.{net}" for cell in cells for net in (
        "10/31", "12/30", "16/28", "32/27", "64/27", "96/29", "104/30", "108/31")]
    remote = nets[: args.networks]
    site["machine"] = {role: {"firewall": {"remote": remote}} for role in ("server", "client")}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "site.yaml"
        spec.write_text(yaml.safe_dump(site), encoding="utf-8")
        compiled = compile_file(spec)
    print(f"{args.hosts} hosts, remote lists of {len(remote)} networks, median of "
          f"{args.rounds}")
    total = 0.0
    for target in TARGETS:
        times, size = [], 0
        for _ in range(args.rounds):
            ctx = EmitContext(compiled.plan, Options(), spec.name, compiled.sha256)
            start = time.perf_counter()
            size = sum(len(a.data) for host in compiled.plan.hosts
                       for a in target.emit(host, ctx))
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        total += median
        print(f"{target.name:>12} {median:>7.2f} s  {size / 1e6:>8.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'all':>12} {total:>7.2f} s  peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
