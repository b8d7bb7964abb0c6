"""Signing (issue 14), piece by piece, with real openssl and osslsigncode: a throw-away CA and
its certificates (`make_pki`, also used by tests/targets/test_signing.py), reproducible
Authenticode and CMS signatures, the certificate's details, and how the CLI gets a password
(never from its command line). Missing tools skip locally and fail in CI (tests/tools.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import sign
from tools import require

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PASSWORD = "Kx9-sign-secret"  # must appear in no artifact, output or command line

_EXTENSIONS = """
[ca_ext]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[code_ext]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[tls_ext]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
[ca]
default_ca=test_ca
[test_ca]
database=index.txt
new_certs_dir=.
serial=serial
default_md=sha256
policy=any_name
unique_subject=no
[any_name]
commonName=supplied
[req]
distinguished_name=dn
[dn]
"""


@dataclass(frozen=True)
class Pki:
    """A throw-away CA and certificates it issued, each as `<name>.pem` and `<name>.key`:
    `signer` and `other` (code signing, valid now), `expired` (code signing, 2020),
    `tls` (server authentication only); `signer.pfx` holds signer's key under PASSWORD."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    @property
    def pfx(self) -> Path:
        return self.folder / "signer.pfx"


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True,
                   timeout=120)


def _request(folder: Path, name: str, subject: str) -> None:
    _openssl(folder, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, "-config", "pki.cnf")


def _issue(folder: Path, name: str, ext: str, start: str, end: str) -> None:
    _openssl(folder, "ca", "-batch", "-config", "pki.cnf", "-cert", "ca.pem", "-keyfile",
             "ca.key", "-in", f"{name}.csr", "-out", f"{name}.pem", "-extfile", "pki.cnf",
             "-extensions", ext, "-startdate", start, "-enddate", end, "-notext")


def make_pki(folder: Path) -> Pki:
    """The CA and certificates of `Pki`, made with the openssl command line."""
    require(not sign.missing_tools(), "osslsigncode and openssl")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pki.cnf").write_text(_EXTENSIONS)
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("1000\n")
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "3650", "-subj", "/CN=dcomc Test CA", "-config",
             "pki.cnf", "-extensions", "ca_ext")
    for name, ext, start, end in (
            ("signer", "code_ext", "20240101000000Z", "20991231000000Z"),
            ("other", "code_ext", "20240101000000Z", "20991231000000Z"),
            ("expired", "code_ext", "20200101000000Z", "20210101000000Z"),
            ("tls", "tls_ext", "20240101000000Z", "20991231000000Z")):
        _request(folder, name, f"/CN=dcomc test {name}/O=Plant Integrator")
        _issue(folder, name, ext, start, end)
    _pfx(folder)
    return Pki(folder)


def _pfx(folder: Path) -> None:
    """signer.pfx under PASSWORD, given to openssl in its environment, not its arguments."""
    subprocess.run(["openssl", "pkcs12", "-export", "-in", "signer.pem", "-inkey",
                    "signer.key", "-certfile", "ca.pem", "-out", "signer.pfx", "-passout",
                    "env:DCOMC_TEST_PFX", "-name", "signer"], cwd=folder, check=True,
                   capture_output=True, timeout=120,
                   env={**os.environ, "DCOMC_TEST_PFX": PASSWORD})


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def pem_signer(pki: Pki, name: str = "signer") -> sign.SignSettings:
    return sign.SignSettings(pki.cert(name), str(pki.key(name)))


