"""The command line's contract with people and with CI (issue 13, items 3-4): check's text,
JSON and SARIF formats, the diagnostics every --json output carries, colour on a terminal only,
did-you-mean hints, exit codes and wording, --version, shell completion."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dcomc import __version__, cli
from dcomc.cli import main
from dcomc.diagnostics import plural
from dcomc.emit.sarif import file_uri

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
SEVERAL = ROOT / "tests" / "errors" / "several-errors.yaml"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "sarif-2.1.0.json").read_text("utf-8"))
NO_COLOUR_ENV = {"NO_COLOR": None, "FORCE_COLOR": None, "TERM": None}
ANSI = "\x1b["
LAUNCH = "      OPC Users: [local_launch, remote_launch, local_activation, remote_activation]\n"


def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={**NO_COLOUR_ENV, **(env or {})})


def spec(tmp_path: Path, old: str = "", new: str = "", name: str = "spec.yaml") -> Path:
    text = PLANT7.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def with_warning(tmp_path: Path) -> Path:
    """plant7 with Everyone allowed to launch: lint warnings W611 (kepware, opcenum), no error."""
    return spec(tmp_path, LAUNCH, LAUNCH + "      Everyone: [local_launch]\n")


def one_host(tmp_path: Path) -> Path:
    text = PLANT7.read_text(encoding="utf-8")
    text = re.sub(r"  HMI01:\n.*?clients: \[hmi\].*?\n  HMI02:\n.*?clients: \[hmi\][^\n]*\n", "",
                  text, flags=re.S)
    path = tmp_path / "one.yaml"
    path.write_text(text.replace("  hmi:\n", "  hmi:\n", 1), encoding="utf-8")
    return path


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def valid_sarif(log: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")  # a test extra: the check skips without it
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(log)


# --- 1. check --format text|json|sarif -------------------------------------------------------


def test_sarif_of_errors_is_valid_and_points_at_the_spec() -> None:
    result = run("check", "--format", "sarif", SEVERAL)
    assert result.exit_code == 2
    log = as_json(result)
    valid_sarif(log)
    assert log["version"] == "2.1.0"
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "dcomc" and driver["version"]
    results = run_["results"]
    assert [r["ruleId"] for r in results] == ["E206", "E102", "E216", "E221", "E101"]
    assert {r["level"] for r in results} == {"error"}
    rules = [rule["id"] for rule in driver["rules"]]
    assert rules == sorted(set(rules)) == sorted({r["ruleId"] for r in results})
    assert all(rule["helpUri"] == f"docs/errors.md#{rule['id']}" for rule in driver["rules"])
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    where = results[1]["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == SEVERAL.as_uri()
    assert where["region"] == {"startLine": 22, "startColumn": 7}
    assert "did you mean 'opcuser'?" in results[1]["message"]["text"]
    assert "1 error" not in result.stderr and "5 errors" in result.stderr


@pytest.mark.parametrize(("key", "value"), [("level", "fatal"), ("startLine", 0),
                                            ("message", None), ("file", "x")])
def test_the_sarif_schema_refuses_what_sarif_does(key: str, value: Any) -> None:
    """The shipped schema is a subset: it must still refuse a wrong level, a line 0, a result
    without a message and a property SARIF does not define."""
    jsonschema = pytest.importorskip("jsonschema")
    log = as_json(run("check", "--format", "sarif", SEVERAL))
    result = log["runs"][0]["results"][0]
    target = result["locations"][0]["physicalLocation"]["region"] if key == "startLine" \
        else result
    if value is None:
        del target[key]
    else:
        target[key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SARIF_SCHEMA).validate(log)


def test_sarif_of_a_warning_and_of_a_clean_spec(tmp_path: Path) -> None:
    warned = run("check", "--format", "sarif", with_warning(tmp_path))
    assert warned.exit_code == 0, warned.output
    log = as_json(warned)
    valid_sarif(log)
    assert {(r["ruleId"], r["level"]) for r in log["runs"][0]["results"]} == {("W611", "warning")}
    clean = run("check", "--format", "sarif", PLANT7)
    assert clean.exit_code == 0 and clean.stderr == ""
    assert as_json(clean)["runs"][0]["results"] == []
    assert as_json(clean)["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_uris_of_relative_and_odd_paths(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert file_uri("specs/line 3.yaml") == "specs/line%203.yaml"
    assert file_uri("a:b.yaml") == "a%3Ab.yaml"  # not a URI scheme
    assert file_uri("/srv/x#1.yaml") == "file:///srv/x%231.yaml"
    monkeypatch.chdir(tmp_path)
    spec(tmp_path, "run_as: opcuser", "run_as: opcusr", name="odd name.yaml")
    log = as_json(run("check", "--format", "sarif", "odd name.yaml"))
    valid_sarif(log)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]}
    assert uris == {"odd%20name.yaml"}


def test_check_json_format(tmp_path: Path) -> None:
    broken = run("check", "--format", "json", SEVERAL)
    assert broken.exit_code == 2
    data = as_json(broken)
    assert data["ok"] is False and data["hosts"] is None and data["spec"] == str(SEVERAL)
    assert data["diagnostics"][0] == {
        "file": str(SEVERAL), "line": 13, "col": 17, "severity": "error", "code": "E206",
        "message": "literal password for 'opcuser': a spec never holds a password; write "
                   "`password: prompt` (asked at install time)"}
    assert broken.stderr == f"error: {SEVERAL}: 5 errors (listed in the JSON output)\n"
    fine = as_json(run("check", "--format", "json", with_warning(tmp_path)))
    assert fine["ok"] is True and fine["hosts"] == 3
    assert [d["code"] for d in fine["diagnostics"]] == ["W611", "W611"]


def test_a_missing_spec_is_a_located_error_in_every_format(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    text = run("check", missing)
    assert text.exit_code == 2 and f"{missing}:1:1: error: cannot read spec" in text.stderr
    assert "Usage:" not in text.output
    log = as_json(run("check", "--format", "sarif", missing))
    assert log["runs"][0]["results"][0]["ruleId"] == "E001"


# --- 2. --json outputs carry their diagnostics ---------------------------------------------


def test_plan_json_carries_warnings_instead_of_stderr(tmp_path: Path) -> None:
    result = run("plan", with_warning(tmp_path), "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = as_json(result)
    assert {h["name"] for h in data["hosts"]} == {"SCADA01", "HMI01", "HMI02"}
    assert {(d["code"], d["severity"]) for d in data["diagnostics"]} == {("W611", "warning")}
    text = run("plan", with_warning(tmp_path))
    assert "warning: " in text.stderr and "[W611]" in text.stderr


def test_plan_json_errors_come_as_json_with_exit_2(tmp_path: Path) -> None:
    result = run("plan", SEVERAL, "--json")
    assert result.exit_code == 2
    data = as_json(result)
    assert [d["code"] for d in data["diagnostics"]] == ["E206", "E102", "E216", "E221", "E101"]
    assert all(d["file"] == str(SEVERAL) and d["line"] for d in data["diagnostics"])
    assert result.stderr == "error: 5 errors (listed in the JSON output)\n"
    unknown = run("plan", PLANT7, "--host", "NOPE", "--json")
    assert unknown.exit_code == 2
    assert as_json(unknown)["diagnostics"][0]["message"].startswith("no host 'NOPE'")


@pytest.mark.parametrize("args", [("catalog", "--json"), ("explain", "0x80070005", "--json"),
                                  ("diff", PLANT7, PLANT7, "--json")])
def test_every_json_output_has_a_diagnostics_list(args: tuple[str | Path, ...]) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert as_json(result)["diagnostics"] == []


def test_catalog_and_inspect_json_wrap_their_maps(tmp_path: Path) -> None:
    assert "kepserverex-v6" in as_json(run("catalog", "--json"))["products"]
    out = tmp_path / "out"
    assert run("build", PLANT7, "-o", out, "--no-msi").exit_code == 0
    data = as_json(run("inspect", out / "manifest.json", "--json"))
    assert data["files"][str(out / "manifest.json")]["kind"] == "manifest"
    assert data["diagnostics"] == []


@pytest.mark.parametrize("args", [
    ("inspect", "{tmp}/missing.reg", "--json"),
    ("explain", "0x1234", "--json"),
    ("diff", SEVERAL, PLANT7, "--json"),
    ("drift", PLANT7, "{tmp}/missing.json", "--json"),
])
def test_json_errors_are_json_on_stdout_and_one_line_on_stderr(
        tmp_path: Path, args: tuple[str | Path, ...]) -> None:
    result = run(*(str(a).format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    diagnostics = as_json(result)["diagnostics"]
    assert diagnostics and diagnostics[-1]["severity"] == "error"
    assert set(diagnostics[-1]) == {"file", "line", "col", "severity", "code", "message"}
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")


def test_explain_json_with_a_spec_carries_its_warnings(tmp_path: Path) -> None:
    result = run("explain", "0x80070005", "--spec", with_warning(tmp_path), "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert [d["code"] for d in as_json(result)["diagnostics"]] == ["W611", "W611"]
    unknown = as_json(run("explain", "0x1234", "--json"))
    assert unknown["known_codes"]
    assert "unknown code '0x1234'" in unknown["diagnostics"][0]["message"]


# --- 3. colour -------------------------------------------------------------------------------


def test_no_colour_when_not_a_terminal(tmp_path: Path) -> None:
    assert ANSI not in run("check", with_warning(tmp_path)).output
    assert ANSI not in run("check", SEVERAL).output


def test_force_color_colours_errors_red_and_warnings_yellow(tmp_path: Path) -> None:
    errors = run("check", SEVERAL, env={"FORCE_COLOR": "1"})
    assert "\x1b[31m\x1b[1merror\x1b[0m: " in errors.stderr
    assert "\x1b[31m\x1b[1m5 errors\x1b[0m" in errors.stderr
    warned = run("check", with_warning(tmp_path), env={"FORCE_COLOR": "1"})
    assert "\x1b[33m\x1b[1mwarning\x1b[0m: " in warned.stderr


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "FORCE_COLOR": "1"}, {"NO_COLOR": ""},
                                 {"FORCE_COLOR": "0"}, {"FORCE_COLOR": "false"}])
def test_no_color_wins(env: dict[str, str | None]) -> None:
    assert ANSI not in run("check", SEVERAL, env=env).output


def test_diff_signs_are_coloured(tmp_path: Path) -> None:
    new = spec(tmp_path, "    address: 10.7.3.22\n", "    address: 10.7.3.23\n")
    result = run("diff", PLANT7, new, env={"FORCE_COLOR": "1"})
    assert result.exit_code == 1
    assert "\x1b[33m~ host HMI02\x1b[0m" in result.stdout
    assert '\x1b[33m    ~ Address: "10.7.3.22" -> "10.7.3.23"\x1b[0m' in result.stdout
    assert "old: " in result.stdout and "\x1b[32m" not in result.stdout  # nothing added
    added = run("diff", one_host(tmp_path), PLANT7, env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[32m+ host HMI01" in added
    removed = run("diff", PLANT7, one_host(tmp_path), env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[31m- host HMI01" in removed
    assert ANSI not in run("diff", PLANT7, new).stdout


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stdout", _Tty())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli.colour() and not cli.colour(err=True)  # each stream decides for itself
    monkeypatch.setenv("TERM", "dumb")
    assert not cli.colour()
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert cli.colour(err=True)
    monkeypatch.setenv("NO_COLOR", "")
    assert not cli.colour() and not cli.colour(err=True)


# --- 4. did you mean --------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "hint"), [
    (LAUNCH, LAUNCH + "      Administrator: [local_launch]\n", "did you mean 'Administrators'?"),
    ("members: [opcuser, opcsvc]", "members: [opcusr, opcsvc]", "did you mean 'opcuser'?"),
    ("run_as: opcuser", "run_as: OPCUSR", "did you mean 'opcuser'?"),
    ("identity: workgroup", "identity: workgrop", "did you mean 'workgroup'?"),
    ("process_mode: service ", "process_mode: servise ", "did you mean 'service'?"),
])
def test_did_you_mean(tmp_path: Path, old: str, new: str, hint: str) -> None:
    result = run("check", spec(tmp_path, old, new))
    assert result.exit_code == 2
    assert hint in result.stderr.splitlines()[0], result.stderr


def test_no_hint_for_a_name_far_from_every_candidate(tmp_path: Path) -> None:
    result = run("check", spec(tmp_path, "run_as: opcuser", "run_as: plcoperator"))
    assert "unknown principal 'plcoperator'" in result.stderr
    assert "did you mean" not in result.stderr


# --- 5. exit codes and wording ---------------------------------------------------------------


def test_inspect_of_a_file_that_is_no_artifact_is_exit_2_in_one_line(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    for path in (passwd, tmp_path / "missing"):
        result = run("inspect", path)
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert "not an artifact dcomc reads" in run("inspect", passwd).stderr


def test_a_bundle_folder_may_hold_files_inspect_does_not_know(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("build", PLANT7, "-o", out, "--no-msi").exit_code == 0
    (out / "notes.txt").write_text("hello", encoding="utf-8")
    result = run("inspect", out)
    assert result.exit_code == 0 and f"== {out / 'notes.txt'} (unknown)" in result.stdout


def test_build_without_wixl_fails_unless_no_msi(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from dcomc_targets import msi

    monkeypatch.setattr(msi, "missing_tools", lambda: ["wixl"])
    out = tmp_path / "out"
    result = run("build", PLANT7, "-o", out)
    assert result.exit_code == 2
    assert result.stderr == ("error: wixl not found: install msitools/wixl or pass --no-msi\n"
                             "1 error; nothing written\n")
    assert not out.exists()
    built = run("build", PLANT7, "-o", out, "--no-msi")
    assert built.exit_code == 0 and built.stdout == f"wrote {out}: 3 hosts, 30 artifacts\n"


def test_build_without_wixl_lists_the_e401_errors_too(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dcomc_targets import msi

    monkeypatch.setattr(msi, "missing_tools", lambda: ["wixl"])
    result = run("build", PLANT7, "-o", tmp_path / "out", "--self-contained")
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and lines[-2].startswith("error: wixl not found")
    count = sum(1 for line in lines if ": error: " in line)
    assert count > 1 and lines[-1] == f"{count + 1} errors; nothing written"


def test_plurals_and_nothing_written_only_from_build(tmp_path: Path) -> None:
    result = run("check", one_host(tmp_path))
    assert result.exit_code == 0 and result.stdout.endswith(": ok (1 host)\n")
    assert run("check", PLANT7).stdout.endswith(": ok (3 hosts)\n")
    assert run("check", with_warning(tmp_path)).stdout.endswith(": ok (3 hosts, 2 warnings)\n")
    assert (plural(1, "warning"), plural(1200, "error")) == ("1 warning", "1,200 errors")
    one_error = run("check", spec(tmp_path, "run_as: opcuser", "run_as: nobody"))
    assert one_error.stderr.splitlines()[-1] == "1 error"
    read_only = (("check", SEVERAL), ("plan", SEVERAL),
                 ("explain", "0x80070005", "--spec", SEVERAL))
    for args in read_only:
        failed = run(*args)
        assert failed.exit_code == 2 and "nothing written" not in failed.output, args
        assert failed.stderr.splitlines()[-1] == "5 errors"
    built = run("build", SEVERAL, "-o", tmp_path / "o")
    assert built.stderr.splitlines()[-1] == "5 errors; nothing written"


def test_version_lists_python_wixl_and_msitools(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = run("--version").stdout.splitlines()
    assert lines[0] == f"dcomc {__version__}"
    assert lines[1] == f"Python {sys.version.split()[0]}"
    assert re.fullmatch(r"wixl (\d+(\.\d+)+|not found)", lines[2])
    assert re.fullmatch(r"msitools \(msiinfo\) (\d+(\.\d+)+|not found)", lines[3])
    monkeypatch.setenv("PATH", "/nonexistent")
    lines = run("--version").stdout.splitlines()
    assert lines[2:] == ["wixl not found", "msitools (msiinfo) not found"]


# --- 6. shell completion ----------------------------------------------------------------------


def test_bash_completion_script_and_readme() -> None:
    script = Path(sys.executable).parent / "dcomc"
    if not script.is_file():
        pytest.skip("the dcomc console script is not installed beside this Python")
    env = {**os.environ, "_DCOMC_COMPLETE": "bash_source"}
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, check=False,
                          timeout=60)
    assert proc.returncode == 0 and "_dcomc_completion" in proc.stdout
    env.update(_DCOMC_COMPLETE="bash_complete", COMP_WORDS="dcomc ch", COMP_CWORD="1")
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, check=False,
                          timeout=60)
    assert "plain,check" in proc.stdout.splitlines()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "_DCOMC_COMPLETE=bash_source dcomc" in readme


# --- init and a site's drift ---------------------------------------------------------------


def test_init_writes_a_starter_that_checks(tmp_path: Path) -> None:
    target = tmp_path / "site.yaml"
    result = run("init", target)
    assert result.exit_code == 0, result.stderr
    assert run("check", "--strict", target).exit_code == 0
    again = run("init", target)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    target.write_text("mine", encoding="utf-8")
    assert run("init", "--force", target).exit_code == 0
    assert target.read_text(encoding="utf-8") != "mine"


def test_drift_of_a_folder_of_reports_is_the_site() -> None:
    reports = ROOT / "examples" / "reports"
    result = run("drift", PLANT7, reports, "--json")
    assert result.exit_code == 1, result.stderr  # the sample HMI02 drifted after Apply
    data = json.loads(result.stdout)
    assert data["diagnostics"] == []
    one = run("drift", PLANT7, reports / "HMI01.json")
    assert one.exit_code == 0, one.stdout + one.stderr


@pytest.mark.parametrize("args", [("build",), ("check", "--format", "xml", "x"), ("nope",),
                                  ("sd", "decode"), ("plan", "--host")])
def test_usage_errors_are_one_line(args: tuple[str, ...]) -> None:
    """Click's own usage errors (a missing argument, a bad choice, an unknown command) are one
    `error:` line naming the help to read, exit 2 — not click's three lines."""
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "--help`)" in lines[0] and result.stdout == ""


