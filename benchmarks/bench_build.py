"""Benchmark (issue 3): build every artifact (but the MSIs) of a generated site of N hosts.

Targets: 1,000 hosts in under 10 s on the 2-core machine, peak memory under 300 MB, and the time
per host within 1.5x from 10 to 1,000 hosts. Each size runs in a fresh process so that its peak
RSS is its own. The bundles are written under ./build, where `dcomc build` writes by default
(see bench_msi.py on why the folder matters). Run:  python benchmarks/bench_build.py [N ...]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

SIZES = (10, 100, 1000)
WORK = Path("build")


def generate(hosts: int) -> dict[str, Any]:
    """A plant with one server host per 10 hosts, the rest clients, in /24 cells of 100."""
    servers = {f"srv{i}": {"product": "kepserverex-v6", "service_account": "opcsvc",
                           "launch": {"OPC Users": ["local_launch", "remote_launch",
                                                    "local_activation", "remote_activation"]},
                           "access": {"OPC Users": ["local_access", "remote_access"]}}
               for i in range(max(1, hosts // 10))}
    host_map: dict[str, Any] = {}
    for i in range(hosts):
        address = f"10.{20 + i // 25000}.{(i // 100) % 250}.{10 + i % 100}"
        if i % 10 == 0:
            host_map[f"SRV{i:05d}"] = {"address": address, "servers": [f"srv{i // 10}"]}
        else:
            host_map[f"HMI{i:05d}"] = {"address": address, "clients": ["hmi"]}
    return {
        "dcomc": 1,
        "site": {"name": f"bench-{hosts}", "identity": "workgroup"},
        "accounts": {
            "users": {"opcuser": {"password": "prompt"},
                      "opcsvc": {"password": "prompt", "member_of": ["Administrators"]}},
            "groups": {"OPC Users": {"members": ["opcuser", "opcsvc"]}},
        },
        "servers": servers,
        "clients": {"hmi": {"executable": "C:\\Program Files\\HMI\\hmi.exe",
                            "run_as": "opcuser"}},
        "hosts": host_map,
    }


def run_one(hosts: int) -> dict[str, float]:
    """In this process: generate, compile, emit and write; report time and peak RSS."""
    from dcomc.emit import bundle
    from dcomc.pipeline import compile_file
    from dcomc_targets import Options

    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir=WORK) as tmp:
        spec = Path(tmp) / "site.yaml"
        spec.write_text(yaml.safe_dump(generate(hosts)), encoding="utf-8")
        start = time.perf_counter()
        compiled = compile_file(spec)
        lowered = time.perf_counter()
        result = bundle.emit(compiled, Options(), spec.name)
        emitted = time.perf_counter()
        bundle.write(result, Path(tmp) / "out")
        done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"hosts": hosts, "compile_s": lowered - start, "emit_s": emitted - lowered,
            "write_s": done - emitted, "total_s": done - start,
            "per_host_ms": (done - start) / hosts * 1000, "peak_mb": peak_mb,
            "files": len(result.files)}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(run_one(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out))
    print(f"{'hosts':>6} {'compile s':>10} {'emit s':>8} {'write s':>8} {'total s':>8} "
          f"{'ms/host':>8} {'peak MB':>8} {'files':>6}")
    for r in rows:
        print(f"{r['hosts']:>6} {r['compile_s']:>10.2f} {r['emit_s']:>8.2f} {r['write_s']:>8.2f} "
              f"{r['total_s']:>8.2f} {r['per_host_ms']:>8.2f} {r['peak_mb']:>8.0f} "
              f"{r['files']:>6}")
    ratio = rows[-1]["per_host_ms"] / rows[0]["per_host_ms"]
    print(f"per-host time ratio {rows[-1]['hosts']} vs {rows[0]['hosts']} hosts: {ratio:.2f}x")


if __name__ == "__main__":
    main()
