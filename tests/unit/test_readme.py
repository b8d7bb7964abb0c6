"""README's quick start is what it says: the main job installs only the runtime dependencies
(the test extras hold impacket, which endpoint protection flags), the tests are the second
command, the air-gapped install takes wheels only, the same way CI installs, and every package
the main job needs is a wheel of the wheelhouse (DCOMC_WHEELHOUSE, set by .ci/run). The
offline main job is run: downloaded from the wheelhouse (standing in for PyPI), installed into a
fresh virtualenv with no index, and README's check, plan and build run with what it installed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tools import require

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SPEC = "examples/plant7-workgroup.yaml"


def quick_start() -> list[str]:
    """The shell blocks of README's Quick start, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start\n"):]
    section = section[:section.index("\n#", 1)]
    return [t.content for t in MarkdownIt().parse(section) if t.type == "fence"]


def commands(line: str) -> list[list[str]]:
    """The commands of one shell line: `a && b` is two; a comment ends the line."""
    return [shlex.split(part, comments=True) for part in line.split("&&")]


@dataclass(frozen=True)
class Pip:
    """One `pip install|download`: its options (with their values) and what it installs."""

    verb: str
    options: tuple[tuple[str, str | None], ...]
    targets: tuple[str, ...]

    def option(self, name: str) -> str | None:
        return next((value for key, value in self.options if key == name), None)


def pip_calls(line: str) -> list[Pip]:
    calls = []
    for argv in commands(line):
        if argv[:3] == ["python", "-m", "pip"]:
            argv = argv[2:]
        if argv[:1] == ["pip"]:
            calls.append(parse_pip(argv[1], argv[2:]))
    return calls


def parse_pip(verb: str, args: list[str]) -> Pip:
    options: list[tuple[str, str | None]] = []
    targets: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg in ("--find-links", "-d"):
            options.append((arg, next(rest)))
        elif arg == "-e":
            targets.append(f"-e {next(rest)}")
        elif arg.startswith("-"):
            options.append((arg, None))
        else:
            targets.append(arg)
    return Pip(verb, tuple(options), tuple(targets))


def main_job() -> str:
    return quick_start()[0]


def offline() -> tuple[list[str], list[str]]:
    """(the two download lines, the two install lines): main job first, then the tests."""
    blocks = quick_start()
    return blocks[2].splitlines(), blocks[3].splitlines()


