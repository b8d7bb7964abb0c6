"""Seeded fuzzers of the read-back commands: `dcomc inspect`, `sd decode`, `drift`, `diff`
(issue 17, item 3).

Each mutates real artifacts (the shipped examples' bundles built with `--no-msi`, one with its
MSIs where msitools are installed, the descriptors of their .reg files, and a Report-mode JSON
made from each host's plan; see fuzz_mutations.py), and runs the command's click entry point
in-process. Every case must end with exit 0, 1 or 2, no exception (no traceback), no hang (a
case gets DEADLINE seconds), on exit 2 one line per message on stderr, --json output that is
strict JSON, and no output line with a raw control, bidi or other invisible character, nor a
line that an input's line break started. FIFOs, devices and folders stand in for files now and
then; `diff` also gets manifests that name paths outside the bundle and symlinks leading out.

The cases per command are a few thousand by default, a few seconds each. A longer run (per
command; -n spreads the four commands over processes):

    DCOMC_FUZZ_EXAMPLES=100000 python -m pytest -q -n 4 tests/fuzz/test_readback_fuzz.py

DCOMC_FUZZ_SEED picks another seed (a failure names its seed and case number, which reproduce
it alone with DCOMC_FUZZ_ONLY=<case>); DCOMC_FUZZ_SAVE=<folder> keeps each failing input, and
DCOMC_FUZZ_LOG=<file> gets every failure and each command's figures (cases, seconds, exits).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fuzz_mutations import FORGED, Mutator

from dcomc import __version__, cli
from dcomc.diagnostics import CONTROL_CHARS
from dcomc.pipeline import Compiled, compile_file
from dcomc.readback import compare
from dcomc.windows import sdbinary
from dcomc_targets import msi
from dcomc_targets.regfile import RegTarget

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SEED = int(os.environ.get("DCOMC_FUZZ_SEED", "17"))
ONLY = os.environ.get("DCOMC_FUZZ_ONLY")
SAVE = os.environ.get("DCOMC_FUZZ_SAVE")
LOG = os.environ.get("DCOMC_FUZZ_LOG")  # a file that gets every failure and the figures
DEADLINE = float(os.environ.get("DCOMC_FUZZ_DEADLINE") or 10)  # seconds per case: a hang
# Cases per command by default: each command a few seconds on one core (diff reads three
# data files per case, inspect parses PowerShell; sd decode and drift are cheap).
DEFAULT_CASES = {"inspect": 2000, "sd": 5000, "drift": 3000, "diff": 1000, "foreign": 3000}
# Files dcomc did not write (issue 15): the readers' corpus, mutated.
FOREIGN = ROOT / "tests" / "targets" / "corpus"
# What no output line may hold raw: the characters diagnostics escape (controls, bidi and other
# invisible format characters); lone surrogates cannot be printed at all (an exception).
RAW_CONTROL = re.compile(f"[{CONTROL_CHARS}]")
ERROR_LINE = re.compile(r"^(?:.*: )?(?:error|warning): |^\d+ error\(s\)")


def cases(command: str) -> range:
    if ONLY is not None:
        return range(int(ONLY), int(ONLY) + 1)
    count = int(os.environ.get("DCOMC_FUZZ_EXAMPLES") or DEFAULT_CASES[command])
    return range(count)


# --- the corpus: both examples built, and a report per host -----------------------------------


@dataclass
class Corpus:
    root: Path
    bundles: dict[str, Path]  # example stem -> bundle folder
    compiled: dict[str, Compiled]
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, bytes)
    msis: list[tuple[str, bytes]] = field(default_factory=list)
    descriptors: list[bytes] = field(default_factory=list)

    def donors(self) -> list[bytes]:
        return [data for _, data in self.files]


def report_for(compiled: Compiled, host_name: str) -> dict[str, Any]:
    """A Report-mode JSON of a PC as the engine writes it: every planned resource, one of them
    drifted."""
    host = compiled.plan.host(host_name)
    resources = [{"Id": r.id, "Compliant": i != 1, "Reason": "as planned" if i != 1 else
                  "the ACL differs", "State": {"Present": True, "Value": [1, "x"]}}
                 for i, r in enumerate(host.resources)]
    return {"Site": compiled.plan.site, "Host": host.name, "Computer": host.name,
            "Generator": f"dcomc {__version__}", "Spec": "x.yaml", "SpecSha256": compiled.sha256,
            "Time": "2024-05-06T07:08:09.1234567Z", "Resources": resources}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("fuzz-corpus")
    found = Corpus(root, {}, {})
    for spec in EXAMPLES:
        out = root / spec.stem
        result = CliRunner().invoke(cli.main, ["build", str(spec), "-o", str(out), "--no-msi"])
        assert result.exit_code == 0, result.output
        found.bundles[spec.stem] = out
        found.compiled[spec.stem] = compiled = compile_file(spec)
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            found.files.append((path.name, path.read_bytes()))
            if path.suffix == ".reg":
                for op in RegTarget().read(path.read_bytes()).ops:
                    if op.type == "REG_BINARY" and isinstance(op.data, str) and \
                            op.data.startswith(("O:", "D:")):
                        found.descriptors.append(sdbinary.sddl_to_binary(op.data))
        for host in compiled.plan.hosts:
            report = json.dumps(report_for(compiled, host.name), indent=4).encode()
            found.files.append((f"report-{host.name}.json", report))
    if not msi.missing_tools():  # MSIs too, read with msiinfo (a bundle without: --no-msi)
        out = root / "with-msi"
        result = CliRunner().invoke(cli.main, ["build", str(EXAMPLES[0]), "-o", str(out)])
        assert result.exit_code == 0, result.output
        found.msis = [(p.name, p.read_bytes()) for p in sorted(out.glob("*/*.msi"))]
    assert found.descriptors and len(found.files) > 40
    return found


# --- running and judging one case ------------------------------------------------------------


class Hang(BaseException):
    """The case ran over DEADLINE seconds."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def invoke(args: list[str], stdin: bytes | None = None) -> Result:
    # color=True: click would otherwise strip ANSI sequences that a terminal would act on
    return CliRunner().invoke(cli.main, args, input=stdin, color=True)


