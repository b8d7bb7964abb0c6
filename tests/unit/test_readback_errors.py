"""Read-back commands never end in a traceback or a hang (issue 17, item 3).

One test per crash class the read-back fuzzers (tests/fuzz/test_readback_fuzz.py) and the
issue's attack run found in `dcomc inspect`, `sd decode`, `drift` and `diff`: each malformed
input is a one-line error with exit 2. `diff` and `drift` read only regular files, and `diff`
only files inside the bundle. Each test failed before its fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dcomc import __version__
from dcomc.cli import main
from dcomc.diagnostics import CONTROL_CHARS
from dcomc.pipeline import compile_file
from dcomc.windows.sd import Ace, SecurityDescriptor
from dcomc.windows.sdbinary import sddl_to_binary, to_binary

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
RAW = re.compile(f"[{CONTROL_CHARS}]")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


class Hang(BaseException):  # not an Exception: the runner must not catch it
    pass


@contextmanager
def deadline(seconds: int = 10) -> Iterator[None]:
    """A hang (a FIFO opened for reading waits for a writer forever) fails the test."""
    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(*args: str | Path, stdin: bytes | None = None) -> Result:
    with deadline():
        return CliRunner().invoke(main, [str(a) for a in args], input=stdin, color=True)


def printable(result: Result) -> None:
    """No exception, and every output line free of raw control and bidi characters."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception), result.output)
    for stream in (result.stdout_bytes, result.stderr_bytes):
        for line in stream.decode("utf-8").split("\n"):
            assert RAW.search(line) is None, line


def refused(result: Result, *needles: str) -> str:
    """Exit 2 with exactly one line on stderr holding each needle; that line."""
    printable(result)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "/")), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("readback") / "bundle"
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), "--no-msi"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(bundle: Path, tmp_path: Path) -> Path:
    """A copy of the bundle that a test may damage."""
    return Path(shutil.copytree(bundle, tmp_path / "copy", symlinks=True))


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    found = change(data)
    path.write_text(found if isinstance(found, str) else json.dumps(data), encoding="utf-8")


def report(**changes: Any) -> dict[str, Any]:
    host = compile_file(PLANT7).plan.host("SCADA01")
    data = {"Site": "plant7-line3", "Host": "SCADA01", "Computer": "SCADA01",
            "Generator": f"dcomc {__version__}", "Time": "2024-05-06T07:08:09Z",
            "Resources": [{"Id": r.id, "Compliant": True, "Reason": "as planned",
                           "State": None} for r in host.resources]}
    data.update(changes)
    return data


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE_NUMBER = "9" * 5000


# --- sd decode -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"01\xff00",  # not UTF-8
    b"\xff\xfe0\x001\x000",  # UTF-16 cut in the middle of a character
    b"\xff\xfe" + "\ud800".encode("utf-16-le", "surrogatepass"),  # a lone surrogate
], ids=["utf-8", "odd-utf-16", "surrogate"])
def test_sd_decode_of_undecodable_text(tmp_path: Path, raw: bytes) -> None:
    """Class: UnicodeDecodeError from @FILE or standard input."""
    refused(run("sd", "decode", f"@{write(tmp_path / 'v.txt', raw)}"), "not UTF-8 or UTF-16")
    refused(run("sd", "decode", "-", stdin=raw), "standard input: not UTF-8 or UTF-16")


def test_sd_decode_of_ace_flags_sddl_cannot_write() -> None:
    """Class: an SDError from writing SDDL, after the input was read (ACE flag 0x20)."""
    ace = Ace("S-1-5-32-544", 0x1F, True, 0x20)
    data = to_binary(SecurityDescriptor(None, None, (ace,)))
    refused(run("sd", "decode", data.hex()), "ACE flags 0x20")


@pytest.mark.parametrize("value", ["-1", "-0102", "-x"])
def test_sd_decode_of_a_value_that_starts_with_a_dash(value: str) -> None:
    """Class (long fuzz run): click read `-1...` as an unknown option and printed its usage
    text (four lines)."""
    refused(run("sd", "decode", value), "non-hex character '-' at digit 0")


