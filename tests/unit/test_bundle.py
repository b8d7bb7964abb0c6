"""The bundle: manifest, atomic replacement, refusals, and the build command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options, msi
from tools import require

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"


def build(out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), *args])
    return result.exit_code, result.output


def test_manifest_lists_every_artifact_with_its_hash(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = build(out)
    assert code == 0, output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["site"] == "plant7-line3"
    assert manifest["spec"]["sha256"] == hashlib.sha256(PLANT7.read_bytes()).hexdigest()
    assert "built" not in manifest  # no timestamp unless SOURCE_DATE_EPOCH
    assert manifest["hosts"]["SCADA01"]["roles"] == ["server"]
    listed = set()
    for host in manifest["hosts"].values():
        for art in host["artifacts"]:
            data = (out / art["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == art["sha256"]
            listed.add(art["path"])
    for report in manifest["review"]:
        data = (out / report["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == report["sha256"]
        listed.add(report["path"])
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json"}
    kinds = {a["kind"] for a in manifest["hosts"]["HMI01"]["artifacts"]}
    assert kinds >= {"reg", "inf", "netsh", "wix-firewall", "powershell-data",
                     "powershell-engine", "powershell-entry", "wix-product", "wix-fragment"}
    assert kinds - {"msi"} == {a["kind"] for a in manifest["hosts"]["SCADA01"]["artifacts"]} - {
        "msi"}


def test_source_date_epoch_sets_the_only_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = bundle.emit(compile_file(PLANT7), Options(), PLANT7.name)
    assert result.manifest["built"] == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "SOURCE_DATE_EPOCH='abc' is not a whole number of seconds since 1970-01-01 UTC"),
    ("-5", "SOURCE_DATE_EPOCH='-5' is not a whole number of seconds"),
    ("1700000000.5", "SOURCE_DATE_EPOCH='1700000000.5' is not a whole number of seconds"),
    ("99999999999999", "SOURCE_DATE_EPOCH=99999999999999 is after the year 9999"),
    ("5000000000", "SOURCE_DATE_EPOCH=5000000000 is not between 1980 and 2107, the years an "
                   "MSI's cabinet can store"),
])
def test_a_malformed_source_date_epoch_stops_the_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    """reproducible-builds.org: a malformed value stops the build instead of being ignored."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    monkeypatch.setattr(msi, "missing_tools", lambda: [])  # as if wixl were there
    monkeypatch.setattr(msi, "run_wixl", lambda *args: pytest.fail("no MSI may be started"))
    code, output = build(tmp_path / "out")
    assert code == 2
    assert f"error: {message}" in output and "nothing written" in output
    assert list(tmp_path.iterdir()) == []


def test_an_empty_source_date_epoch_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
    assert "built" not in bundle.emit(compile_file(PLANT7), Options(), PLANT7.name).manifest
    assert msi.build_epoch() == msi.DEFAULT_EPOCH


def test_rebuild_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(out)[0] == 0
    (out / "stale.txt").write_text("from an older build")
    assert build(out)[0] == 0
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_write_keeps_previous_bundle(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert build(out)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = 0
    real = bundle._write_file

    def failing(path: str, data: bytes) -> None:  # fail half-way through the new bundle
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(bundle, "_write_file", failing)
    result = bundle.emit(compile_file(PLANT7), Options(), PLANT7.name)
    with pytest.raises(KeyboardInterrupt):
        bundle.write(result, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_bundle_gets_the_usual_permissions(tmp_path: Path) -> None:
    """The staging folder must not leave its private mode (0700) on the bundle: a bundle is
    shared with reviewers and copied to the PCs."""
    old = os.umask(0o022)
    try:
        assert build(tmp_path / "out", "--no-msi")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "HMI01").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "manifest.json").stat().st_mode) == 0o644