def ci_install() -> Pip:
    lines = [line for line in CI.read_text(encoding="utf-8").splitlines()
             if "pip install" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, lines
    (call,) = pip_calls(lines[0])
    return call


# --- the two commands --------------------------------------------------------------------------


def test_a_new_user_runs_two_commands() -> None:
    blocks = quick_start()
    assert [len(b.splitlines()) for b in blocks[:2]] == [1, 1]
    dcomc = [argv for argv in commands(main_job()) if argv[0] == "dcomc"]
    assert dcomc == [["dcomc", verb, SPEC] for verb in ("check", "plan", "build")]
    assert (ROOT / SPEC).is_file()
    assert commands(blocks[1]) == [["pip", "install", "-e", ".[test]"],
                                   ["python", "-m", "pytest"]]


def test_the_main_job_installs_no_test_extras() -> None:
    (download, _), (install, _) = offline()
    calls = pip_calls(main_job()) + pip_calls(download) + pip_calls(install)
    assert [c.verb for c in calls] == ["install", "download", "install"]
    for call in calls:
        assert call.targets[0] in ("-e .", "."), call
        assert not any("[" in target for target in call.targets), call


def test_the_tests_install_the_test_extras() -> None:
    (_, download), (_, install) = offline()
    assert pip_calls(download)[0].targets[0] == ".[test]"
    assert pip_calls(install)[0].targets == ("-e .[test]",)


# --- wheel-only, as CI does it -----------------------------------------------------------------


def test_offline_installs_take_wheels_only_as_ci_does() -> None:
    _, installs = offline()
    for line in installs:
        call = pip_calls(line)[0]
        assert ("--no-index", None) in call.options
        assert call.option("--find-links") == "wheels"
    ci = ci_install()
    readme = pip_calls(installs[1])[0]
    assert ("--no-index", None) in ci.options and ci.targets == readme.targets
    assert ci.option("--find-links") == "$DCOMC_WHEELHOUSE"
    assert 'export DCOMC_WHEELHOUSE="$ROOT/../shared/wheels"' in CI.read_text(encoding="utf-8")


def test_downloads_carry_what_the_offline_install_builds_with() -> None:
    """pip download saves no build backend, but an install from source needs it: the
    download lines name the backend of pyproject (and `editables` for `-e`)."""
    backend = PYPROJECT["build-system"]["requires"]
    main, tests = (pip_calls(line)[0] for line in offline()[0])
    assert main.option("-d") == tests.option("-d") == "wheels"
    assert list(main.targets[1:]) == backend
    assert list(tests.targets[1:]) == [*backend, "editables"]


# --- the wheelhouse ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    where = os.environ.get("DCOMC_WHEELHOUSE")
    require(bool(where), "a wheelhouse named by DCOMC_WHEELHOUSE (.ci/run sets it)")
    assert where
    folder = (ROOT / where).resolve()  # a relative path is relative to the repository
    assert folder.is_dir(), f"DCOMC_WHEELHOUSE={where}: no such folder"
    return folder


Index = dict[NormalizedName, list[tuple[Version, Path]]]


def wheel_index(folder: Path) -> Index:
    """The wheels of `folder` that install on this Python, by normalized project name."""
    here = set(sys_tags())
    index: Index = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(path.name)
        if here & tags:
            index.setdefault(name, []).append((version, path))
    return index


def requires_dist(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def closure(roots: list[str], index: Index) -> tuple[dict[str, Path], list[str]]:
    """The wheel each requirement resolves to, transitively (markers for this Python, extras
    as requested), and the requirements no wheel of the index satisfies."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    todo = [(Requirement(r), frozenset({""})) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(req.name)
        fits = [(v, p) for v, p in index.get(name, []) if req.specifier.contains(v, True)]
        if not fits:
            missing.append(str(req))
            continue
        wanted = frozenset(req.extras) | {""}
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        found[name] = max(fits)[1]
        todo += [(dep, wanted) for dep in requires_dist(found[name])]
    return found, missing


@pytest.mark.parametrize("job", ["main", "tests"])
def test_every_dependency_is_a_wheel_of_the_wheelhouse(wheelhouse: Path, job: str) -> None:
    project = PYPROJECT["project"]
    roots = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    if job == "tests":
        roots += [*project["optional-dependencies"]["test"], "editables"]
    found, missing = closure(roots, wheel_index(wheelhouse))
    assert not missing, f"not a wheel of {wheelhouse} for this Python: {missing}"
    assert {"pydantic", "pydantic-core", "hatchling", "tree-sitter-powershell"} <= set(found)
    if job == "main":
        assert "impacket" not in found and "pytest" not in found


def test_closure_reports_what_the_wheelhouse_lacks(wheelhouse: Path) -> None:
    index = wheel_index(wheelhouse)
    _, missing = closure(["click>=8.1", "no-such-project", "pydantic>=99"], index)
    assert sorted(missing) == ["no-such-project", "pydantic>=99"]
    _, missing = closure(["pytest"], {k: v for k, v in index.items() if k != "pluggy"})
    assert [Requirement(m).name for m in missing] == ["pluggy"]


# --- the offline main job, run ----------------------------------------------------------------


def pip_env() -> dict[str, str]:
    """The environment without pip configuration: only the wheels named on the command line
    count (a PIP_FIND_LINKS or pip.conf of this machine could hide a missing wheel)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def test_the_offline_main_job_runs(wheelhouse: Path, tmp_path: Path) -> None:
    (download, _), (install, _) = offline()
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    env = pip_env()
    # on the connected PC: the wheelhouse stands in for PyPI
    (get,) = commands(download)
    get = [a if a != "wheels" else str(wheels) for a in get]
    run([sys.executable, "-m", *get, "--no-index", "--find-links", str(wheelhouse)], ROOT, env)
    # on the laptop: README's virtualenv and install, from those wheels alone
    venv_cmd, _, put = commands(install)
    assert venv_cmd[:3] == ["python3", "-m", "venv"]
    run([sys.executable, "-m", "venv", str(venv)], ROOT, env)
    bin_dir = venv / "bin"
    put = [a if a != "wheels" else str(wheels) for a in put]
    run([str(bin_dir / "python"), "-m", *put], ROOT, env)
    # README's main job with what was installed, in a folder of its own (build/ lands there)
    (work / "examples").mkdir(parents=True)
    shutil.copy(ROOT / SPEC, work / SPEC)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for argv in (a for a in commands(main_job()) if a[0] == "dcomc"):
        run([str(bin_dir / "dcomc"), *argv[1:]], work, env)
    assert (work / "build" / "plant7-line3" / "manifest.json").is_file()
