"""Benchmark (issue 18): a one-host change rebuilt into the existing bundle vs a full build.

The site is bench_build's generated plant, each host with its own `machine` setting; the change
flips one client host's setting in place (no line moves: the data files name each resource's
line in the spec), so exactly one host's inputs change (`--change address` moves a client to
another address instead, which also changes its cell server's firewall scope: two hosts).
Each figure is a fresh process, as `dcomc build` is: compile, emit and write; the full build
into an empty folder, the incremental one into the bundle of the spec before the change (built
by another process beforehand). The incremental bundle is then compared, file by file, with the
full build's. Medians of `--repeat` runs; on the shared VM compare code on tmpfs:
    python benchmarks/bench_incremental.py [N] [--dir /dev/shm/bench] [--repeat 3] [--msi]
                                           [--change setting|address]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from bench_build import WORK, generate

CHANGED = "HMI00005"  # a client host of the first cell


def spec_texts(hosts: int, change: str) -> tuple[str, str]:
    """The spec before and after the change, line for line the same but one value."""
    site = generate(hosts)
    for host in site["hosts"].values():
        host["machine"] = {"network_discovery": False}
    before = yaml.safe_dump(site)
    lines = before.split("\n")
    start = lines.index(f"  {CHANGED}:")
    key = "network_discovery" if change == "setting" else "address"
    at = next(i for i in range(start, start + 8) if key in lines[i])
    head, _, value = lines[at].partition(": ")
    lines[at] = f"{head}: {'true' if change == 'setting' else '10.99.0.5'}"
    assert value != lines[at].partition(": ")[2]
    return before, "\n".join(lines)


def run_one(spec: Path, out: Path, msis: bool) -> dict[str, Any]:
    """In this process: compile and build `spec` into `out` (reusing what is there)."""
    from dcomc.emit import bundle
    from dcomc.pipeline import compile_file
    from dcomc_targets import Options

    start = time.perf_counter()
    compiled = compile_file(spec)
    compiled_at = time.perf_counter()
    bundle.build(compiled, Options(), spec.name, out,
                 bundle.MsiRequest("1.0.0") if msis else None)
    done = time.perf_counter()
    return {"compile_s": compiled_at - start, "build_s": done - compiled_at,
            "total_s": done - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(spec: Path, out: Path, msis: bool) -> dict[str, Any]:
    args = [sys.executable, __file__, "--one", str(spec), str(out)] + (["--msi"] if msis else [])
    result: dict[str, Any] = json.loads(subprocess.run(args, check=True, capture_output=True,
                                                       text=True).stdout)
    return result


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def measure(hosts: int, work: Path, repeat: int, msis: bool, change: str) -> None:
    before, after = spec_texts(hosts, change)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-incremental-", dir=work) as tmp:
        old_spec, new_spec = Path(tmp) / "a" / "site.yaml", Path(tmp) / "b" / "site.yaml"
        for path, text in ((old_spec, before), (new_spec, after)):
            path.parent.mkdir()
            path.write_text(text, encoding="utf-8")
        full, incremental = [], []
        for n in range(repeat):  # interleaved: the machine's load changes within minutes
            fresh = Path(tmp) / f"full-{n}"
            full.append(child(new_spec, fresh, msis))
            out = Path(tmp) / f"incr-{n}"
            child(old_spec, out, msis)  # the bundle before the change, by another process
            old = tree(out)
            incremental.append(child(new_spec, out, msis))
            new, reference = tree(out), tree(fresh)
            identical = new == reference
            if not identical:  # name them: a difference is a bug
                print("differ:", sorted(rel for rel in set(new) | set(reference)
                                        if new.get(rel) != reference.get(rel))[:10])
            changed = sorted(rel for rel in new if old.get(rel) != new[rel])
            shutil.rmtree(fresh)
            shutil.rmtree(out)
        report(hosts, msis, change, full, incremental, identical, changed, len(new))


def report(hosts: int, msis: bool, change: str, full: list[dict[str, Any]],
           incremental: list[dict[str, Any]], identical: bool, changed: list[str],
           files: int) -> None:
    def median(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"{hosts} hosts, {'with' if msis else 'without'} MSIs, change: one host's {change}; "
          f"medians of {len(full)}")
    print(f"{'':>12} {'compile s':>10} {'build s':>8} {'total s':>8} {'peak MB':>8}")
    for name, rows in (("full", full), ("incremental", incremental)):
        print(f"{name:>12} {median(rows, 'compile_s'):>10.2f} {median(rows, 'build_s'):>8.2f} "
              f"{median(rows, 'total_s'):>8.2f} {median(rows, 'peak_mb'):>8.0f}")
    ratio = median(incremental, "total_s") / median(full, "total_s")
    build_ratio = median(incremental, "build_s") / median(full, "build_s")
    hosts_changed = sorted({rel.split("/")[0] for rel in changed if "/" in rel})
    print(f"incremental / full: {ratio:.1%} (total), {build_ratio:.1%} (build after compile)")
    print(f"files changed: {len(changed)} of {files} (hosts {', '.join(hosts_changed)}; site "
          f"files {', '.join(r for r in changed if '/' not in r)}); byte-identical to the "
          f"full build: {identical}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="?", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=WORK)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--msi", action="store_true", help="build the MSIs too (wixl)")
    parser.add_argument("--change", choices=("setting", "address"), default="setting")
    parser.add_argument("--one", nargs=2, type=Path, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.msi)))
        return
    measure(args.hosts, args.dir, args.repeat, args.msi, args.change)


if __name__ == "__main__":
    main()