@needs_fifo
def test_sd_decode_of_a_fifo(tmp_path: Path) -> None:
    """Class: a hang on @FIFO."""
    os.mkfifo(tmp_path / "fifo")
    refused(run("sd", "decode", f"@{tmp_path / 'fifo'}"), "is a FIFO", "not a regular file")


def test_sd_decode_caps_standard_input_as_it_caps_a_file(tmp_path: Path) -> None:
    """Class: standard input read whole, however large (64 MiB is @FILE's cap)."""
    raw = b"0" * (64 * 2**20 + 1)
    refused(run("sd", "decode", f"@{write(tmp_path / 'v.txt', raw)}"),
            "the value file is larger than 64 MiB; refused")
    refused(run("sd", "decode", "-", stdin=raw),
            "standard input: the value is larger than 64 MiB; refused")


def test_sd_decode_reads_standard_input_as_bytes() -> None:
    value = sddl_to_binary("O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)").hex().encode()
    result = run("sd", "decode", "-", stdin=b"\xef\xbb\xbf" + value + b"\r\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)\n")


def test_sd_decode_still_reads_utf16_reg_export(tmp_path: Path) -> None:
    value = '"LaunchPermission"=hex:' + ",".join(
        f"{b:02x}" for b in sddl_to_binary("O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)"))
    path = write(tmp_path / "v.txt", b"\xff\xfe" + value.encode("utf-16-le"))
    result = run("sd", "decode", f"@{path}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)\n")


# --- inspect ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "needle"), [
    ("[1, 2]", "not a JSON object"),
    ("42", "not a JSON object"),
    (DEEP_JSON, "nested deeper than 64 levels"),
    ('{"a": ' + HUGE_NUMBER + "}", "a number of 5000 digits"),
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": 1e999}', "out of range"),
], ids=["list", "number", "deep", "huge-number", "nan", "infinity"])
def test_inspect_of_a_malformed_manifest(tmp_path: Path, text: str, needle: str) -> None:
    """Class: TypeError, RecursionError, ValueError (digit limit) from manifest.json."""
    refused(run("inspect", write(tmp_path / "manifest.json", text)), needle)


@pytest.mark.parametrize("as_json", [False, True])
def test_inspect_prints_hostile_text_escaped(tmp_path: Path, as_json: bool) -> None:
    """Class: escape sequences, bidi controls and newlines of an artifact reached the terminal,
    and a lone surrogate (a JSON escape) ended in UnicodeEncodeError."""
    manifest = '{"site": "a\\u001b[2Jb\\u202ec", "spec": "\\ud800", "dcomc": "x\\ny"}'
    result = run("inspect", write(tmp_path / "manifest.json", manifest),
                 *(["--json"] if as_json else []))
    printable(result)
    assert result.exit_code == 0, result.output
    if as_json:  # the same data, every character escaped that would not print
        assert json.loads(result.stdout)["files"][str(tmp_path / "manifest.json")] == {
            "kind": "manifest", "site": "a\x1b[2Jb\u202ec", "spec": "\ud800", "dcomc": "x\ny"}
    else:
        assert "site: a\\x1b[2Jb\\u202ec" in result.stdout
        assert "spec: \\ud800" in result.stdout and "dcomc: x\\x0ay" in result.stdout


def test_inspect_of_a_reg_value_with_an_escape_sequence(bundle: Path, tmp_path: Path) -> None:
    reg = bundle / "SCADA01" / "reg" / "SCADA01.reg"
    text = reg.read_bytes().decode("utf-16")
    text = text.replace('"EnableDCOM"="Y"', '"EnableDCOM"="Y\x1b]0;owned\x07"')
    result = run("inspect", write(tmp_path / "SCADA01.reg", b"\xff\xfe"
                                  + text.lstrip("\ufeff").encode("utf-16-le")))
    printable(result)
    assert "data: Y\\x1b]0;owned\\x07" in result.stdout


