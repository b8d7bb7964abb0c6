"""Signing a bundle: Authenticode (SHA-256) on every PowerShell file and MSI with osslsigncode,
and a detached CMS signature of manifest.json (`manifest.json.p7s`) with openssl, both with the
same certificate (issue 14).

Reproducible: RSA (PKCS#1 v1.5) signatures are a function of key and data; osslsigncode writes
the signing time given by `-time` (SOURCE_DATE_EPOCH, else the certificate's notBefore, so the
same spec and key give the same bytes without a clock); the manifest's CMS signature carries
no signed attributes (`-noattr`), so no signing time at all. With a timestamp server the RFC
3161 countersignature of each Authenticode signature is the only difference between two builds.

Secrets: the key's password (or a token's PIN) reaches the tools on their standard input
(`-readpass -`, `-passin stdin`), never on a command line or in a file. With a token both tools
hand it to the PKCS#11 engine as its PIN (osslsigncode's ENGINE "PIN" control, openssl's UI
callback), so the token logs in without a prompt.

Tokens: osslsigncode takes the module and engine as options; `openssl cms` cannot, so it gets
a private openssl.cnf (OPENSSL_CONF) that loads the engine from `--pkcs11-engine` and sets its
MODULE_PATH to `--pkcs11-module` -- else the engine would open p11-kit's proxy, which sees only
the tokens registered with p11-kit, and `-engine /path/to/pkcs11.so` alone is "bad engine id".
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from dcomc.epoch import EpochError, source_date_epoch

SIGNATURE = "manifest.json.p7s"
SCRIPT_SUFFIXES = (".ps1", ".psm1", ".psd1")
SIGNED_SUFFIXES = (*SCRIPT_SUFFIXES, ".msi")
TOOLS = ("osslsigncode", "openssl")
TOOL_SECONDS = 300  # a timestamp server may be slow; a hung token must not hang a build
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)
_NAMES = itertools.count()  # unique temporary file names across threads


class SignError(RuntimeError):
    """Signing cannot be done; `code` is its docs/errors.md code, the message one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SignSettings:
    """What signs: `cert` a PKCS#12 file (no `key`), or a PEM certificate (the chain may
    follow it in the file) with `key` a PEM key file, or with `pkcs11_module` the token's key
    id or `pkcs11:` URI."""

    cert: Path
    key: str | None = None
    chain: Path | None = None
    password: str | None = field(default=None, repr=False)
    timestamp: str | None = None
    pkcs11_module: str | None = None
    pkcs11_engine: str | None = None

    @property
    def pkcs12(self) -> bool:
        return self.key is None and self.pkcs11_module is None


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What dcomc shows and checks of a certificate."""

    subject: str
    sha256: str  # uppercase hex, as Windows' GetCertHashString('SHA256') writes it
    not_before: int
    not_after: int
    code_signing: bool  # its extended key usage names Code Signing

    def json(self) -> dict[str, Any]:
        return {"subject": self.subject, "sha256": self.sha256,
                "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
                "code_signing": self.code_signing}


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(args: list[str], what: str, data: bytes | None = None,
        code: str = "E411", env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    """A signing tool, checked; SignError with its last error line when it fails. `data` (a
    password, or nothing) is its standard input, so that it never prompts on a terminal."""
    try:
        proc = subprocess.run(args, input=data or b"", capture_output=True,
                              timeout=TOOL_SECONDS, check=False, env=env)
    except OSError as exc:
        raise SignError(code, f"{what}: {args[0]} could not run: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:  # its text would name the whole command line
        raise SignError(code, f"{what}: {args[0]} did not finish within {TOOL_SECONDS} s"
                        ) from None
    if proc.returncode != 0:
        raise SignError(code, f"{what}: {args[0]} failed: {last_error(proc)}")
    return proc


def last_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The tool's most telling line: its last error line, else its last line."""
    lines = [line.strip() for line in (proc.stderr + proc.stdout).decode(
        errors="replace").splitlines() if line.strip()]
    # osslsigncode ends with a bare "Failed" after the reason: not telling
    errors = [line for line in lines if ("error" in line.lower() or "fail" in line.lower())
              and line.lower() != "failed"]
    return (errors or lines or [f"exit {proc.returncode}"])[-1][:300]


def cert_info(pem: bytes) -> CertInfo:
    """Subject, SHA-256 fingerprint, validity and code-signing EKU of a PEM certificate."""
    proc = subprocess.run(
        ["openssl", "x509", "-noout", "-nameopt", "RFC2253", "-subject", "-fingerprint",
         "-sha256", "-startdate", "-enddate", "-ext", "extendedKeyUsage"],
        input=pem, capture_output=True, timeout=TOOL_SECONDS, check=False)
    if proc.returncode != 0:
        raise SignError("E410", f"not a certificate: {last_error(proc)}")
    text = proc.stdout.decode(errors="replace")
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return CertInfo(fields.get("subject", "").strip(),
                    fields.get("sha256 Fingerprint", "").replace(":", "").strip().upper(),
                    _date(fields.get("notBefore", "")), _date(fields.get("notAfter", "")),
                    "Code Signing" in text)


