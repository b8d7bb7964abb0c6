"""Signed bundles end to end (issue 14), with the real tools: wixl builds the MSIs from the
signed scripts, osslsigncode signs and checks every script and MSI against the throw-away CA,
openssl the manifest's signature, Wine's msiexec installs and removes a signed MSI, and
`dcomc verify` names each way a bundle can be spoilt. Missing tools skip locally and fail in
CI (DCOMC_REQUIRE_TOOLS=1)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import tsa_server
from click.testing import CliRunner
from test_msi import computer, installed_dir, msiexec, wine, winpath  # noqa: F401 (fixture)

from dcomc.cli import main
from dcomc.emit import bundle, sign
from dcomc.pipeline import compile_file
from dcomc.readback import verify as verify_module
from dcomc_targets import Options, msi
from tools import require
from unit.test_sign import Pki, _build, make_pki, osslsigncode_verify

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PLANT9 = ROOT / "examples" / "plant9-domain.yaml"
EPOCH = "1700000000"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def signed_build(spec: Path, out: Path, pki: Pki, name: str = "signer", msis: bool = True
                 ) -> Path:
    """`dcomc build` of `spec` into `out`, signed by the certificate `name` of `pki`."""
    if msis:
        require(not msi.missing_tools(), "wixl/msitools")
    settings = sign.SignSettings(pki.cert(name), str(pki.key(name)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", EPOCH)
        with sign.Signer(settings) as signer:
            bundle.build(compile_file(spec), Options(), spec.name, out,
                         bundle.MsiRequest("1.0.0") if msis else None, signer)
    return out


@pytest.fixture(scope="module")
def plant7(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Path:
    return signed_build(PLANT7, tmp_path_factory.mktemp("signed") / "plant7", pki)


def signed_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in sign.SIGNED_SUFFIXES)


def verify(folder: Path, pki: Pki | None, *extra: str) -> tuple[int, dict[str, object]]:
    args = ["verify", str(folder), "--json", *extra]
    if pki is not None:
        args += ["--ca", str(pki.ca)]
    result = CliRunner().invoke(main, args)
    return result.exit_code, json.loads(result.stdout)


def codes(report: dict[str, object]) -> set[tuple[str, str | None]]:
    failures = report["failures"]
    assert isinstance(failures, list)
    return {(f["code"], f["path"]) for f in failures}


# --- every script and MSI, checked by osslsigncode ---------------------------------------------


def test_every_script_and_msi_verifies_against_the_ca(plant7: Path, pki: Pki) -> None:
    files = signed_files(plant7)
    assert {p.suffix for p in files} == {".ps1", ".psm1", ".psd1", ".msi"}
    assert len(files) == 12  # 3 hosts x (entry, engine, data, MSI)
    for path in files:
        assert "Signature verification: ok" in osslsigncode_verify(pki, path), path


def test_the_msis_carry_the_signed_scripts(plant7: Path) -> None:
    """Order of work: the MSI is built from the signed files (sizes as the proxy, as in
    test_msi), so an AllSigned PC can run what the MSI installs."""
    for host in ("SCADA01", "HMI01"):
        rows = msi.read_tables(plant7 / host / f"{host}.msi", ["File"])["File"]
        sizes = {r["FileName"]: int(r["FileSize"]) for r in rows}
        for name in ("DcomConfig.psm1", "Invoke-DcomConfig.ps1", f"{host}.psd1"):
            on_disk = plant7 / host / "powershell" / name
            assert b"# SIG # Begin signature block" in on_disk.read_bytes()
            assert sizes[name] == on_disk.stat().st_size, name


def test_the_manifest_pins_the_signed_bytes_and_the_review_names_the_signer(
        plant7: Path, pki: Pki) -> None:
    manifest = json.loads((plant7 / bundle.MANIFEST).read_text())
    for entry in manifest["hosts"].values():
        for art in entry["artifacts"]:
            data = (plant7 / art["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == art["sha256"], art["path"]
    fingerprint = sign.fingerprint(pki.cert("signer").read_bytes())
    assert manifest["signature"]["sha256"] == fingerprint
    for report in ("review.html", "REVIEW.md"):
        text = (plant7 / report).read_text()
        assert fingerprint in text and "dcomc test signer" in text
    check = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                            str(plant7 / sign.SIGNATURE), "-content", str(plant7 / "manifest.json"),
                            "-CAfile", str(pki.ca), "-purpose", "any", "-out", "/dev/null"],
                           capture_output=True, check=False)
    assert check.returncode == 0, check.stderr


# --- reproducible, and `dcomc sign` gives the bytes of `build --sign` ---------------------------


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_signing_twice_gives_identical_bytes(plant7: Path, pki: Pki, tmp_path: Path) -> None:
    again = signed_build(PLANT7, tmp_path / "again", pki)
    assert tree(again) == tree(plant7)


def test_sign_command_gives_the_bytes_of_a_signed_build(plant7: Path, pki: Pki, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    require(not msi.missing_tools(), "wixl/msitools")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    out = tmp_path / "later"
    runner = CliRunner()
    built = runner.invoke(main, ["build", str(PLANT7), "-o", str(out)])
    assert built.exit_code == 0, built.output
    signing = ["--sign", str(pki.cert("signer")), "--sign-key", str(pki.key("signer"))]
    signed = runner.invoke(main, ["sign", str(out), "--spec", str(PLANT7), *signing])
    assert signed.exit_code == 0, signed.output
    assert tree(out) == tree(plant7)
    again = runner.invoke(main, ["sign", str(out), "--spec", str(PLANT7), *signing])
    assert again.exit_code == 2 and "signed already" in again.stderr and "[E412]" in again.stderr


def test_site_package_signed_by_build_and_by_sign_alike(pki: Pki, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The site package carries the signed scripts and is signed itself, whether the build
    signs or `dcomc sign` signs the bundle later: the same bytes, every file."""
    require(not msi.missing_tools(), "wixl/msitools")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    signing = ["--sign", str(pki.cert("signer")), "--sign-key", str(pki.key("signer"))]
    runner = CliRunner()
    now, later = tmp_path / "now", tmp_path / "later"
    built = runner.invoke(main, ["build", str(PLANT9), "-o", str(now), "--site-msi", *signing])
    assert built.exit_code == 0, built.output
    assert runner.invoke(main, ["build", str(PLANT9), "-o", str(later), "--site-msi"]
                         ).exit_code == 0
    signed = runner.invoke(main, ["sign", str(later), "--spec", str(PLANT9), *signing])
    assert signed.exit_code == 0, signed.output
    assert tree(later) == tree(now)
    package = now / "_site" / "plant9-utilities.msi"
    osslsigncode_verify(pki, package)
    engine = (now / "ENG-WS1" / "powershell" / "DcomConfig.psm1").read_bytes()
    assert b"# SIG # Begin signature block" in engine
    tables = msi.read_tables(package, ["File"])["File"]
    assert {r["FileName"]: int(r["FileSize"]) for r in tables}["DcomConfig.psm1"] == len(engine)
    code, report = verify(now, pki)
    assert code == 0, report