@pytest.mark.parametrize("name", ["HMI01.wxs", "HMI01-firewall.wxs"])
def test_inspect_of_xml_whose_error_spans_lines(bundle: Path, tmp_path: Path,
                                                name: str) -> None:
    """Class: lxml's message holds the offending source line: two lines of error output."""
    source = next(bundle.rglob(name)).read_bytes()
    broken = source.replace(b"<!--", b"<!--\n--x", 1)
    refused(run("inspect", write(tmp_path / name, broken)), "not well-formed XML")


def test_inspect_of_a_fragment_the_schema_refuses(bundle: Path, tmp_path: Path) -> None:
    """Class: the schema's error log is several lines."""
    source = (bundle / "HMI01" / "firewall" / "HMI01-firewall.wxs").read_bytes()
    broken = source.replace(b"<fire:FirewallException ", b"<fire:FirewallException Bad='1' ")
    line = refused(run("inspect", write(tmp_path / "x-firewall.wxs", broken)),
                   "WiX fragment invalid: ")
    assert "more)" in line


def test_inspect_of_deeply_nested_powershell_data(tmp_path: Path) -> None:
    """Class: RecursionError reading nested literals; now refused as data and shown as a
    script."""
    text = "@{ A = " + "@(" * 3000 + "1" + ")" * 3000 + " }\r\n"
    result = run("inspect", write(tmp_path / "x.psd1", b"\xef\xbb\xbf" + text.encode()))
    printable(result)
    assert result.exit_code == 0, result.output
    assert "(powershell-script)" in result.stdout


def test_inspect_of_garbled_powershell_is_bounded(tmp_path: Path) -> None:
    """Class: a 300 kB garbled data file took 15 s (three full parses with error recovery);
    now one parse that stops at the first error, and a script view within 2 s."""
    text = "@{\r\n    A = 'x'\r\n" + '{"a":' * 60_000 + "$\r\n}\r\n"
    result = run("inspect", write(tmp_path / "x.psd1", b"\xef\xbb\xbf" + text.encode()))
    printable(result)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        refused(result, "garbled")


def test_inspect_of_a_huge_inf_value_type(bundle: Path, tmp_path: Path) -> None:
    """Class: Python's digit-limit message (a 5000-digit value type), and error lines as long
    as the input they quote."""
    inf = (bundle / "SCADA01" / "secedit" / "SCADA01.inf").read_bytes().decode("utf-16")
    text = inf.lstrip("\ufeff").replace("=4,", "=" + HUGE_NUMBER + ",", 1)
    assert text != inf.lstrip("\ufeff")
    line = refused(run("inspect", write(tmp_path / "x.inf",
                                        b"\xff\xfe" + text.encode("utf-16-le"))),
                   "INF: bad registry value type '99999")
    assert len(line) <= 500


@needs_fifo
def test_inspect_of_a_fifo(tmp_path: Path) -> None:
    """Class: a hang on a FIFO named on the command line."""
    os.mkfifo(tmp_path / "x.reg")
    refused(run("inspect", tmp_path / "x.reg"), "is a FIFO", "not a regular file")


def test_inspect_of_a_device() -> None:
    refused(run("inspect", "/dev/null"), "is a device, not a regular file")


# --- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "needle"), [
    (DEEP_JSON, "nested deeper than 64 levels"),
    (json.dumps(report()).replace('"Time": "2024-05-06T07:08:09Z"', '"Time": ' + DEEP_JSON),
     "nested deeper than 64 levels"),
    (json.dumps(report()).replace('"State": null', '"State": ' + HUGE_NUMBER, 1),
     "a number of 5000 digits"),
    (json.dumps(report()).replace('"State": null', '"State": NaN', 1), "NaN"),
    (json.dumps(report()).replace('"State": null', '"State": -1e999', 1), "out of range"),
], ids=["deep", "deep-inside", "huge-number", "nan", "infinity"])
def test_drift_of_a_malformed_report(tmp_path: Path, text: str, needle: str) -> None:
    """Class: RecursionError (the issue's 65 of 1,500), ValueError of Python's digit limit,
    and NaN/Infinity, which --json printed as invalid JSON."""
    refused(run("drift", PLANT7, write(tmp_path / "r.json", text)), "not a JSON report", needle)