def _date(text: str) -> int:
    return calendar.timegm(time.strptime(text.strip(), "%b %d %H:%M:%S %Y GMT"))


def fingerprint(pem: bytes) -> str:
    return cert_info(pem).sha256


def split_pem(data: bytes) -> list[bytes]:
    return [block.strip() + b"\n" for block in _PEM_CERT.findall(data)]


def needs_password(settings: SignSettings) -> bool:
    """Whether the key is protected, so that the CLI asks only when it must. A token always
    may want its PIN; a PKCS#12 file is tried with the empty password."""
    if settings.pkcs11_module is not None:
        return True
    if settings.key is not None:
        text = _read(Path(settings.key), "the key")
        return b"ENCRYPTED" in text.split(b"-----END", 1)[0]
    proc = subprocess.run(["openssl", "pkcs12", "-in", str(settings.cert), "-nokeys",
                           "-passin", "pass:"], capture_output=True, timeout=TOOL_SECONDS,
                          check=False)  # the empty password: nothing secret on this line
    return proc.returncode != 0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SignError("E410", f"cannot read {what} {path}: {exc.strerror or exc}") from None


class Signer:
    """Signs files with one certificate; a context manager owning a private folder (0700) for
    the tools' input and output files, removed at the end. Identical inputs are signed once
    (the engine is the same bytes on every host) and thread-safely."""

    def __init__(self, settings: SignSettings) -> None:
        missing = missing_tools()
        if missing:
            raise SignError("E410", f"{', '.join(missing)} not found: cannot sign (apt-get "
                                    "install osslsigncode openssl)")
        if "pin-value" in (settings.key or "").casefold():
            # the key reaches the tools' command lines (-key, -inkey): no secret may
            raise SignError("E410", "--sign-key: a PKCS#11 URI with pin-value would put the PIN "
                            "on a command line; give it with --sign-pass-env or at the prompt")
        self.settings = settings
        self._dir = Path(tempfile.mkdtemp(prefix="dcomc-sign-"))
        self._cache: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        # A token is one device: SoftHSM fails "Failed to enumerate slots" (CKR_GENERAL_ERROR)
        # when osslsigncode processes open it at once, and a smart card behind pcscd grants
        # one reader at a time; so with a token the tools run one after another.
        self._device = threading.Lock() if settings.pkcs11_module is not None else None
        try:
            self.leaf, self.chain = self._certificates()
            self.info = cert_info(self.leaf)
            self.time = _signing_time(self.info)
            self._certs = self._file("certs.pem", self.leaf + self.chain)
            self._chain = self._file("chain.pem", self.chain) if self.chain else None
            self._openssl_env = None if settings.pkcs11_module is None else {
                **os.environ, "OPENSSL_CONF": str(self._file(
                    "openssl-pkcs11.cnf", _engine_config(settings).encode()))}
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Signer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def _file(self, name: str, data: bytes) -> Path:
        path = self._dir / name
        path.write_bytes(data)
        return path

    def _password(self) -> bytes | None:
        password = self.settings.password
        return None if password is None else password.encode()

    def _certificates(self) -> tuple[bytes, bytes]:
        """The signer's certificate and the rest of its chain (PEM)."""
        s = self.settings
        if s.pkcs12:
            leaf = self._pkcs12(["-clcerts"])
            rest = self._pkcs12(["-cacerts"])
        else:
            certs = split_pem(_read(s.cert, "the certificate"))
            if not certs:
                raise SignError("E410", f"{s.cert}: no PEM certificate in it (a PKCS#12 "
                                        "file is given without --sign-key)")
            leaf, rest = certs[0], b"".join(certs[1:])
        if s.chain is not None:
            rest += b"".join(split_pem(_read(s.chain, "the chain")))
        if not split_pem(leaf):
            raise SignError("E410", f"{s.cert}: no certificate in it")
        return split_pem(leaf)[0], rest

    def _pkcs12(self, which: list[str]) -> bytes:
        args = ["openssl", "pkcs12", "-in", str(self.settings.cert), "-nokeys", *which,
                "-passin", "stdin"]
        proc = run(args, f"{self.settings.cert}", self._password() or b"\n", code="E410")
        return b"".join(split_pem(proc.stdout))

    def _identity(self) -> list[str]:
        """osslsigncode's options naming certificate and key."""
        s = self.settings
        if s.pkcs12:
            # the file's own chain is in the signature already: add only --sign-chain's
            extra = ["-ac", str(s.chain)] if s.chain is not None else []
            return ["-pkcs12", str(s.cert), *extra]
        assert s.key is not None
        token: list[str] = []
        if s.pkcs11_module is not None:
            engine = ["-pkcs11engine", s.pkcs11_engine] if s.pkcs11_engine else []
            token = [*engine, "-pkcs11module", s.pkcs11_module]
        return [*token, "-certs", str(self._certs), "-key", s.key]

    def _osslsigncode(self, source: Path, target: Path, what: str) -> None:
        s = self.settings
        args = ["osslsigncode", "sign", *self._identity(), "-h", "sha256",
                "-time", str(self.time)]
        if s.timestamp:
            args += ["-ts", s.timestamp]
        password = self._password()
        if password is not None:
            args += ["-readpass", "-"]
        with self._device or contextlib.nullcontext():
            run([*args, "-in", str(source), "-out", str(target)], f"signing {what}", password)

    def sign_bytes(self, data: bytes, name: str) -> bytes:
        """`data`, the file `name`, with an Authenticode signature (once per distinct input:
        a signature is a function of key, time and data)."""
        key = (hashlib.sha256(data).hexdigest(), Path(name).suffix.lower())
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        n = next(_NAMES)
        source = self._file(f"in-{n}{key[1]}", data)
        target = self._dir / f"out-{n}{key[1]}"
        try:
            self._osslsigncode(source, target, name)
            signed = target.read_bytes()
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        with self._lock:
            self._cache[key] = signed
        return signed

    def sign_scripts(self, files: dict[str, bytes]) -> dict[str, bytes]:
        """The files by path, the PowerShell ones signed."""
        return {path: self.sign_bytes(data, path) if is_script(path) else data
                for path, data in files.items()}

    def sign_file(self, path: Path) -> bytes:
        """Sign a file in place (an MSI); returns its signed bytes."""
        target = path.with_name(f".{path.name}.signed-{next(_NAMES)}")
        try:
            self._osslsigncode(path, target, path.name)
            signed = target.read_bytes()
            target.replace(path)
        finally:
            target.unlink(missing_ok=True)
        return signed

    def sign_files(self, paths: Iterable[Path], workers: int) -> dict[Path, bytes]:
        """Sign files in place in parallel (an osslsigncode per worker)."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            paths = list(paths)
            return dict(zip(paths, pool.map(self.sign_file, paths), strict=True))

    def sign_manifest(self, manifest: bytes) -> bytes:
        """The detached CMS signature (DER) of the manifest: SHA-256, no signed attributes
        (so no signing time: reproducible), the signer's chain included."""
        s = self.settings
        source = self._file(f"manifest-{next(_NAMES)}.json", manifest)
        args = ["openssl", "cms", "-sign", "-binary", "-noattr", "-md", "sha256",
                "-outform", "DER", "-in", str(source), "-signer", str(self._file(
                    "leaf.pem", self.leaf))]
        if s.pkcs11_module is not None:  # the engine as _engine_config loads it
            args += ["-engine", "pkcs11", "-keyform", "engine"]
        args += ["-inkey", s.key if s.key is not None else str(s.cert)]
        if self._chain is not None:
            args += ["-certfile", str(self._chain)]
        password = self._password()
        if password is not None:
            args += ["-passin", "stdin"]
        try:
            with self._device or contextlib.nullcontext():
                return run(args, f"signing {SIGNATURE}", password, env=self._openssl_env).stdout
        finally:
            source.unlink(missing_ok=True)