def test_sign_refuses_a_bundle_edited_since_its_build(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "b"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(PLANT7), "-o", str(out), "--no-msi"]).exit_code == 0
    (out / "HMI01" / "reg" / "HMI01.reg").write_bytes(b"edited")
    result = runner.invoke(main, ["sign", str(out), "--spec", str(PLANT7), "--sign",
                                  str(pki.cert("signer")), "--sign-key", str(pki.key("signer"))])
    assert result.exit_code == 2 and "HMI01/reg/HMI01.reg edited" in result.stderr


# --- a signed MSI still installs and uninstalls -------------------------------------------------


def test_a_signed_msi_installs_and_uninstalls_under_wine(
        wine: dict[str, str], pki: Pki, tmp_path: Path) -> None:  # noqa: F811
    plant9 = signed_build(PLANT9, tmp_path / "plant9", pki)
    package = plant9 / "UTIL-SRV1" / "UTIL-SRV1.msi"
    osslsigncode_verify(pki, package)
    computer(wine, "UTIL-SRV1")
    code, _ = msiexec(wine, "/i", winpath(package), "/qn")
    assert code == 0
    target = installed_dir(wine, "plant9-utilities")
    installed = target / "UTIL-SRV1.psd1"
    assert installed.read_bytes() == (plant9 / "UTIL-SRV1/powershell/UTIL-SRV1.psd1").read_bytes()
    assert b"# SIG # Begin signature block" in installed.read_bytes()
    code, _ = msiexec(wine, "/x", winpath(package), "/qn")
    assert code == 0
    assert not target.exists() or not any(target.iterdir())