@pytest.mark.parametrize("as_json", [False, True])
def test_drift_prints_hostile_report_text_escaped(tmp_path: Path, as_json: bool) -> None:
    """Class: a lone surrogate in a report ended in UnicodeEncodeError; escape sequences and
    bidi controls of a report reached the terminal."""
    data = report(Computer="PC\x1b[2J", Time="\u202enoon", Generator="dcomc \ud800")
    data["Resources"][0].update(Compliant=False, Reason="bad\r\nerror: forged")
    text = json.dumps(data)  # ensure_ascii: the surrogate as an escape, as PowerShell writes
    result = run("drift", PLANT7, write(tmp_path / "r.json", text),
                 *(["--json"] if as_json else []))
    printable(result)
    assert result.exit_code == 1, result.output
    if as_json:
        assert json.loads(result.stdout)["generator"] == "dcomc \ud800"
    else:
        assert "PC PC\\x1b[2J" in result.stdout and "dcomc \\ud800" in result.stdout
        assert "drifted: bad\\x0d\\x0aerror: forged" in result.stdout


@needs_fifo
@pytest.mark.parametrize("which", ["report", "spec"])
def test_drift_of_a_fifo(tmp_path: Path, which: str) -> None:
    """Class: a hang on a FIFO given as the report or the spec."""
    fifo = tmp_path / ("r.json" if which == "report" else "s.yaml")
    os.mkfifo(fifo)
    args = (PLANT7, fifo) if which == "report" else (fifo, write(tmp_path / "r.json",
                                                                 json.dumps(report())))
    refused(run("drift", *args), "is a FIFO", "not a regular file")


def test_drift_of_a_device() -> None:
    refused(run("drift", PLANT7, "/dev/null"), "the report is a device, not a regular file")


# --- diff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "needle"), [
    (lambda m: DEEP_JSON, "nested deeper than 64 levels"),
    (lambda m: json.dumps(m).replace('"format": 1', '"format": ' + HUGE_NUMBER),
     "a number of 5000 digits"),
    (lambda m: m.update(review=True), "`review` is a boolean, not a list"),
    (lambda m: m.update(review=-1), "`review` is a number, not a list"),
    (lambda m: m["spec"].update(sha256=-1), "`spec.sha256` is a number, not a string"),
    (lambda m: m.update(spec=[1]), "`spec` is a list, not an object"),
    (lambda m: m.update(dcomc=["x"]), "`dcomc` is a list, not a string"),
    (lambda m: m["hosts"].update(HMI01=3), "`hosts.HMI01` is a number, not an object"),
    (lambda m: m["hosts"]["HMI01"].update(artifacts={"a": 1}),
     "`hosts.HMI01`.artifacts is an object, not a list"),
    (lambda m: m["hosts"]["HMI01"]["artifacts"].append(7),
     "is a number, not an object"),
], ids=["deep", "huge-number", "review-bool", "review-int", "sha256-int", "spec-list",
        "version-list", "host-int", "artifacts-object", "artifact-int"])
def test_diff_of_a_malformed_manifest(copy: Path, bundle: Path,
                                      change: Callable[[dict[str, Any]], Any],
                                      needle: str) -> None:
    """Class: RecursionError, the digit limit's ValueError and TypeErrors (slicing, iterating)
    on a manifest of the wrong shape."""
    edit_manifest(copy, change)
    refused(run("diff", bundle, copy), "manifest.json", needle)


