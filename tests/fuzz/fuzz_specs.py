"""Fuzz run: thousands of mutated specs through `dcomc check` and `dcomc build`.

    python tests/fuzz/fuzz_specs.py --count 10000 --seed 1

Each spec is a shipped example with a few mutations (see `specfuzz.mutant`); spec N of seed S
is always the same spec, whatever the number of workers. Every spec goes through the compiler
and the CLI's check; those check accepts are built without MSIs, and every `--msi-every`-th
with MSIs (when wixl is installed). Counted: tracebacks, exits other than 0/1/2, errors
without a position, specs that pass check but fail build. Exit 1 when any is found; the
failing specs are saved under `--save` with what broke (`.txt`) to reproduce them
(`dcomc check FILE`).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import specfuzz


@functools.cache
def _sweep() -> list[specfuzz.Mutant]:
    return list(specfuzz.sweep())


def _one(job: tuple[int | None, int, bool, str]) -> tuple[int, specfuzz.Verdict,
                                                         specfuzz.Mutant]:
    """Spec `index` of the seed's random mutants (of the sweep when the seed is None)."""
    seed, index, msi, work = job
    spec = _sweep()[index] if seed is None else specfuzz.mutant(random.Random(f"{seed}:{index}"))
    verdict = specfuzz.judge(spec, Path(work) / f"w{os.getpid()}", msi=msi)
    return index, verdict, spec


def _save(folder: Path, index: int, verdict: specfuzz.Verdict, spec: specfuzz.Mutant) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{index:06d}.yaml").write_bytes(spec.text.encode("utf-8", "surrogatepass"))
    report = [f"file name: {spec.filename!r}", "mutations:", *(f"  {op}" for op in spec.ops)]
    report += [f"{kind}: {detail}" for kind, detail in verdict.problems]
    (folder / f"{index:06d}.txt").write_text("\n".join(report) + "\n", encoding="utf-8",
                                            errors="backslashreplace")


def _default_work() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="specs to run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first spec")
    parser.add_argument("--msi-every", type=int, default=20,
                        help="build MSIs for every N-th spec check accepts (0: never)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--save", type=Path, default=Path("fuzz-failures"),
                        help="folder for the failing specs (default ./fuzz-failures)")
    parser.add_argument("--work", type=Path, default=_default_work(),
                        help="where the specs and bundles are written (default: /dev/shm "
                             "when there is one: a bundle is a few dozen files per spec)")
    parser.add_argument("--sweep", action="store_true",
                        help="instead of random mutants: every hostile string in every field "
                             "of specfuzz.SWEEP_FIELDS, one at a time (--count and --seed "
                             "are ignored)")
    args = parser.parse_args(argv)
    msi = specfuzz.wixl_installed() and args.msi_every > 0
    seed: int | None = args.seed
    if args.sweep:
        seed, args.start, args.count = None, 0, len(_sweep())
    started = time.perf_counter()
    counts: Counter[str] = Counter()
    known: Counter[str] = Counter()
    accepted = built = msis = 0
    with tempfile.TemporaryDirectory(prefix="dcomc-fuzz-", dir=args.work) as work:
        jobs = [(seed, i, msi and i % args.msi_every == 0, work)
                for i in range(args.start, args.start + args.count)]
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            for index, verdict, spec in pool.imap_unordered(_one, jobs, chunksize=16):
                accepted += verdict.accepted
                built += verdict.built
                msis += verdict.built and verdict.msi
                kinds = {kind for kind, _ in verdict.problems}
                counts.update(kinds)
                known.update({label for _, detail in verdict.problems
                              if (label := specfuzz.known(detail)) is not None})
                if kinds - {"skipped"}:
                    _save(args.save, index, verdict, spec)
    seconds = time.perf_counter() - started
    what = "the sweep" if seed is None else f"seed {seed}, from {args.start}"
    print(f"specs: {args.count} ({what}), {seconds:.1f} s, {args.workers} workers")
    print(f"accepted by check: {accepted}; built: {built} (with MSIs: {msis}); "
          f"refused: {args.count - accepted - counts['skipped']}; skipped: {counts['skipped']}")
    for kind in specfuzz.KINDS:
        print(f"{kind}: {counts[kind]}")
    for label, count in known.items():
        print(f"  of them a known defect ({label}): {count}")
    failed = sum(counts[kind] for kind in specfuzz.KINDS)
    if failed:
        print(f"failing specs saved in {args.save}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