# --- dcomc verify: passes, and names each failure -----------------------------------------------


def test_verify_passes_a_signed_bundle(plant7: Path, pki: Pki) -> None:
    code, report = verify(plant7, pki)
    assert code == 0 and report["ok"] is True and report["failures"] == []
    assert report["authenticode_signatures"] == 12


def test_verify_without_the_ca_does_not_trust_a_private_ca(plant7: Path) -> None:
    code, report = verify(plant7, None)
    assert code == 1 and codes(report) == {("E428", None)}


@pytest.fixture
def copy(plant7: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(plant7, tmp_path / "copy"))


def test_verify_catches_a_changed_byte_in_a_script(copy: Path, pki: Pki) -> None:
    script = copy / "HMI02" / "powershell" / "HMI02.psd1"
    data = bytearray(script.read_bytes())
    data[40] ^= 0x01
    script.write_bytes(bytes(data))
    code, report = verify(copy, pki)
    rel = "HMI02/powershell/HMI02.psd1"
    assert code == 1 and codes(report) == {("E420", rel), ("E426", rel)}


def test_verify_catches_a_script_signed_by_another_certificate(copy: Path, pki: Pki) -> None:
    script = copy / "SCADA01" / "powershell" / "SCADA01.psd1"
    with sign.Signer(sign.SignSettings(pki.cert("other"), str(pki.key("other")))) as other:
        unsigned = script.read_bytes().split(b"# SIG # Begin signature block")[0]
        script.write_bytes(other.sign_bytes(unsigned, script.name))
    osslsigncode_verify(pki, script)  # a valid signature, by the same CA: only its signer differs
    code, report = verify(copy, pki)
    rel = "SCADA01/powershell/SCADA01.psd1"
    assert code == 1 and codes(report) == {("E420", rel), ("E427", rel)}


def test_verify_catches_an_unsigned_file_added(copy: Path, pki: Pki) -> None:
    (copy / "HMI01" / "powershell" / "Extra.ps1").write_text("Write-Host hi\r\n")
    code, report = verify(copy, pki)
    assert code == 1 and codes(report) == {("E422", "HMI01/powershell/Extra.ps1")}


def test_verify_catches_a_file_removed(copy: Path, pki: Pki) -> None:
    (copy / "HMI01" / "HMI01.msi").unlink()
    code, report = verify(copy, pki)
    assert code == 1 and codes(report) == {("E421", "HMI01/HMI01.msi")}


