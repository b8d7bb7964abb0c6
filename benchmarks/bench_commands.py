"""Benchmark (issue 18): `dcomc check`, `plan --json` and `diff` on a generated site of N hosts,
each against a floor measured in the same run.

The floor is what each of these commands must do before its own work: a fresh Python process
that imports dcomc's command line and loads the spec's YAML (front.load.load_file, the
loader every command uses). Each command runs as a user runs it, in a fresh process, timed
from outside (start-up and output included; its output goes to /dev/null): the median of
ROUNDS runs, wall and CPU seconds. The ratio command / floor is what the command adds to
reading its input; the machine's speed and its neighbours' load move both alike, so ratios
from different runs compare where seconds do not.

- `check SPEC` and `plan --json SPEC`: the bench_build site (scattered addresses, cells);
- `diff OLD NEW`: two specs, NEW with every 100th host moved to another address (those hosts
  and their cells' firewall scopes change);
- `diff BUNDLE NEW`: the bundle built from OLD (`build --no-msi`, not timed) read back
  against NEW, twice: NEW as OLD edited in place (`edited`: the same file name, so the data
  files of the hosts the edit leaves alone are the bytes a build of NEW writes, and are not
  read), and NEW under another file name (`other name`: every data file names its spec, so
  every one is read and compared).
`inspect --json` of a bundle is bench_inspect.py; the build itself bench_build.py.

Run it on tmpfs, as the other benchmarks:
    python benchmarks/bench_commands.py [N ...] [--rounds 3] [--dir /dev/shm/bench]
The specs, bundles and outputs are hundreds of MB at 10,000 hosts, and the shared VM's disk
varies 50x in speed within minutes (bench_fs.py): on disk the figures measure the disk, on
tmpfs (/dev/shm) they measure dcomc. The default folder is ./build, where `dcomc build`
writes, to measure what a user gets.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import generate, sizes_parser, timed

SIZES = (1000, 10000)
FLOOR = ("import sys\nfrom pathlib import Path\nimport dcomc.cli\n"
         "from dcomc.diagnostics import Diagnostics\nfrom dcomc.front.load import load_file\n"
         "assert load_file(Path(sys.argv[1]), Diagnostics()) is not None\n")


def moved(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with every 100th host at another address (10.99.x.y: no other host's)."""
    hosts = {}
    for i, (name, host) in enumerate(spec["hosts"].items()):
        if i % 100 == 1:
            host = {**host, "address": f"10.99.{i // 250 % 250}.{10 + i % 250}"}
        hosts[name] = host
    return {**spec, "hosts": hosts}


def median_of(rounds: int, command: list[str]) -> tuple[float, float]:
    # exit 1 (diff: the plans differ) is a result, not a failure
    runs = [timed(command, (0, 1)) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    args = sizes_parser(__doc__, SIZES, "the specs and bundles").parse_args()
    python, dcomc = sys.executable, [sys.executable, "-m", "dcomc"]
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"in {args.dir.resolve()}, median of {args.rounds}; ratio = command / floor (wall)")
    print(f"{'hosts':>6} {'command':<22} {'wall s':>8} {'cpu s':>8} {'ratio':>7}")
    for hosts in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-commands-", dir=args.dir) as tmp:
            old, new, bundle = Path(tmp) / "old.yaml", Path(tmp) / "new.yaml", Path(tmp) / "out"
            site = generate(hosts)
            edited = Path(tmp) / "edited" / old.name  # OLD edited in place: the same name
            edited.parent.mkdir()
            old.write_text(yaml.safe_dump(site), encoding="utf-8")
            new.write_text(yaml.safe_dump(moved(site)), encoding="utf-8")
            edited.write_bytes(new.read_bytes())
            timed([*dcomc, "build", "--no-msi", "-o", str(bundle), str(old)])
            floor = median_of(args.rounds, [python, "-c", FLOOR, str(old)])
            print(f"{hosts:>6} {'floor (load the spec)':<22} {floor[0]:>8.2f} {floor[1]:>8.2f} "
                  f"{1:>7.2f}")
            for label, command in (
                    ("check", [*dcomc, "check", str(old)]),
                    ("plan --json", [*dcomc, "plan", "--json", str(old)]),
                    ("diff spec spec", [*dcomc, "diff", str(old), str(new)]),
                    ("diff bundle edited", [*dcomc, "diff", str(bundle), str(edited)]),
                    ("diff bundle other name", [*dcomc, "diff", str(bundle), str(new)])):
                wall, cpu = median_of(args.rounds, command)
                print(f"{hosts:>6} {label:<22} {wall:>8.2f} {cpu:>8.2f} "
                      f"{wall / floor[0]:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