@pytest.mark.parametrize("path", [
    "../outside.txt", "../../../../../../etc/passwd", "/etc/passwd", "HMI01/../../outside.txt",
    "C:/Windows/win.ini", "HMI01\\..\\..\\outside.txt", "a\x00b", "", ".",
], ids=["dotdot", "etc-passwd", "absolute", "inner-dotdot", "drive", "backslash", "nul",
        "empty", "dot"])
@pytest.mark.parametrize("where", ["review", "psd1"])
def test_diff_never_opens_a_path_outside_the_bundle(copy: Path, bundle: Path, path: str,
                                                     where: str) -> None:
    """Class: a manifest's path was opened wherever it led (and one with NUL raised
    ValueError: embedded null byte)."""
    (copy.parent / "outside.txt").write_text("secret")

    def point(m: dict[str, Any]) -> None:
        arts = m["review"] if where == "review" else m["hosts"]["HMI01"]["artifacts"]
        art = next(a for a in arts if where == "review" or a["kind"] == "powershell-data")
        art["path"] = path

    edit_manifest(copy, point)
    if path:
        refused(run("diff", bundle, copy), "manifest.json: the manifest names",
                "which is not a path inside the bundle")
    else:
        refused(run("diff", bundle, copy), "manifest.json: not a dcomc manifest: ",
                "has no `path`")


def test_diff_refuses_a_host_name_that_leaves_the_bundle(copy: Path, bundle: Path) -> None:
    """A host without a data file in its artifacts is read at <host>/powershell/<host>.psd1:
    the host name must not lead out either."""
    def rename(m: dict[str, Any]) -> None:
        m["hosts"]["../../x"] = {"artifacts": []}

    edit_manifest(copy, rename)
    refused(run("diff", bundle, copy), "names '../../x/powershell/../../x.psd1'")


@needs_fifo
@pytest.mark.parametrize("rel", ["HMI01/powershell/HMI01.psd1", "HMI01/secedit/HMI01.inf",
                                 "manifest.json"])
def test_diff_of_a_fifo_in_the_bundle(copy: Path, bundle: Path, rel: str) -> None:
    """Class: diff hung on a FIFO where a listed file was."""
    (copy / rel).unlink()
    os.mkfifo(copy / rel)
    refused(run("diff", bundle, copy), "is a FIFO", "not a regular file")


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_diff_of_a_folder_or_device_in_the_bundle(copy: Path, bundle: Path, kind: str) -> None:
    rel = copy / "HMI01" / "secedit" / "HMI01.inf"
    rel.unlink()
    if kind == "folder":
        rel.mkdir()
    else:
        rel.symlink_to("/dev/null")  # a device (a link inside: where it leads is refused)
    refused(run("diff", bundle, copy), "HMI01.inf")


@pytest.mark.parametrize("rel", ["HMI01/powershell/HMI01.psd1", "HMI01/reg/HMI01.reg",
                                 "manifest.json"])
def test_diff_refuses_a_symlink_out_of_the_bundle(copy: Path, bundle: Path, rel: str) -> None:
    """Class: a listed file that is a link to a file outside was read."""
    outside = copy.parent / "outside"
    outside.write_bytes((copy / rel).read_bytes())
    (copy / rel).unlink()
    (copy / rel).symlink_to(outside)
    refused(run("diff", bundle, copy), "leads outside the bundle", "refused")


def test_diff_follows_a_symlink_inside_the_bundle(copy: Path, bundle: Path) -> None:
    moved = copy / "HMI01" / "reg" / "moved.bin"
    (copy / "HMI01" / "reg" / "HMI01.reg").rename(moved)
    (copy / "HMI01" / "reg" / "HMI01.reg").symlink_to(moved)
    result = run("diff", bundle, copy)
    printable(result)
    assert result.exit_code == 1, result.output  # moved.bin is unlisted: a difference
    assert "HMI01/reg/moved.bin is not listed in the manifest" in result.stdout