def test_verify_catches_an_edited_manifest(copy: Path, pki: Pki) -> None:
    """Whoever edits a file and its hash in the manifest still cannot sign the manifest."""
    script = copy / "HMI01" / "powershell" / "HMI01.psd1"
    script.write_bytes(script.read_bytes().replace(b"plant7-line3", b"plant7-line4", 1))
    manifest = json.loads((copy / "manifest.json").read_text())
    for art in manifest["hosts"]["HMI01"]["artifacts"]:
        if art["path"] == "HMI01/powershell/HMI01.psd1":
            art["sha256"] = hashlib.sha256(script.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    code, report = verify(copy, pki)
    assert code == 1 and ("E424", "manifest.json") in codes(report)
    assert ("E426", "HMI01/powershell/HMI01.psd1") in codes(report)


def test_verify_catches_an_expired_certificate(pki: Pki, tmp_path: Path) -> None:
    out = signed_build(PLANT7, tmp_path / "expired", pki, "expired", msis=False)
    code, report = verify(out, pki)
    assert code == 1 and codes(report) == {("E430", None)}


def test_verify_catches_a_certificate_not_for_code_signing(pki: Pki, tmp_path: Path) -> None:
    out = signed_build(PLANT7, tmp_path / "tls", pki, "tls", msis=False)
    code, report = verify(out, pki)
    assert code == 1 and codes(report) == {("E429", None)}


def test_verify_of_an_unsigned_bundle_fails(tmp_path: Path, pki: Pki) -> None:
    out = tmp_path / "b"
    assert CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), "--no-msi"]
                              ).exit_code == 0
    code, report = verify(out, pki)
    assert code == 1 and ("E423", sign.SIGNATURE) in codes(report)
    assert ("E425", "HMI01/powershell/HMI01.psd1") in codes(report)
    # the text: one line for the files, not one per file (--json lists each)
    text = CliRunner().invoke(main, ["verify", str(out), "--ca", str(pki.ca)]).stdout
    unsigned = report["authenticode_signatures"]
    assert [line for line in text.splitlines() if "[E425]" in line] == [
        f"FAIL none of the {unsigned} PowerShell files and MSIs has an Authenticode signature "
        "(--json lists them) [E425]"]
    assert len([f for f in report["failures"] if f["code"] == "E425"]) == unsigned