def judge(result: Result, as_json: bool) -> str | None:
    """What is wrong with a command's result, or None."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if result.exit_code not in (0, 1, 2):
        return f"exit code {result.exit_code}"
    # the bytes: Result.stdout reads CRLF as LF, which would hide a raw CR
    out = result.stdout_bytes.decode("utf-8", "replace")
    err = result.stderr_bytes.decode("utf-8", "replace")
    if "Traceback" in out or "Traceback" in err:
        return "a traceback in the output"
    if result.exit_code == 2:
        lines = err.splitlines()
        if not lines:
            return "exit 2 without a message"
        bad = [line for line in lines if not ERROR_LINE.match(line)]
        if bad:
            return f"an error message over more than one line: {bad[0][:120]!r}"
    elif as_json:
        try:
            json.loads(out, parse_constant=lambda name: 1 / 0)
        except (ValueError, ZeroDivisionError) as error:
            return f"--json output that is not JSON: {error}"
    for name, text in (("stdout", out), ("stderr", err)):
        for line in text.split("\n"):
            found = RAW_CONTROL.search(line)
            if found:
                return f"raw control character {found.group()!r} on {name}"
            if line.startswith(FORGED.strip()):
                return f"a line break of the input started a line on {name}: {line[:60]!r}"
    return None


@dataclass
class Campaign:
    command: str
    failures: list[str] = field(default_factory=list)
    exits: dict[int, int] = field(default_factory=dict)
    count: int = 0
    started: float = field(default_factory=time.monotonic)

    def run(self, case: int, what: list[str], args: list[str], stdin: bytes | None = None,
            keep: dict[str, bytes] | None = None) -> None:
        """One case: `args` of dcomc; `keep` names the input files to save on failure."""
        try:
            with deadline(DEADLINE):
                result = invoke(args, stdin)
            problem = judge(result, "--json" in args)
            self.exits[result.exit_code] = self.exits.get(result.exit_code, 0) + 1
        except Hang as exc:
            problem = f"hang: {exc}"
        self.count += 1
        if problem is None:
            return
        self.failures.append(f"seed {SEED} case {case} ({'; '.join(what)}): {problem}")
        if SAVE:
            folder = Path(SAVE) / f"{self.command}-{SEED}-{case}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "args.json").write_text(json.dumps(args))
            for name, data in (keep or {}).items():
                (folder / name).write_bytes(data)

    def check(self) -> None:
        took = time.monotonic() - self.started
        summary = (f"{self.command}: {self.count} cases in {took:.1f} s, exits {self.exits}, "
                   f"{len(self.failures)} failures")
        print(f"\n{summary}")
        if LOG:
            with Path(LOG).open("a", encoding="utf-8", errors="backslashreplace") as log:
                log.write("\n".join([summary, *self.failures]) + "\n")
        assert not self.failures, "\n".join(self.failures[:20]) + (
            f"\n... {len(self.failures)} failures in all" if len(self.failures) > 20 else "")


def case_rng(command: str, case: int) -> random.Random:
    return random.Random(f"{SEED}:{command}:{case}")


def specials(folder: Path) -> list[str]:
    """Files that are not regular files: a FIFO (reading it would wait forever), a device,
    and (for inspect) a folder holding a FIFO and a link to a device."""
    found = ["/dev/null"] if Path("/dev/null").exists() else []
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.json")
        found.append(str(folder / "fifo.json"))
        inner = folder / "special-dir"
        inner.mkdir()
        os.mkfifo(inner / "x.reg")
        if found[0] == "/dev/null":
            (inner / "y.psd1").symlink_to("/dev/null")
        found.append(str(inner))
    return found


# --- inspect ---------------------------------------------------------------------------------

# Names under which a mutated artifact is inspected besides its own (the name picks the reader).
OTHER_NAMES = ("x.reg", "x.inf", "x.netsh", "x-firewall.wxs", "x.wxs", "x.psd1", "x.ps1",
               "manifest.json", "x.txt")


def test_inspect_fuzz(corpus: Corpus, tmp_path: Path) -> None:
    campaign = Campaign("inspect")
    files = [(n, d) for n, d in corpus.files if not n.endswith(".psm1")]  # 150 kB: see below
    engine = [(n, d) for n, d in corpus.files if n.endswith(".psm1")][:1]
    special = specials(tmp_path)
    for case in cases("inspect"):
        rng = case_rng("inspect", case)
        mutator = Mutator(rng, corpus.donors())
        pick = rng.random()
        if pick < 0.01 and special:  # a FIFO, a device, a folder: refused or walked
            target = rng.choice(special)
            campaign.run(case, [target], ["inspect", target])
            continue
        name, data = rng.choice(engine if pick < 0.02 else corpus.msis if pick < 0.04 and
                                corpus.msis else files)
        if data.startswith(b"\xff\xfe") and rng.random() < 0.7:
            mutated, what = mutator.utf16(data)
        elif name.endswith(".json") and rng.random() < 0.6:
            mutated, what = mutator.json_(json.loads(data))
        else:
            mutated, what = mutator.bytes_(data)
        if rng.random() < 0.1:
            name = rng.choice(OTHER_NAMES)
        folder = tmp_path / str(case % 10)
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(mutated)
        args = ["inspect", str(path), *(["--json"] if rng.random() < 0.3 else [])]
        campaign.run(case, [name, *what], args, keep={name: mutated})
        path.unlink()
    campaign.check()


# --- files dcomc did not write -----------------------------------------------------------------


def test_foreign_files_fuzz(tmp_path: Path) -> None:
    """Mutated .reg (both headers, every encoding), security templates, netsh scripts, WiX v3
    and v4 sources and `reg query` output (issue 15), inspected alone, several at once (one
    of them intact: it must still be reported), and the reg query output decoded."""
    campaign = Campaign("foreign")
    files = [(p.name, p.read_bytes()) for p in sorted(FOREIGN.iterdir())
             if p.is_file() and p.suffix != ".json"]
    for case in cases("foreign"):
        rng = case_rng("foreign", case)
        mutator = Mutator(rng, [data for _, data in files])
        name, data = rng.choice(files)
        utf16 = data[:2] == b"\xff\xfe" or data[1:2] == b"\0"
        if utf16 and rng.random() < 0.7:  # the BOM-less file through the BOM: removed below
            mutated, what = mutator.utf16(data if data[:2] == b"\xff\xfe" else b"\xff\xfe" + data)
            if data[:2] != b"\xff\xfe":
                mutated = mutated.removeprefix(b"\xff\xfe")
        else:
            mutated, what = mutator.bytes_(data)
        folder = tmp_path / str(case % 10)
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(mutated)
        pick = rng.random()
        if name == "reg-query.txt" and pick < 0.7:
            args = ["sd", "decode", f"@{path}"]
        elif pick < 0.2:
            intact = FOREIGN / rng.choice(files)[0]
            args = ["inspect", str(path), str(intact), *(["--json"] if rng.random() < 0.3 else [])]
        else:
            args = ["inspect", str(path), *(["--json"] if rng.random() < 0.3 else [])]
        campaign.run(case, [name, *what], args, keep={name: mutated})
        path.unlink()
    campaign.check()


# --- sd decode -------------------------------------------------------------------------------


def test_sd_decode_fuzz(corpus: Corpus, tmp_path: Path) -> None:
    campaign = Campaign("sd")
    special = specials(tmp_path)
    for case in cases("sd"):
        rng = case_rng("sd", case)
        mutator = Mutator(rng, corpus.descriptors)
        data = rng.choice(corpus.descriptors)
        what: list[str] = []
        if rng.random() < 0.7:
            data, what = mutator.descriptor(data)
        raw = mutator.hex_text(data).encode()
        if rng.random() < 0.3:
            raw, more = mutator.bytes_(raw)
            what += more
        kind = rng.choice(([], ["--kind", "launch"], ["--kind", "access"]))
        how = rng.random()
        if how < 0.005 and special:
            target = rng.choice(special)
            campaign.run(case, [target], ["sd", "decode", f"@{target}", *kind])
            continue
        stdin: bytes | None = None
        path = tmp_path / "value.txt"
        if how < 0.4:
            args, stdin = ["sd", "decode", "-", *kind], raw
        elif how < 0.7:
            encoding = rng.choice(("raw", "raw", "utf-16-bom", "utf-8-bom"))
            if encoding == "utf-16-bom":
                raw = b"\xff\xfe" + raw.decode("utf-8", "replace").encode("utf-16-le")
                if rng.random() < 0.3:
                    raw = raw[: rng.randint(2, len(raw))]  # often an odd length
            elif encoding == "utf-8-bom":
                raw = b"\xef\xbb\xbf" + raw
            path.write_bytes(raw)
            args = ["sd", "decode", f"@{path}", *kind]
            what.append(encoding)
        else:
            args = ["sd", "decode", raw.decode("utf-8", "surrogateescape"), *kind]
        campaign.run(case, what, args, stdin, keep={"value.bin": raw})
    campaign.check()


# --- drift -----------------------------------------------------------------------------------


@pytest.fixture
def compiled_once(monkeypatch: pytest.MonkeyPatch, corpus: Corpus) -> None:
    """`drift` compiles its spec in every case; the fuzzer's input is the report, so each
    example is compiled once (the same Compiled that compile_file returns)."""
    by_path = {ROOT / "examples" / f"{stem}.yaml": c for stem, c in corpus.compiled.items()}
    monkeypatch.setattr(cli, "compile_file", lambda path, **kw: by_path[Path(path)])


def test_drift_fuzz(corpus: Corpus, tmp_path: Path, compiled_once: None) -> None:
    campaign = Campaign("drift")
    special = [s for s in specials(tmp_path) if not Path(s).is_dir()]  # click refuses those
    stems = sorted(corpus.compiled)
    for case in cases("drift"):
        rng = case_rng("drift", case)
        mutator = Mutator(rng, corpus.donors())
        stem = rng.choice(stems)
        compiled = corpus.compiled[stem]
        host = rng.choice(compiled.plan.hosts).name
        report = report_for(compiled, host)
        if rng.random() < 0.75:
            data, what = mutator.json_(report)
        else:
            data, what = mutator.bytes_(json.dumps(report, indent=4).encode())
        path = tmp_path / "report.json"
        path.write_bytes(data)
        spec = ROOT / "examples" / f"{rng.choice(stems)}.yaml"
        if rng.random() < 0.01 and special:  # a FIFO or a device as the report or the spec
            target = Path(rng.choice(special))
            spec, path = (spec, target) if rng.random() < 0.5 else (target, path)
            what.append(f"special {target}")
        args = ["drift", str(spec), str(path), *(["--json"] if rng.random() < 0.3 else [])]
        campaign.run(case, what, args, keep={"report.json": data})
    campaign.check()


# --- diff ------------------------------------------------------------------------------------


@dataclass
class Workbench:
    """A pristine bundle and a working copy whose files are changed and restored per case."""

    old: Path
    new: Path
    outside: Path  # a file outside the bundle
    lures: tuple[str, ...]  # paths a manifest may name that must never be read


def workbench(corpus: Corpus, root: Path, stem: str) -> Workbench:
    new = root / f"new-{stem}"
    shutil.copytree(corpus.bundles[stem], new)
    outside = root / "outside.txt"
    outside.write_text("secret\n")
    lures: list[str] = [str(outside), "/etc/passwd", "/dev/null", "../outside.txt",
                        "../../etc/passwd", "HMI01/../../outside.txt", "..", ".", "", "/",
                        "C:/Windows/win.ini", "C:\\Windows\\win.ini", "..\\outside.txt",
                        "a\x00b", "a" + FORGED, "\x1b[2J", "\ud800"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / f"fifo-{stem}")
        lures += [str(root / f"fifo-{stem}"), f"../fifo-{stem}"]
    (root / f"link-out-{stem}").symlink_to(outside)
    host = next(p.name for p in sorted(new.iterdir()) if p.is_dir())
    lures += [host, f"{host}/powershell"]
    return Workbench(corpus.bundles[stem], new, outside, tuple(lures))


@pytest.fixture
def pristine_once(monkeypatch: pytest.MonkeyPatch, corpus: Corpus) -> None:
    """The pristine bundle of each example is read once (it never changes); every case reads
    the mutated side through the command."""
    cached: dict[Path, compare.Side] = {}
    load_side = compare.load_side

    def load(path: Path) -> compare.Side:
        if path in corpus.bundles.values():
            if path not in cached:
                cached[path] = load_side(path)
            return cached[path]
        return load_side(path)

    monkeypatch.setattr(compare, "load_side", load)


def test_diff_fuzz(corpus: Corpus, tmp_path: Path, pristine_once: None) -> None:
    campaign = Campaign("diff")
    benches = {stem: workbench(corpus, tmp_path, stem) for stem in sorted(corpus.bundles)}
    for case in cases("diff"):
        rng = case_rng("diff", case)
        bench = benches[rng.choice(sorted(benches))]
        mutator = Mutator(rng, corpus.donors())
        files = sorted(p for p in bench.new.rglob("*") if p.is_file() and not p.is_symlink())
        manifest = bench.new / "manifest.json"
        pick = rng.random()
        target = manifest if pick < 0.5 else rng.choice(
            [p for p in files if p.suffix == ".psd1"] if pick < 0.8 else files)
        original = target.read_bytes()
        what = [str(target.relative_to(bench.new))]
        with restored(target, original):
            special = rng.random()
            if special < 0.08:
                what.append(swap_in_special(target, bench, rng))
            elif target == manifest:
                data, more = mutator.json_(json.loads(original), bench.lures)
                target.write_bytes(data)
                what += more
            elif original.startswith(b"\xff\xfe") and rng.random() < 0.6:
                data, more = mutator.utf16(original)
                target.write_bytes(data)
                what += more
            else:
                data, more = mutator.bytes_(original)
                target.write_bytes(data)
                what += more
            sides = [str(bench.old), str(bench.new)]
            if rng.random() < 0.3:
                sides.reverse()
            if rng.random() < 0.1:
                sides[sides.index(str(bench.new))] = str(manifest)
            args = ["diff", *sides, *(["--json"] if rng.random() < 0.3 else [])]
            campaign.run(case, what, args, keep={target.name: target.read_bytes()}
                         if target.is_file() and not target.is_symlink() else None)
    campaign.check()


@contextmanager
def restored(target: Path, original: bytes) -> Iterator[None]:
    try:
        yield
    finally:
        if target.is_symlink() or (target.exists() and not target.is_file()):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        target.write_bytes(original)


def swap_in_special(target: Path, bench: Workbench, rng: random.Random) -> str:
    """Replace a bundle file by something that is not a regular file of the bundle."""
    target.unlink()
    kind = rng.choice(("fifo", "dir", "link-out", "link-dev", "link-in", "missing"))
    if kind == "fifo" and hasattr(os, "mkfifo"):
        os.mkfifo(target)
    elif kind == "dir":
        target.mkdir()
    elif kind == "link-out":
        target.symlink_to(bench.outside)
    elif kind == "link-dev":
        target.symlink_to("/dev/null")
    elif kind == "link-in":  # a link inside the bundle to another of its files: allowed
        target.symlink_to(bench.new / "manifest.json")
    return kind