FORGED = "HMI01.wxs:1: bad\nwrote build/x: 3 hosts, 30 artifacts\x1b[2J\u202e"


def _one_escaped_line(result: Result, code: int) -> str:
    """Exit `code`, one stderr line, no raw control character: a value cannot forge a line."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not re.search("[\x00-\x1f\x7f\u202e]", lines[0]), lines[0]
    return lines[0]


def test_build_escapes_an_msi_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wixl's own output (its stderr, which names spec values) ends the MsiError message."""
    from dcomc_targets import msi

    def failing(host_dir: Path, host: str) -> Path:
        raise msi.MsiError(f"{host}: wixl failed (1): {FORGED}")

    monkeypatch.setattr(msi, "missing_tools", lambda: [])
    monkeypatch.setattr(msi, "run_wixl", failing)
    out = tmp_path / "out"
    line = _one_escaped_line(run("build", PLANT7, "-o", out), 1)
    assert "wixl failed (1): HMI01.wxs:1: bad\\x0awrote build/x" in line
    assert line.endswith("\\x1b[2J\\u202e; nothing written") and not out.exists()


@pytest.mark.parametrize("no_msi", [True, False], ids=["epoch", "msi-epoch"])
def test_build_escapes_a_source_date_epoch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                no_msi: bool) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1\n" + FORGED)
    out = tmp_path / "out"
    args = ["--no-msi"] if no_msi else []
    line = _one_escaped_line(run("build", PLANT7, "-o", out, *args), 2)
    assert "SOURCE_DATE_EPOCH=" in line and not out.exists()