def test_an_unsigned_script_is_told_without_a_tool_run(tmp_path: Path, pki: Pki,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A PowerShell file without the signature block has no signature: E425 without running
    osslsigncode (30,000 runs for an unsigned 10,000-host bundle); a file with the block is
    judged by the tool, as are MSIs."""
    out = tmp_path / "b"
    assert CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(out), "--no-msi"]
                              ).exit_code == 0
    runs: list[list[str]] = []
    tool = verify_module._tool

    def counting(args: list[str]) -> subprocess.CompletedProcess[bytes]:
        runs.append(args)
        return tool(args)

    monkeypatch.setattr(verify_module, "_tool", counting)
    code, report = verify(out, pki)
    assert code == 1 and ("E425", "HMI01/powershell/HMI01.psd1") in codes(report)
    assert not [args for args in runs if args[0] == "osslsigncode"]
    psd1 = out / "HMI01" / "powershell" / "HMI01.psd1"
    psd1.write_bytes(psd1.read_bytes() + b"# SIG # Begin signature block\r\n# garbage\r\n")
    code, report = verify(out, pki)
    judged = [args for args in runs if args[0] == "osslsigncode"]
    assert [args[-1] for args in judged] == [str(psd1)]
    assert ("E420", "HMI01/powershell/HMI01.psd1") in codes(report)


def test_verify_text_names_each_failure_on_its_line(copy: Path, pki: Pki) -> None:
    (copy / "HMI01" / "HMI01.msi").unlink()
    result = CliRunner().invoke(main, ["verify", str(copy), "--ca", str(pki.ca)])
    assert result.exit_code == 1
    assert "FAIL HMI01/HMI01.msi: is listed in the manifest but missing [E421]" in result.stdout


def test_diff_reports_a_broken_signature(copy: Path, plant7: Path, pki: Pki) -> None:
    script = copy / "HMI01" / "powershell" / "HMI01.psd1"
    with sign.Signer(sign.SignSettings(pki.cert("other"), str(pki.key("other")))) as other:
        unsigned = script.read_bytes().split(b"# SIG # Begin signature block")[0]
        script.write_bytes(other.sign_bytes(unsigned, script.name))
    result = CliRunner().invoke(main, ["diff", str(plant7), str(copy)])
    assert "HMI01/powershell/HMI01.psd1 has a signature that does not hold" in result.stdout
    assert "manifest.json.p7s" not in result.stdout  # the signature is not an unlisted file


# --- an OEM's hardware token (PKCS#11), as a SoftHSM token ---------------------------------------

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2
TOKEN_KEY = "pkcs11:token=OEM;object=codesign;type=private"
PIN = "Pin-4417x"  # must appear on no command line
SO_PIN = "So-8820q"


def _engine() -> Path:
    """libp11's engine in OpenSSL's engines folder (libengine-pkcs11-openssl)."""
    out = subprocess.run(["openssl", "version", "-e"], capture_output=True, text=True,
                         timeout=60, check=False).stdout
    return Path(out.partition('"')[2].rstrip().rstrip('"')) / "pkcs11.so"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Path]:
    """A SoftHSM token "OEM" in a private SOFTHSM2_CONF holding the signer's key and
    certificate (id 01, label codesign), as an OEM's token holds theirs; yields the
    certificate exported back from the token as PEM, which is what the README tells an OEM to
    pass to --sign. The PINs reach pkcs11-tool as `env:VARIABLE`, not on its command line."""
    require(SOFTHSM.is_file() and _engine().is_file() and shutil.which("pkcs11-tool") is not None,
            "softhsm2, libengine-pkcs11-openssl and opensc")
    folder = tmp_path_factory.mktemp("token")
    (folder / "tokens").mkdir()
    (folder / "softhsm2.conf").write_text(f"directories.tokendir = {folder / 'tokens'}\n"
                                          "objectstore.backend = file\nlog.level = ERROR\n")
    der = folder / "signer.der"
    subprocess.run(["openssl", "x509", "-in", str(pki.cert("signer")), "-outform", "DER",
                    "-out", str(der)], check=True, capture_output=True, timeout=60)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(folder / "softhsm2.conf"))
        env = {**os.environ, "T_PIN": PIN, "T_SO_PIN": SO_PIN}
        tool = ["pkcs11-tool", "--module", str(SOFTHSM)]
        for args in (["--init-token", "--label", "OEM", "--so-pin", "env:T_SO_PIN"],
                     ["--token-label", "OEM", "--login", "--login-type", "so", "--so-pin",
                      "env:T_SO_PIN", "--init-pin", "--pin", "env:T_PIN"],
                     ["--token-label", "OEM", "--pin", "env:T_PIN", "--write-object",
                      str(pki.key("signer")), "--type", "privkey", "--id", "01", "--label",
                      "codesign"],
                     ["--token-label", "OEM", "--pin", "env:T_PIN", "--write-object", str(der),
                      "--type", "cert", "--id", "01", "--label", "codesign"],
                     ["--token-label", "OEM", "--read-object", "--type", "cert", "--id", "01",
                      "--output-file", str(folder / "exported.der")]):
            proc = subprocess.run([*tool, *args], capture_output=True, text=True, env=env,
                                  timeout=120, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(folder / "exported.der"),
                        "-out", str(folder / "oem-codesign.pem")], check=True,
                       capture_output=True, timeout=60)
        yield folder / "oem-codesign.pem"


def _command_lines(stop: threading.Event, seen: list[bytes]) -> None:
    """Every process's argv, read from /proc as `ps` reads it, until `stop`."""
    while not stop.is_set():
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes()
            except OSError:
                continue  # it ended meanwhile
            if argv.startswith((b"osslsigncode", b"openssl")) and argv not in seen:
                seen.append(argv)
        stop.wait(0.002)


def test_a_token_signs_the_bundle_as_the_readme_tells_an_oem(
        token: Path, plant7: Path, pki: Pki, tmp_path: Path) -> None:
    """The README's OEM command, engine given by its path: every script and MSI verifies, the
    manifest too, `dcomc verify` passes, and the bytes are those of the same key in a PEM file
    (RSA signatures are deterministic, so the token changes nothing). The PIN is on no
    command line while it runs."""
    out = tmp_path / "oem"
    stop, seen = threading.Event(), list[bytes]()
    watcher = threading.Thread(target=_command_lines, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        proc = _build(["build", str(PLANT7), "-o", str(out), "--sign", str(token),
                       "--sign-key", TOKEN_KEY, "--pkcs11-module", str(SOFTHSM),
                       "--pkcs11-engine", str(_engine()), "--sign-pass-env", "TOKEN_PIN"],
                      {"TOKEN_PIN": PIN, "SOURCE_DATE_EPOCH": EPOCH})
    finally:
        stop.set()
        watcher.join()
    assert proc.returncode == 0, proc.stderr
    assert any(b"-pkcs11module" in argv for argv in seen)  # the watcher saw the signing
    assert any(b"cms\0-sign" in argv for argv in seen)
    assert not [argv for argv in seen if PIN.encode() in argv]
    assert PIN not in proc.stdout + proc.stderr
    for path in signed_files(out):
        assert "Signature verification: ok" in osslsigncode_verify(pki, path), path
    code, report = verify(out, pki)
    assert code == 0, report["failures"]
    assert tree(out) == tree(plant7)


def test_a_wrong_pin_is_one_line_without_the_pin(token: Path, tmp_path: Path) -> None:
    proc = _build(["build", str(PLANT7), "-o", str(tmp_path / "b"), "--no-msi", "--sign",
                   str(token), "--sign-key", TOKEN_KEY, "--pkcs11-module", str(SOFTHSM),
                   "--sign-pass-env", "TOKEN_PIN"], {"TOKEN_PIN": "0000-wrong"})
    assert proc.returncode == 2 and "[E411]" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "0000-wrong" not in proc.stderr


# --- timestamps from an RFC 3161 server (a local one: tsa_server.py) -----------------------------

BEGIN, END = b"# SIG # Begin signature block", b"# SIG # End signature block"
DIGEST = re.compile(r"\b[0-9a-fA-F]{64}\b")
AFTER_EXPIRY = 4102444800 + 86400  # 2100-01-02: the signer's certificate ended 2099-12-31


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tsa_server.Tsa]:
    require(not sign.missing_tools(), "osslsigncode and openssl")
    with tsa_server.serve(tmp_path_factory.mktemp("tsa")) as server:
        yield server


def stamped_build(out: Path, pki: Pki, tsa: tsa_server.Tsa) -> Path:
    """`dcomc build --sign ... --timestamp URL`, at the untimestamped builds' epoch."""
    require(not msi.missing_tools(), "wixl/msitools")
    before = len(tsa.requests)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", EPOCH)
        result = CliRunner().invoke(main, [
            "build", str(PLANT7), "-o", str(out), "--sign", str(pki.cert("signer")),
            "--sign-key", str(pki.key("signer")), "--timestamp", tsa.url])
    assert result.exit_code == 0, result.output
    # one request per distinct signed file: 3 data files, 3 MSIs, the engine and entry script
    assert len(tsa.requests) - before == 8
    return out


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory, pki: Pki, tsa: tsa_server.Tsa) -> Path:
    return stamped_build(tmp_path_factory.mktemp("stamped") / "plant7", pki, tsa)


