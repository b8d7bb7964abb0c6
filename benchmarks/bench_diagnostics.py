"""Benchmark (issue 17): `dcomc check` on specs with many errors must stay linear in their number.

Three generated specs per size, each with N errors from one stage: duplicate keys (load, E002),
unknown keys (spec, E003) and invalid host addresses (check, E220). Each `dcomc check` runs in a
fresh process; the time is the wall time of the whole command, output included (stderr is
read, not shown). Target: 20,000 errors in under 2 s. Run:
python benchmarks/bench_diagnostics.py [N ...]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SIZES = (1000, 5000, 20000)
HEAD = "dcomc: 1\nsite:\n  name: bench\nclients:\n  hmi:\n    executable: 'C:\\x\\hmi.exe'\n" \
       "    run_as: u\naccounts:\n  users:\n    u:\n      password: prompt\nhosts:\n"


def duplicate_keys(n: int) -> str:
    lines = ["  H1:", "    address: 10.0.0.1", "    clients: [hmi]", "    machine:",
             "      firewall:"]
    lines += ["        opcenum: true"] * (n + 1)
    return HEAD + "\n".join(lines) + "\n"


def unknown_keys(n: int) -> str:
    return HEAD + "".join(f"  H{i}:\n    address: 10.{i // 65536}.{i // 256 % 256}.{i % 256}\n"
                          f"    clients: [hmi]\n    colour: blue\n" for i in range(n))


def bad_addresses(n: int) -> str:
    return HEAD + "".join(f"  H{i}:\n    address: 10.0.0.{i + 300}\n    clients: [hmi]\n"
                          for i in range(n))


KINDS: dict[str, Callable[[int], str]] = {
    "load (E002)": duplicate_keys, "spec (E003)": unknown_keys, "check (E220)": bad_addresses}


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, generate in KINDS.items():
            for n in sizes:
                path = Path(tmp) / "spec.yaml"
                path.write_text(generate(n), encoding="utf-8")
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "dcomc", "check", str(path)],
                                      capture_output=True, text=True, check=False)
                seconds = time.perf_counter() - start
                lines = proc.stderr.count("\n")
                print(f"{name:14} {n:>7,} errors: {seconds:6.2f} s, exit {proc.returncode}, "
                      f"{lines:,} lines of output", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or list(SIZES))
