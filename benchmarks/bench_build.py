"""Benchmark (issue 3): build every artifact (but the MSIs) of a generated site of N hosts.

Targets: 1,000 hosts in under 10 s on the 2-core machine, peak memory under 300 MB, and the time
per host within 1.5x from 10 to 1,000 hosts; issue 18: 10,000 hosts in 10 s and 1 GB, and the
marginal cost of a host from 1,000 to 10,000 hosts within 1.5x of that from 100 to 1,000 (the
`marginal` lines: the time added per host from one size to the next, and its ratio to the
previous step's). Each size runs in a fresh process so that its peak RSS is its own, ROUNDS
times (the median is shown, and the CPU seconds beside the wall time: on the shared VM the wall
time follows the neighbours' load, the CPU time much less). The bundles are written under
./build, where `dcomc build` writes by default (see bench_msi.py on why the folder matters); a
disk's speed varies 50x within minutes on the shared VM, and 100,000 small files are mostly
kernel time on a disk, so compare code on tmpfs:
    python benchmarks/bench_build.py [N ...] [--rounds 3] [--dir /dev/shm/bench]
                                     [--addresses contiguous] [--flows all] [--write memory]

Addresses (the `site` firewall scope lists them, collapsed into networks): `scattered` (the
default) puts 100 hosts at .10-.109 of each /24, which collapses to 8 networks per /24 (800 at
10,000 hosts: the worst case of issue 18); `contiguous` numbers the hosts from 10.32.0.0
without gaps, which collapses to a handful of networks at any size.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

SIZES = (10, 100, 1000)
WORK = Path("build")


def address_of(i: int, layout: str = "scattered") -> str:
    if layout == "contiguous":
        return f"10.{32 + i // 65536}.{(i // 256) % 256}.{i % 256}"
    return f"10.{20 + i // 25000}.{(i // 100) % 250}.{10 + i % 100}"


def generate(hosts: int, layout: str = "scattered", flows: str = "cell") -> dict[str, Any]:
    """A plant with one server host per 10 hosts, the rest clients; addresses by `layout`.

    `flows`: `cell` (each block of 10 hosts is a cell whose clients call its one server, so a
    rule's `site` scope is its cell's peers) or `all` (no `calls`: every client calls every
    server, so every rule's scope is half the site; the flow verifier then checks clients x
    servers flows, minutes at 1,000 hosts)."""
    servers = {f"srv{i}": {"product": "kepserverex-v6", "service_account": "opcsvc",
                           "launch": {"OPC Users": ["local_launch", "remote_launch",
                                                    "local_activation", "remote_activation"]},
                           "access": {"OPC Users": ["local_access", "remote_access"]}}
               for i in range(max(1, hosts // 10))}
    client = {"executable": "C:\\Program Files\\HMI\\hmi.exe", "run_as": "opcuser"}
    clients = ({"hmi": client} if flows == "all" else
               {f"hmi{j}": {**client, "calls": [f"srv{j}"]} for j in range(len(servers))})
    host_map: dict[str, Any] = {}
    for i in range(hosts):
        address = address_of(i, layout)
        if i % 10 == 0:
            host_map[f"SRV{i:05d}"] = {"address": address, "servers": [f"srv{i // 10}"]}
        else:
            cell = min(i // 10, len(servers) - 1)
            host_map[f"HMI{i:05d}"] = {"address": address,
                                       "clients": ["hmi" if flows == "all" else f"hmi{cell}"]}
    return {
        "dcomc": 1,
        "site": {"name": f"bench-{hosts}", "identity": "workgroup"},
        "accounts": {
            "users": {"opcuser": {"password": "prompt"},
                      "opcsvc": {"password": "prompt", "member_of": ["Administrators"]}},
            "groups": {"OPC Users": {"members": ["opcuser", "opcsvc"]}},
        },
        "servers": servers,
        "clients": clients,
        "hosts": host_map,
    }


def run_one(hosts: int, layout: str, flows: str, work: Path, write: str) -> dict[str, float]:
    """In this process: generate, compile, emit and write; report time and peak RSS. `write`:
    `streamed` as `dcomc build --no-msi` (each host's files written as they are made; emit and
    write are then one figure, in emit_s) or `memory` (the whole bundle in memory, then
    written)."""
    from dcomc.emit import bundle
    from dcomc.pipeline import compile_file
    from dcomc_targets import Options

    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir=work) as tmp:
        spec = Path(tmp) / "site.yaml"
        spec.write_text(yaml.safe_dump(generate(hosts, layout, flows)), encoding="utf-8")
        start, cpu = time.perf_counter(), time.process_time()
        compiled = compile_file(spec)
        lowered = time.perf_counter()
        if write == "streamed":
            result = bundle.build(compiled, Options(), spec.name, Path(tmp) / "out")
            emitted = time.perf_counter()
        else:
            result = bundle.emit(compiled, Options(), spec.name)
            emitted = time.perf_counter()
            bundle.write(result, Path(tmp) / "out")
        done, cpu = time.perf_counter(), time.process_time() - cpu
        files = sum(1 for p in (Path(tmp) / "out").rglob("*") if p.is_file())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"hosts": hosts, "compile_s": lowered - start, "emit_s": emitted - lowered,
            "write_s": done - emitted, "total_s": done - start, "cpu_s": cpu,
            "per_host_ms": (done - start) / hosts * 1000, "peak_mb": peak_mb,
            "files": files}


def timed(command: list[str], accept: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command` in a fresh process, its output to
    /dev/null (the wall time of a shared VM swings with its neighbours' load, the children's
    CPU time much less); an exit status not in `accept` stops the benchmark with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in accept:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-2000:]!r}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def sizes_parser(doc: str, sizes: tuple[int, ...], where: str) -> argparse.ArgumentParser:
    """The command line of a benchmark of commands run at several sizes: N..., --rounds (the
    median of so many) and --dir (`where` goes there; ./build by default, as `dcomc build`)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(sizes))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=WORK, help=f"where {where} go (default: "
                        "./build, as `dcomc build`)")
    return parser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--dir", type=Path, default=WORK,
                        help="where the bundles go (default: ./build, as `dcomc build`)")
    parser.add_argument("--addresses", choices=("scattered", "contiguous"), default="scattered")
    parser.add_argument("--flows", choices=("cell", "all"), default="cell")
    parser.add_argument("--write", choices=("streamed", "memory"), default="streamed")
    parser.add_argument("--rounds", type=int, default=1, help="runs per size (the median)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.sizes[0], args.addresses, args.flows, args.dir, args.write)))
        return
    rows = []
    for n in args.sizes:
        runs = [json.loads(subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--dir", str(args.dir), "--addresses",
             args.addresses, "--flows", args.flows, "--write", args.write],
            check=True, capture_output=True, text=True).stdout) for _ in range(args.rounds)]
        rows.append({key: statistics.median(r[key] for r in runs) for key in runs[0]})
    print(f"addresses {args.addresses}, flows {args.flows}, write {args.write}, in "
          f"{args.dir.resolve()}, median of {args.rounds}")
    print(f"{'hosts':>6} {'compile s':>10} {'emit s':>8} {'write s':>8} {'total s':>8} "
          f"{'cpu s':>7} {'ms/host':>8} {'peak MB':>8} {'files':>6}")
    for r in rows:
        print(f"{r['hosts']:>6} {r['compile_s']:>10.2f} {r['emit_s']:>8.2f} {r['write_s']:>8.2f} "
              f"{r['total_s']:>8.2f} {r['cpu_s']:>7.2f} {r['per_host_ms']:>8.2f} "
              f"{r['peak_mb']:>8.0f} {r['files']:>6.0f}")
    ratio = rows[-1]["per_host_ms"] / rows[0]["per_host_ms"]
    print(f"per-host time ratio {rows[-1]['hosts']} vs {rows[0]['hosts']} hosts: {ratio:.2f}x")
    steps = [(a, b, *((b[key] - a[key]) / (b["hosts"] - a["hosts"]) * 1000
                      for key in ("total_s", "cpu_s")))
             for a, b in pairwise(rows) if b["hosts"] > a["hosts"]]
    for n, (a, b, wall, cpu) in enumerate(steps):
        vs = (f", {wall / steps[n - 1][2]:.2f}x the previous step (CPU "
              f"{cpu / steps[n - 1][3]:.2f}x)") if n else ""
        print(f"marginal {a['hosts']} -> {b['hosts']} hosts: {wall:.2f} ms/host (CPU "
              f"{cpu:.2f}){vs}")


if __name__ == "__main__":
    main()