def _engine_config(settings: SignSettings) -> str:
    """An openssl.cnf that loads the PKCS#11 engine (from `pkcs11_engine`, else the one of
    OpenSSL's engines folder) as "pkcs11" with the token's module. Nothing secret in it: the
    PIN comes on standard input."""
    lines = ["openssl_conf = dcomc_init", "[dcomc_init]", "engines = dcomc_engines",
             "[dcomc_engines]", "pkcs11 = dcomc_pkcs11", "[dcomc_pkcs11]",
             "engine_id = pkcs11"]
    if settings.pkcs11_engine:
        lines.append(f"dynamic_path = {_conf_value(settings.pkcs11_engine)}")
    assert settings.pkcs11_module is not None
    lines.append(f"MODULE_PATH = {_conf_value(settings.pkcs11_module)}")
    return "\n".join(lines) + "\n"


def _conf_value(value: str) -> str:
    """A path as an openssl.cnf value: quoted, so that `$`, `#` and spaces are taken as they
    are (inside quotes a backslash escapes the next character only)."""
    if any(ord(c) < 32 for c in value):
        raise SignError("E410", f"{value!r}: a PKCS#11 path cannot hold control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_script(path: str) -> bool:
    return path.lower().endswith(SCRIPT_SUFFIXES)


def _signing_time(info: CertInfo) -> int:
    """SOURCE_DATE_EPOCH, else the certificate's notBefore: fixed for a given certificate,
    and never before it was valid (a verifier may compare the two)."""
    try:
        epoch = source_date_epoch()
    except EpochError as exc:
        raise SignError("E410", str(exc)) from None
    return info.not_before if epoch is None else epoch