def osslsigncode_verify(pki: Pki, path: Path) -> str:
    proc = subprocess.run(["osslsigncode", "verify", "-CAfile", str(pki.ca), "-in", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


SCRIPT = b"# Data of a dcomc host\r\n@{\r\n    Site = 'plant7-line3'\r\n}\r\n"


def test_cert_info_reads_subject_fingerprint_validity_and_eku(pki: Pki) -> None:
    info = sign.cert_info(pki.cert("signer").read_bytes())
    assert "CN=dcomc test signer" in info.subject and info.code_signing
    assert info.not_before == 1704067200 and info.not_after == 4102358400
    der = subprocess.run(["openssl", "x509", "-in", str(pki.cert("signer")), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert info.sha256 == hashlib.sha256(der).hexdigest().upper()
    assert not sign.cert_info(pki.cert("tls").read_bytes()).code_signing


def test_a_signature_is_reproducible(pki: Pki, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Same data, key and SOURCE_DATE_EPOCH: the same bytes, from two signers (no cache)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    with sign.Signer(pem_signer(pki)) as one, sign.Signer(pem_signer(pki)) as two:
        first, second = one.sign_bytes(SCRIPT, "H.psd1"), two.sign_bytes(SCRIPT, "H.psd1")
    assert first == second and first.startswith(SCRIPT)
    assert b"# SIG # Begin signature block" in first
    (tmp_path / "H.psd1").write_bytes(first)
    assert "Signing time: Nov 14 22:13:20 2023 GMT" in osslsigncode_verify(pki, tmp_path / "H.psd1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000001")
    with sign.Signer(pem_signer(pki)) as three:
        assert three.sign_bytes(SCRIPT, "H.psd1") != first  # the time is in the signature


def test_without_source_date_epoch_the_time_is_the_certificates_start(
        pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    with sign.Signer(pem_signer(pki)) as signer:
        (tmp_path / "H.ps1").write_bytes(signer.sign_bytes(SCRIPT, "H.ps1"))
        assert signer.time == 1704067200
    assert "Signing time: Jan  1 00:00:00 2024 GMT" in osslsigncode_verify(pki, tmp_path / "H.ps1")


def test_manifest_signature_is_detached_reproducible_and_verifies(pki: Pki,
                                                                  tmp_path: Path) -> None:
    manifest = b'{"format": 1}\n'
    with sign.Signer(pem_signer(pki)) as one, sign.Signer(pem_signer(pki)) as two:
        p7s = one.sign_manifest(manifest)
        assert two.sign_manifest(manifest) == p7s  # no signing time: -noattr
    (tmp_path / "m.json").write_bytes(manifest)
    (tmp_path / "m.p7s").write_bytes(p7s)
    check = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
             str(tmp_path / "m.p7s"), "-CAfile", str(pki.ca), "-purpose", "any", "-out",
             "/dev/null", "-content"]
    assert subprocess.run([*check, str(tmp_path / "m.json")], capture_output=True).returncode == 0
    (tmp_path / "m.json").write_bytes(b'{"format": 2}\n')
    assert subprocess.run([*check, str(tmp_path / "m.json")], capture_output=True).returncode != 0


def test_pkcs12_with_its_password_signs_like_the_pem_pair(pki: Pki,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    settings = sign.SignSettings(pki.pfx, password=PASSWORD)
    assert sign.needs_password(settings) and not sign.needs_password(pem_signer(pki))
    with sign.Signer(settings) as signer:
        assert signer.info.sha256 == sign.fingerprint(pki.cert("signer").read_bytes())
        signed = signer.sign_bytes(SCRIPT, "H.psm1")
    with sign.Signer(pem_signer(pki)) as pem:
        # the same signer; the PKCS#12 file also carries the CA, so its signatures do too
        assert signed[:len(SCRIPT)] == pem.sign_bytes(SCRIPT, "H.psm1")[:len(SCRIPT)]


def test_a_wrong_password_is_one_error_without_the_password(pki: Pki) -> None:
    with pytest.raises(sign.SignError) as caught:
        sign.Signer(sign.SignSettings(pki.pfx, password="wrong-" + PASSWORD))
    assert caught.value.code == "E410" and PASSWORD not in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the command line --------------------------------------------------------------------------


def _build(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """dcomc in a child process (its environment is the test's, not this process's)."""
    dcomc = shutil.which("dcomc")
    assert dcomc is not None
    return subprocess.run([dcomc, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                          check=False)


def test_build_takes_the_password_from_the_variable_it_names(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = _build(["build", str(PLANT7), "-o", str(out), "--no-msi", "--sign", str(pki.pfx),
                   "--sign-pass-env", "PLANT_SIGN_PASSWORD"],
                  {"PLANT_SIGN_PASSWORD": PASSWORD})
    assert proc.returncode == 0, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert (out / sign.SIGNATURE).is_file()
    osslsigncode_verify(pki, out / "SCADA01" / "powershell" / "SCADA01.psd1")


def test_a_protected_key_without_a_terminal_or_variable_is_refused(pki: Pki,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = _build(["build", str(PLANT7), "-o", str(out), "--no-msi", "--sign", str(pki.pfx)])
    assert proc.returncode == 2 and "--sign-pass-env" in proc.stderr and "[E410]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_an_unset_password_variable_is_refused(pki: Pki, tmp_path: Path) -> None:
    proc = _build(["build", str(PLANT7), "-o", str(tmp_path / "b"), "--no-msi", "--sign",
                   str(pki.pfx), "--sign-pass-env", "NO_SUCH_VARIABLE_X"])
    assert proc.returncode == 2 and "NO_SUCH_VARIABLE_X" in proc.stderr


def test_the_settings_come_from_the_environment_for_ci(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = _build(["build", str(PLANT7), "-o", str(out), "--no-msi"],
                  {"DCOMC_SIGN": str(pki.cert("signer")), "DCOMC_SIGN_KEY": str(pki.key("signer"))})
    assert proc.returncode == 0, proc.stderr
    assert (out / sign.SIGNATURE).is_file()


def test_signing_options_without_sign_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(tmp_path / "b"),
                                       "--no-msi", "--sign-key", "k.pem"])
    assert result.exit_code == 2 and "need --sign CERT" in result.stderr


def test_an_unreadable_certificate_is_one_line(tmp_path: Path) -> None:
    require(not sign.missing_tools(), "osslsigncode and openssl")
    (tmp_path / "c.pem").write_text("not a certificate\n")
    (tmp_path / "k.pem").write_text("not a key\n")
    proc = _build(["build", str(PLANT7), "-o", str(tmp_path / "b"), "--no-msi", "--sign",
                   str(tmp_path / "c.pem"), "--sign-key", str(tmp_path / "k.pem")])
    assert proc.returncode == 2 and "[E410]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