def test_an_output_that_is_a_link_is_rebuilt_where_it_points(tmp_path: Path) -> None:
    assert build(tmp_path / "real", "--no-msi")[0] == 0
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "real" / "stale.txt").write_text("from the previous build")
    assert build(tmp_path / "link", "--no-msi")[0] == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "link" / "manifest.json").is_file()
    assert not (tmp_path / "real" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_half_swapped_bundle_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(out)[0] == 0
    out.rename(tmp_path / ".out.old-4242")  # as if killed between the two renames
    result = bundle.emit(compile_file(PLANT7), Options(), PLANT7.name)
    bundle.write(result, out)
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_second_build_of_the_same_folder_waits_for_the_first(tmp_path: Path) -> None:
    """Two builds of one OUT at once (two CI jobs): the second must neither sweep the first's
    temporary folder away as a leftover nor swap in the middle of it; it waits."""
    out = tmp_path / "out"
    result = bundle.emit(compile_file(PLANT7), Options(), PLANT7.name)
    inside, release = threading.Event(), threading.Event()
    seen: list[Path] = []

    def first() -> None:
        with bundle._staging(out) as tmp:
            bundle._write_files(tmp, {"manifest.json": b"{}", "FIRST": b"1"})
            seen.append(tmp)
            inside.set()
            release.wait(10)

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(10)
    two = threading.Thread(target=bundle.write, args=(result, out))
    two.start()
    two.join(0.5)
    assert two.is_alive()  # waiting for the first build
    assert seen[0].is_dir() and (seen[0] / "FIRST").is_file()  # not swept away
    release.set()
    one.join(10)
    two.join(10)
    assert not one.is_alive() and not two.is_alive()
    assert not (out / "FIRST").exists()  # the second build swapped in last
    assert json.loads((out / "manifest.json").read_text())["site"] == "plant7-line3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock file left


def test_a_folder_without_file_locks_still_builds(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Some network shares refuse flock (ENOLCK): the build goes on, just not serialized."""
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(bundle.fcntl, "flock", no_locks)
    assert build(tmp_path / "out", "--no-msi")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where the output's parent folder should be")
    code, output = build(tmp_path / "file" / "out")
    assert code == 2
    assert f"cannot write the output folder {tmp_path / 'file' / 'out'}: " in output
    assert "[E403]" in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_schema_to_an_unwritable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a folder should be")
    result = CliRunner().invoke(main, ["schema", "-o", str(tmp_path / "file" / "x.json")])
    assert result.exit_code == 2
    assert f"error: cannot write {tmp_path / 'file' / 'x.json'}: " in result.output


def test_refuses_to_replace_the_folder_that_holds_the_spec(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(out, "--no-msi")[0] == 0
    spec = out / "site.yaml"
    spec.write_bytes(PLANT7.read_bytes())
    result = CliRunner().invoke(main, ["build", str(spec), "-o", str(out), "--no-msi"])
    assert result.exit_code == 2
    assert f"output folder {out} holds the spec {spec}" in result.output
    assert spec.read_bytes() == PLANT7.read_bytes()


def test_refuses_to_replace_a_folder_dcomc_did_not_write(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    code, output = build(precious)
    assert code == 2
    assert "refusing to replace what dcomc did not write [E402]" in output
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_self_contained_build_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = build(out, "--self-contained")
    assert code == 2
    assert "the .reg cannot carry appid_permission:kepware/launch" in output
    assert "nothing written" in output
    assert not out.exists()


def test_default_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build", str(PLANT7)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "build" / "plant7-line3" / "SCADA01" / "reg" / "SCADA01.reg").is_file()


def test_inspect_reads_a_whole_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(out, "--replace-machine-limits")[0] == 0
    result = CliRunner().invoke(main, ["inspect", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    kinds = {Path(p).name: v["kind"] for p, v in data["files"].items()}
    assert {kinds[n] for n in ("HMI01.reg", "HMI01.inf", "HMI01.netsh", "HMI01-firewall.wxs",
                               "manifest.json", "HMI01.psd1", "DcomConfig.psm1", "HMI01.wxs",
                               "DcomConfig.wxs")} == {
        "reg", "inf", "netsh", "wix-firewall", "manifest", "powershell-data",
        "powershell-script", "wix-product", "wix-fragment"}
    psd1 = data["files"][str(out / "SCADA01" / "powershell" / "SCADA01.psd1")]
    assert psd1["Host"] == "SCADA01" and psd1["Resources"][0]["Id"] == "local_user:opcsvc"
    engine = data["files"][str(out / "HMI01" / "powershell" / "DcomConfig.psm1")]
    assert "Set-DcomcMachineLimitAddition" in engine["functions"]
    assert engine["syntax_errors"] == []
    reg = data["files"][str(out / "HMI01" / "reg" / "HMI01.reg")]
    limit = next(v for v in reg["values"] if v["name"] == "MachineAccessRestriction")
    anon = next(r for r in limit["rights"] if r["principal"] == "ANONYMOUS LOGON")
    assert anon["rights"] == ["local_access", "remote_access"]
    text = CliRunner().invoke(main, ["inspect", str(out / "HMI01" / "firewall")]).output
    assert "dcomc-plant7-line3-client-hmi" in text


@pytest.mark.parametrize("name", ["HMI01.wxs", "HMI01-firewall.wxs"])
def test_inspect_of_broken_xml_is_a_clear_error(tmp_path: Path, name: str) -> None:
    broken = tmp_path / name
    broken.write_text('<?xml version="1.0"?><Wix xmlns="http://schemas.microsoft.com/wix/2006/'
                      'wi" xmlns:fire="http://schemas.microsoft.com/wix/FirewallExtension"><Prod')
    result = CliRunner().invoke(main, ["inspect", str(broken)])
    assert result.exit_code == 2
    assert re.search(rf"{re.escape(str(broken))}:\d+:\d+: error: not well-formed XML: ",
                     result.output), result.output  # with the place the parser stopped at


def test_inspect_of_a_damaged_msi_is_a_clear_error(tmp_path: Path) -> None:
    require(shutil.which("msiinfo") is not None, "msitools")
    broken = tmp_path / "cut.msi"
    broken.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))  # an OLE header only
    result = CliRunner().invoke(main, ["inspect", str(broken)])
    assert result.exit_code == 2
    assert f"{broken}: error: msiinfo cannot read this MSI" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_failed_msi_keeps_previous_bundle(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert build(out, "--no-msi")[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    started: list[str] = []

    def run_wixl(host_dir: Path, host: str) -> Path:
        started.append(host)
        if host == "HMI02":
            raise msi.MsiError("HMI02: wixl failed (133): unhandled child")
        (host_dir / f"{host}.msi").write_bytes(b"stand-in")
        return host_dir / f"{host}.msi"

    monkeypatch.setattr(msi, "missing_tools", lambda: [])
    monkeypatch.setattr(msi, "run_wixl", run_wixl)
    monkeypatch.setattr(msi, "finish", lambda path, *args: path.read_bytes())
    code, output = build(out)
    assert code == 1
    assert "error: HMI02: wixl failed (133): unhandled child; nothing written" in output
    # Each wixl starts as its host's files land; the failure cancels the ones still queued
    # (with fewer workers than hosts SCADA01 may be one of them), never HMI01 ahead of it.
    assert sorted(started[:2]) == ["HMI01", "HMI02"]
    assert set(started) <= {"HMI01", "HMI02", "SCADA01"}
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_os_error_about_another_file_is_not_blamed_on_the_output(tmp_path: Path) -> None:
    """E403 is for the output folder; a missing template of a damaged installation is not."""
    elsewhere = FileNotFoundError(2, "No such file or directory", "/usr/share/dcomc/x.psm1")
    assert bundle.unwritable(tmp_path / "out", elsewhere) is None
    full = OSError(28, "No space left on device")  # os.write names no file
    found = bundle.unwritable(tmp_path / "out", full)
    assert found is not None and "No space left on device" in found.items[0].message
    inside = PermissionError(13, "Permission denied", str(tmp_path / ".out.tmp-1-0" / "HMI01"))
    assert bundle.unwritable(tmp_path / "out", inside) is not None


def test_a_wixl_that_cannot_start_is_an_msi_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an error of the output folder (E403): wixl itself could not be run."""
    monkeypatch.setattr(msi, "missing_tools", lambda: [])
    monkeypatch.setattr(msi, "_WIXL_ENV", {"PATH": str(tmp_path / "empty")})
    code, output = build(tmp_path / "out")
    assert code == 1
    assert "wixl could not start" in output and "nothing written" in output
    assert "E403" not in output and not (tmp_path / "out").exists()


def test_self_contained_refusal_builds_no_msi(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(msi, "missing_tools", lambda: [])
    monkeypatch.setattr(msi, "run_wixl", lambda *args: started.append(args[1]))
    code, output = build(tmp_path / "out", "--self-contained")
    assert code == 2 and "nothing written" in output
    assert started == []  # the lint refusals are known first: emission runs in memory only
    assert list(tmp_path.iterdir()) == []