def test_diff_of_a_resource_without_an_id(copy: Path, bundle: Path) -> None:
    """Class: an InputError raised while comparing, outside the command's error handling."""
    psd1 = copy / "HMI01" / "powershell" / "HMI01.psd1"
    text = psd1.read_bytes().replace(b"Id = 'local_user:opcuser'", b"Idx = 'local_user:opcuser'")
    psd1.write_bytes(text)
    refused(run("diff", bundle, copy), "HMI01.psd1: Resources[1] is not a resource with an Id")


def test_diff_of_a_duplicate_resource(copy: Path, bundle: Path) -> None:
    psd1 = copy / "HMI01" / "powershell" / "HMI01.psd1"
    text = psd1.read_bytes().replace(b"Id = 'local_user:opcsvc'", b"Id = 'local_user:opcuser'")
    psd1.write_bytes(text)
    refused(run("diff", bundle, copy), "resource 'local_user:opcuser' is listed twice")


def test_diff_of_deeply_nested_powershell_data(copy: Path, bundle: Path) -> None:
    """Class: RecursionError reading nested literals of a data file."""
    psd1 = copy / "HMI01" / "powershell" / "HMI01.psd1"
    deep = b"Roles = " + b"@(" * 3000 + b"'client'" + b")" * 3000
    psd1.write_bytes(psd1.read_bytes().replace(b"Roles = @(", deep + b"\r\n    X = @(", 1))
    refused(run("diff", bundle, copy), "values nested deeper than 64 levels")


@pytest.mark.parametrize("as_json", [False, True])
def test_diff_prints_hostile_bundle_text_escaped(copy: Path, bundle: Path,
                                                 as_json: bool) -> None:
    """Class: a lone surrogate in a manifest ended in UnicodeEncodeError; controls and
    escape sequences reached the terminal; roles that are not text ended in a TypeError."""
    edit_manifest(copy, lambda m: m.update(dcomc="0.1\ud800\x1b[2J", site="a\u202eb"))
    psd1 = copy / "HMI01" / "powershell" / "HMI01.psd1"
    psd1.write_bytes(psd1.read_bytes().replace(b"'client'", b"1"))
    result = run("diff", bundle, copy, *(["--json"] if as_json else []))
    printable(result)
    assert result.exit_code == 1, result.output
    if as_json:
        data = json.loads(result.stdout)
        assert data["new"]["generator"] == "dcomc 0.1\ud800\x1b[2J"
        assert data["site"]["new"] == "a\u202eb"
    else:
        assert "dcomc 0.1\\ud800\\x1b[2J" in result.stdout
        assert '~ site: "plant7-line3" -> "a\\u202eb"' in result.stdout


@pytest.mark.parametrize("args", [
    ("inspect", "{missing}"), ("diff", "{missing}", "{bundle}"),
    ("diff", "{bundle}", "{missing}/manifest.json"), ("drift", "{missing}", "{report}"),
    ("drift", PLANT7, "{missing}"), ("drift", PLANT7, "{folder}"),
], ids=["inspect", "diff-old", "diff-manifest", "drift-spec", "drift-report", "drift-folder"])
def test_a_missing_path_is_one_line(bundle: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    """Class (long fuzz run): click's own check of a path printed its usage text (four
    lines); the commands now say it in one."""
    (tmp_path / "empty").mkdir()  # a folder of reports is the site; an empty one is refused
    names = {"missing": tmp_path / "missing", "bundle": bundle, "folder": tmp_path / "empty",
             "report": write(tmp_path / "r.json", json.dumps(report()))}
    refused(run(*(str(a).format(**names) for a in args)))


def test_diff_of_a_manifest_path_too_long_for_the_system(copy: Path, bundle: Path) -> None:
    """Class (long fuzz run): Path.exists raised ENAMETOOLONG for a 70,000-character path."""
    edit_manifest(copy, lambda m: m["review"][0].update(path="A" * 70_000))
    result = run("diff", bundle, copy)
    printable(result)
    assert result.exit_code == 1, result.output  # listed but cannot exist: missing
    assert "! new bundle: AAAA" in result.stdout and "is listed in the manifest but missing" in (
        result.stdout)
