"""Benchmark (issue 14): the extra build time of signing a 200-host bundle with its MSIs.

Each round builds the generated site twice, unsigned and signed (in that order, then the other
way round the next round, so drift on a shared machine does not favour one side), each in a
fresh process as `dcomc build` runs, timed after its imports. Signing is osslsigncode on each
host's data file and MSI (the engine and entry script once: the same bytes on every host) and
openssl on the manifest; the certificate is a throw-away RSA-2048 one made with openssl
(tests/unit/test_sign.py). Reports the median of each side and of the per-round difference.
Run:  python benchmarks/bench_sign.py [HOSTS] [ROUNDS] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests"))
from bench_build import generate  # noqa: E402  (after the path it is found on)


def one_build(spec: Path, out: Path, cert: str | None, key: str | None) -> None:
    """One build in this fresh process; prints its wall time as JSON."""
    from dcomc.emit import bundle, sign
    from dcomc.pipeline import compile_file
    from dcomc_targets import Options

    start = time.perf_counter()
    compiled = compile_file(spec)
    if cert is None:
        bundle.build(compiled, Options(), spec.name, out, bundle.MsiRequest("1.0.0"))
    else:
        with sign.Signer(sign.SignSettings(Path(cert), key)) as signer:
            bundle.build(compiled, Options(), spec.name, out, bundle.MsiRequest("1.0.0"),
                         signer)
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    print(json.dumps({"whole": time.perf_counter() - start,
                      "cpu": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime}))


def timed(spec: Path, out: Path, signing: list[str]) -> dict[str, float]:
    child = subprocess.run([sys.executable, __file__, "--one", str(spec), str(out), *signing],
                           check=False, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"the build failed: {child.stderr.strip()[-2000:]}")
    return {k: float(v) for k, v in json.loads(child.stdout).items()}


def main() -> None:
    from unit.test_sign import make_pki

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="?", type=int, default=200)
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("build"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-sign-", dir=args.dir) as tmp:
        spec = Path(tmp) / "site.yaml"
        spec.write_text(yaml.safe_dump(generate(args.hosts)), encoding="utf-8")
        pki = make_pki(Path(tmp) / "pki")
        signing = [str(pki.cert("signer")), str(pki.key("signer"))]
        plain, signed, extra, cpu = [], [], [], []
        for n in range(args.rounds):
            os.sync()
            order = [False, True] if n % 2 == 0 else [True, False]
            times = {s: timed(spec, Path(tmp) / f"out{n}-{s}", signing if s else [])
                     for s in order}
            plain.append(times[False]["whole"])
            signed.append(times[True]["whole"])
            extra.append(signed[-1] - plain[-1])
            cpu.append(times[True]["cpu"] - times[False]["cpu"])
            print(f"round {n + 1}: unsigned {plain[-1]:.2f} s, signed {signed[-1]:.2f} s, "
                  f"extra {extra[-1]:+.2f} s wall, {cpu[-1]:+.2f} CPU-s")
        print(f"median of {args.rounds}: unsigned {statistics.median(plain):.2f} s, signed "
              f"{statistics.median(signed):.2f} s, extra {statistics.median(extra):+.2f} s "
              f"wall and {statistics.median(cpu):+.2f} CPU-s ({args.hosts} hosts, "
              f"{len(os.sched_getaffinity(0))} cores)")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--one":
        signing = sys.argv[4:6] if len(sys.argv) >= 6 else [None, None]
        one_build(Path(sys.argv[2]), Path(sys.argv[3]), signing[0], signing[1])
    else:
        main()