def verify_at(path: Path, pki: Pki, tsa: tsa_server.Tsa, when: int | None = None
              ) -> subprocess.CompletedProcess[str]:
    """osslsigncode verify against both CAs; `when` the clock it judges by (-time)."""
    args = ["osslsigncode", "verify", "-CAfile", str(pki.ca), "-TSA-CAfile", str(tsa.ca)]
    if when is not None:
        args += ["-time", str(when)]
    return subprocess.run([*args, "-in", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_every_script_and_msi_verifies_with_its_timestamp(stamped: Path, pki: Pki,
                                                          tsa: tsa_server.Tsa) -> None:
    files = signed_files(stamped)
    assert len(files) == 12
    for path in files:
        proc = verify_at(path, pki, tsa)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Timestamp Server Signature verification: ok" in proc.stdout, path
        assert "Issuer: /CN=dcomc Test TSA CA" in proc.stdout, path


def _der(data: bytes, at: int = 0) -> tuple[int, int, int]:
    """The DER element at `at`: its tag byte, where its content starts and where it ends."""
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(data[at:at + count], "big"), at + count
    return tag, at, at + length


def _children(data: bytes) -> list[bytes]:
    found, at = [], 0
    while at < len(data):
        end = _der(data, at)[2]
        found.append(data[at:end])
        at = end
    return found


def _element(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + \
        n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + content


def without_timestamp(pkcs7: bytes) -> bytes:
    """The Authenticode PKCS#7 SignedData without its signer's unauthenticated attributes
    ([1], where the RFC 3161 countersignature lives), re-encoded: ContentInfo > [0] >
    SignedData > signerInfos (its last field) > SignerInfo."""
    def content(element: bytes) -> bytes:
        _, start, end = _der(element)
        return element[start:end]

    info = _children(content(pkcs7))
    signed = _children(content(content(info[1])))
    signer = _children(content(signed[-1]))[0]
    fields = _children(content(signer))
    if fields[-1][0] == 0xA1:
        fields = fields[:-1]
    signer = _element(0x30, b"".join(fields))
    signed[-1] = _element(0x31, signer)
    info[1] = _element(0xA0, _element(0x30, b"".join(signed)))
    return _element(0x30, b"".join(info))


def unstamped(script: bytes) -> tuple[bytes, bytes]:
    """A signed script's text and its signature without the timestamp."""
    text, begin, block = script.partition(BEGIN)
    if not begin:
        return text, b""  # a file the MSI installs that is not signed (none is a script)
    body = block.partition(END)[0]
    der = base64.b64decode(b"".join(line.strip().removeprefix(b"#").strip()
                                    for line in body.splitlines()))
    return text, without_timestamp(der)


def msi_payload(package: Path, folder: Path) -> dict[str, tuple[bytes, bytes]]:
    """The files an MSI installs (msiextract), each script without its timestamp."""
    subprocess.run(["msiextract", "-C", str(folder), str(package)], check=True,
                   capture_output=True, timeout=120)
    return {p.name: unstamped(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_timestamped_builds_differ_only_in_their_timestamps(
        stamped: Path, plant7: Path, pki: Pki, tsa: tsa_server.Tsa, tmp_path: Path) -> None:
    """How it is checked: every script of a timestamped build, with the countersignature
    taken out of its PKCS#7, is the script of the untimestamped build at the same
    SOURCE_DATE_EPOCH, signature and all; every MSI installs those same scripts; the manifest
    and the reviews are the untimestamped build's once every sha256 in them is blanked; and
    the second timestamped build has other timestamps (serial and time) than the first."""
    again = stamped_build(tmp_path / "again", pki, tsa)
    plain, first, second = tree(plant7), tree(stamped), tree(again)
    assert plain.keys() == first.keys() == second.keys()
    differ = {rel for rel in plain if not plain[rel] == first[rel] == second[rel]}
    derived = {"manifest.json", sign.SIGNATURE, "review.html", "REVIEW.md"}
    signed = {p.relative_to(plant7).as_posix() for p in signed_files(plant7)}
    assert differ == signed | derived
    for rel in sorted(signed):
        if rel.endswith(".msi"):
            want = msi_payload(plant7 / rel, tmp_path / "plain" / rel)
            assert msi_payload(stamped / rel, tmp_path / "one" / rel) == want, rel
            assert msi_payload(again / rel, tmp_path / "two" / rel) == want, rel
        else:
            assert unstamped(first[rel]) == unstamped(second[rel]) == unstamped(plain[rel]), rel
    for rel in ("review.html", "REVIEW.md", "manifest.json"):
        assert DIGEST.sub("<sha256>", first[rel].decode()) == \
            DIGEST.sub("<sha256>", plain[rel].decode()), rel
    serials = {verify_at(stamped / rel, pki, tsa).stdout.partition("Timestamp serial number:")[2]
               .split()[0] for rel in ("HMI01/HMI01.msi",)}
    serials |= {verify_at(again / "HMI01/HMI01.msi", pki, tsa).stdout
                .partition("Timestamp serial number:")[2].split()[0]}
    assert len(serials) == 2


def test_a_timestamp_keeps_a_signature_valid_after_the_certificate_expired(
        stamped: Path, plant7: Path, pki: Pki, tsa: tsa_server.Tsa) -> None:
    """The README's claim, with osslsigncode's clock set after the signer's notAfter (-time):
    a timestamped signature is judged at its timestamp and holds; one without is judged at the
    clock and fails. Today both hold."""
    for rel in ("HMI01/powershell/HMI01.psd1", "HMI01/powershell/DcomConfig.psm1",
                "HMI01/HMI01.msi"):
        assert verify_at(plant7 / rel, pki, tsa).returncode == 0
        late = verify_at(stamped / rel, pki, tsa, AFTER_EXPIRY)
        assert late.returncode == 0, late.stdout + late.stderr
        expired = verify_at(plant7 / rel, pki, tsa, AFTER_EXPIRY)
        assert expired.returncode != 0 and "certificate has expired" in expired.stdout + \
            expired.stderr, rel


def test_dcomc_verify_of_a_timestamped_bundle(stamped: Path, pki: Pki) -> None:
    code, report = verify(stamped, pki)
    assert code == 0, report["failures"]


def _roots(tmp_path: Path, pki: Pki, tsa: tsa_server.Tsa) -> Path:
    """A --ca file trusting the code-signing CA and the TSA's root (a site with its own TSA)."""
    roots = tmp_path / "roots.pem"
    roots.write_bytes(pki.ca.read_bytes() + tsa.ca.read_bytes())
    return roots


def verify_ca(folder: Path, ca: Path) -> tuple[int, dict[str, object]]:
    """verify() with a --ca file other than the PKI's own."""
    return verify(folder, None, "--ca", str(ca))


def test_dcomc_verify_judges_a_timestamped_bundle_at_its_timestamps(
        stamped: Path, plant7: Path, pki: Pki, tsa: tsa_server.Tsa, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With verify's clock after the signer's notAfter (2099-12-31), as Windows judges: a
    bundle whose every signature has a timestamp that holds passes, judged at the timestamps;
    the same bundle whose TSA is not trusted, and the untimestamped one, fail E430 alone."""
    roots = _roots(tmp_path, pki, tsa)
    monkeypatch.setattr(verify_module, "_now", lambda: AFTER_EXPIRY)
    code, report = verify_ca(stamped, roots)
    assert code == 0, report["failures"]
    judged = report["validity_judged_at"]
    assert isinstance(judged, list) and len(judged) == 2 and judged[1] < "2099-12-31"
    text = CliRunner().invoke(main, ["verify", str(stamped), "--ca", str(roots)]).stdout
    assert "every signature is timestamped: the certificate is judged at the timestamps'" in text
    code, report = verify_ca(stamped, pki.ca)  # the TSA untrusted: no timestamp holds
    assert code == 1 and codes(report) == {("E430", None)}
    assert report["validity_judged_at"] is None
    code, report = verify_ca(plant7, roots)
    assert code == 1 and codes(report) == {("E430", None)}


def test_dcomc_verify_judges_now_when_one_signature_has_no_timestamp(
        stamped: Path, plant7: Path, pki: Pki, tsa: tsa_server.Tsa, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One script signed without a timestamp (the manifest re-signed over it, so that the
    bundle is otherwise sound): that script stops running when the certificate expires, so the
    bundle is judged now and fails E430; today it passes."""
    mixed = Path(shutil.copytree(stamped, tmp_path / "mixed"))
    rel = "HMI01/powershell/HMI01.psd1"
    (mixed / rel).write_bytes((plant7 / rel).read_bytes())
    manifest = json.loads((mixed / "manifest.json").read_text())
    for art in manifest["hosts"]["HMI01"]["artifacts"]:
        if art["path"] == rel:
            art["sha256"] = hashlib.sha256((mixed / rel).read_bytes()).hexdigest()
    data = (json.dumps(manifest, indent=2) + "\n").encode()
    (mixed / "manifest.json").write_bytes(data)
    with sign.Signer(sign.SignSettings(pki.cert("signer"), str(pki.key("signer")))) as signer:
        (mixed / sign.SIGNATURE).write_bytes(signer.sign_manifest(data))
    roots = _roots(tmp_path, pki, tsa)
    code, report = verify_ca(mixed, roots)
    assert code == 0 and report["validity_judged_at"] is None, report["failures"]
    monkeypatch.setattr(verify_module, "_now", lambda: AFTER_EXPIRY)
    code, report = verify_ca(mixed, roots)
    assert code == 1 and codes(report) == {("E430", None)}
