"""`dcomc verify BUNDLE [--ca FILE]`: is this the bundle that was signed, by a certificate the
site trusts for code signing? Every check runs and every failure is named (docs/errors.md
E420-E430); the bundle passes only when there is none.

- files: every file the manifest lists is there with its sha256, and no other file is;
- the manifest's detached CMS signature (manifest.json.p7s) holds; its signer is *the*
  certificate of the bundle;
- every PowerShell file and MSI the manifest lists has an Authenticode signature that holds
  and is by that certificate (osslsigncode verify -require-leaf-hash);
- that certificate chains to --ca (else the system's store), names Code Signing in its
  extended key usage, and is valid now -- or, when every script and MSI carries an RFC 3161
  timestamp that holds, at the time of each timestamp, as Windows judges a timestamped
  Authenticode signature (the manifest's CMS signature carries no signing time: emit/sign.py
  signs it with -noattr, and Windows never reads it). A timestamp holds when its TSA chains to
  --ca or to the system's store (a public TSA's root is in the latter).

The tools are the real ones: openssl for the CMS signature and the chain, osslsigncode for
Authenticode. A chain failure is reported once, for the certificate, not for every file.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcomc.diagnostics import escaped
from dcomc.emit.layout import MANIFEST
from dcomc.emit.sign import (
    SIGNATURE,
    SIGNED_SUFFIXES,
    TOOL_SECONDS,
    CertInfo,
    SignError,
    cert_info,
    last_error,
    missing_tools,
    split_pem,
)
from dcomc.readback import manifest as bundle_manifest
from dcomc_targets.msi import workers

SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")  # osslsigncode's own default
_FILE_CODES = {"edited": ("E420", "its sha256 is not the manifest's: changed after signing"),
               "missing": ("E421", "is listed in the manifest but missing"),
               "unlisted": ("E422", "is not listed in the manifest: added after signing")}


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    check: str
    path: str | None
    message: str

    def json(self) -> dict[str, Any]:
        return {"code": self.code, "check": self.check, "path": self.path,
                "message": self.message}

    def text(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"FAIL {where}{self.message} [{self.code}]"


@dataclass(slots=True)
class Result:
    folder: Path
    signer: CertInfo | None = None
    files: int = 0
    signatures: int = 0
    failures: list[Failure] = field(default_factory=list)
    # each Authenticode-signed file's timestamp (epoch) when one holds, else None
    stamps: list[int | None] = field(default_factory=list)

    @property
    def judged_at(self) -> list[int] | None:
        """The times the certificate's validity is judged at: the timestamps, when every
        signed file has one that holds; None for now."""
        if not self.stamps or None in self.stamps:
            return None
        return sorted({s for s in self.stamps if s is not None})

    @property
    def ok(self) -> bool:
        return not self.failures

    def json(self) -> dict[str, Any]:
        return {"bundle": str(self.folder), "ok": self.ok, "files": self.files,
                "authenticode_signatures": self.signatures,
                "signer": None if self.signer is None else self.signer.json(),
                "validity_judged_at": None if self.judged_at is None else
                [_iso(t) for t in (self.judged_at[0], self.judged_at[-1])],
                "failures": [f.json() for f in self.failures]}

    def text(self) -> str:
        lines = [f"bundle {self.folder}: {self.files} files listed, "
                 f"{self.signatures} Authenticode signatures checked"]
        if self.signer is not None:
            lines.append(f"signer: {self.signer.subject}, certificate sha256 "
                         f"{self.signer.sha256}")
        if self.judged_at is not None:
            lines.append("every signature is timestamped: the certificate is judged at "
                         f"{_span(self.judged_at)}, not now")
        lines += self._failure_lines()
        lines.append("ok: every check holds" if self.ok else
                     f"{len(self.failures)} check(s) failed: do not install this bundle")
        # a file name or certificate subject from the bundle may hold a newline: each line is
        # escaped, so no value can print a line of its own ("ok: every check holds")
        return "\n".join(escaped(line) for line in lines) + "\n"

    def _failure_lines(self) -> list[str]:
        """A line per failure; a bundle never signed (no manifest signature, no file signed)
        gets one line for its unsigned files instead of one per file (--json lists them)."""
        unsigned = [f for f in self.failures if f.code == "E425"]
        never_signed = any(f.code == "E423" for f in self.failures) and self.signatures > 1 \
            and len(unsigned) == self.signatures
        if not never_signed:
            return [f.text() for f in self.failures]
        return [f.text() for f in self.failures if f.code != "E425"] + [
            f"FAIL none of the {self.signatures} PowerShell files and MSIs has an Authenticode "
            "signature (--json lists them) [E425]"]


def verify(folder: Path, ca: Path | None) -> Result:
    """Every check of the bundle `folder`. InputError when it is not a readable bundle,
    SignError (E410) when a tool is missing."""
    manifest = bundle_manifest.read_manifest(folder)
    result = Result(folder, files=len(manifest.listed))
    spoiled = bundle_manifest.tampered(folder, manifest)
    result.failures += [Failure(_FILE_CODES[what][0], what, rel, _FILE_CODES[what][1])
                        for rel, what in spoiled]
    with _Workspace() as work:
        certs = _manifest_signer(folder, work, result)
        if certs is not None:
            result.signer = cert_info(certs[0])
        anchors = ca if ca is not None else SYSTEM_CA
        # a timestamp's TSA is trusted by --ca or the system's store (public TSAs are there)
        tsa = work.write("tsa-anchors.pem", (ca.read_bytes() + b"\n" if ca else b"")
                         + _system_ca())
        files = _authenticode(folder, manifest, {rel for rel, _ in spoiled}, result, anchors,
                              tsa)  # fills result.stamps
        if certs is not None and result.signer is not None:
            result.failures += _certificate(result.signer, certs, ca, work, result.judged_at)
        result.failures += files
    return result


def integrity(folder: Path, manifest: bundle_manifest.Manifest,
              spoiled: set[str] | None = None) -> list[Failure]:
    """The signatures' part of `verify` without trusting anyone (what `dcomc diff` adds to a
    signed bundle's tampered files): the manifest signature holds, and every Authenticode
    signature covers its file and is by the manifest's signer. Chain and validity aside.
    `spoiled`: the files not as the manifest lists them (`tampered`), when known."""
    result = Result(folder)
    with _Workspace() as work:
        certs = _manifest_signer(folder, work, result)
        if certs is not None:
            result.signer = cert_info(certs[0])
        anchors = work.write("anchors.pem", b"".join(certs or []) + _system_ca())
        return result.failures + _authenticode(folder, manifest, spoiled, result, anchors,
                                               anchors)


class _Workspace:
    """A private temporary folder for the tools' files."""

    def __enter__(self) -> _Workspace:
        if missing_tools():
            raise SignError("E410", f"{', '.join(missing_tools())} not found: cannot verify "
                                    "signatures (apt-get install osslsigncode openssl)")
        self.dir = Path(tempfile.mkdtemp(prefix="dcomc-verify-"))
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path


def _now() -> int:
    """The clock every check judges by (osslsigncode's and openssl's too); one function, so
    that a test can set it after a certificate's end."""
    return int(time.time())


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _span(times: list[int]) -> str:
    """The timestamps' day(s): "2026-11-30", or "2026-11-30 to 2026-12-02"."""
    first, last = _day(times[0]), _day(times[-1])
    return f"the timestamps' time {first}" + ("" if first == last else f" to {last}")


def _tool(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=TOOL_SECONDS, check=False,
                          stdin=subprocess.DEVNULL)


def _manifest_signer(folder: Path, work: _Workspace, result: Result) -> list[bytes] | None:
    """The manifest signature's certificates, the signer first, when the signature holds
    (integrity only: the chain is judged by `_certificate`); else a failure, and None."""
    p7s = folder / SIGNATURE
    if not p7s.is_file():
        result.failures.append(Failure("E423", "unsigned", SIGNATURE, "missing: the bundle "
                                       "is not signed (dcomc build --sign, or dcomc sign)"))
        return None
    signer = work.dir / "signer.pem"
    proc = _tool(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
                  "-in", str(p7s), "-content", str(folder / MANIFEST), "-signer", str(signer),
                  "-out", "/dev/null"])
    if proc.returncode != 0 or not signer.is_file():
        result.failures.append(Failure("E424", "manifest-signature", MANIFEST,
                                       "its signature (manifest.json.p7s) does not hold: the "
                                       f"manifest was changed after signing ({last_error(proc)})"))
        return None
    leaf = split_pem(signer.read_bytes())[:1]
    every = _tool(["openssl", "pkcs7", "-inform", "DER", "-in", str(p7s), "-print_certs"])
    return leaf + [c for c in split_pem(every.stdout) if c not in leaf]


def _certificate(info: CertInfo, certs: list[bytes], ca: Path | None,
                 work: _Workspace, stamps: list[int] | None) -> list[Failure]:
    """Code signing, validity (now, or at every timestamp of `stamps`), and the chain to the
    trusted roots (at the same time)."""
    found: list[Failure] = []
    if not info.code_signing:
        found.append(Failure("E429", "not-code-signing", None, f"the certificate of "
                             f"{info.subject} does not name Code Signing in its extended key "
                             "usage: Windows refuses it for Authenticode"))
    if stamps:
        first, last = stamps[0], stamps[-1]
    else:
        first = last = _now()  # one reading: the validity and the chain judged at one time
    if not info.not_before <= first <= last <= info.not_after:
        late = last > info.not_after
        state = "expired on" if late else "not valid before"
        at = "" if stamps is None else f", before {_span(stamps)}" if late else \
            f", after {_span(stamps)}"
        found.append(Failure("E430", "validity", None, f"the certificate of {info.subject} "
                             f"{state} {_day(info.not_after if late else info.not_before)}{at}"))
    args = ["openssl", "verify", "-purpose", "any"]
    if found and found[-1].code == "E430":
        args.append("-no_check_time")  # its validity is E430's: judge the chain alone
    else:
        args += ["-attime", str(last)]
    if ca is not None:
        args += ["-CAfile", str(ca), "-no-CApath"]
    if len(certs) > 1:
        args += ["-untrusted", str(work.write("untrusted.pem", b"".join(certs[1:])))]
    proc = _tool([*args, str(work.write("leaf.pem", certs[0]))])
    if proc.returncode != 0:
        trusted = f"the CA file {ca}" if ca is not None else "the system's certificate store"
        found.append(Failure("E428", "chain", None, f"the certificate of {info.subject} does "
                             f"not chain to {trusted}: {_chain_error(proc)}"))
    return found


def _chain_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    """openssl verify's reason ("unable to get local issuer certificate"), without the
    temporary file's name its last line carries."""
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    reasons = [line.partition(" lookup: ")[2] for line in text.splitlines() if " lookup: " in line]
    return reasons[0].strip() if reasons else last_error(proc)


def _system_ca() -> bytes:
    try:
        return SYSTEM_CA.read_bytes()
    except OSError:
        return b""


def _authenticode(folder: Path, manifest: bundle_manifest.Manifest, spoiled: set[str] | None,
                  result: Result, anchors: Path, tsa: Path) -> list[Failure]:
    """Each listed PowerShell file and MSI, once per distinct content (the engine is the same
    on every host: grouped by the manifest's hash where `tampered` found the file as listed,
    else by its own; `spoiled` None: every file hashed), in parallel; each one's timestamp
    goes to `result.stamps`."""
    paths = [rel for rel in sorted(manifest.listed) if rel.lower().endswith(SIGNED_SUFFIXES)
             and (folder / rel).is_file()]
    by_content: dict[str, list[str]] = {}
    for rel in paths:
        digest = manifest.listed[rel] if spoiled is not None and rel not in spoiled else \
            hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        by_content.setdefault(digest, []).append(rel)
    leaf = None if result.signer is None else result.signer.sha256
    firsts = [rels[0] for rels in by_content.values()]
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        answers = list(pool.map(lambda rel: _one(folder / rel, anchors, tsa, leaf), firsts))
    result.signatures = len(paths)
    result.stamps = [stamp for rels, (_, stamp) in zip(by_content.values(), answers,
                                                       strict=True) for _ in rels]
    return [Failure(code, check, rel, message)
            for rels, (answer, _) in zip(by_content.values(), answers, strict=True)
            if answer is not None for rel in rels for code, check, message in [answer]]


# A PowerShell file's Authenticode signature is a comment block at its end that starts so
# (UTF-8 or UTF-16): a script without one has none, and is told so without a tool run (an
# unsigned bundle of 10,000 hosts: 30,000 osslsigncode runs, 18 s).
_PS_SIGNATURE = tuple("# SIG # Begin signature block".encode(encoding)
                      for encoding in ("utf-8", "utf-16-le", "utf-16-be"))
_UNSIGNED = ("E425", "unsigned-file", "has no Authenticode signature")


def _one(path: Path, anchors: Path, tsa: Path, leaf: str | None
         ) -> tuple[tuple[str, str, str] | None, int | None]:
    """One file's Authenticode signature: None when it holds (its chain aside), else the
    failure's code, check and message; and its timestamp when one holds."""
    if path.suffix.lower() != ".msi" and not any(m in path.read_bytes() for m in _PS_SIGNATURE):
        return _UNSIGNED, None
    args = ["osslsigncode", "verify", "-CAfile", str(anchors), "-TSA-CAfile", str(tsa),
            "-time", str(_now()), "-in", str(path)]
    if leaf is not None:
        args += ["-require-leaf-hash", f"sha256:{leaf}"]
    proc = _tool(args)
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    return _failure(proc, out), _stamp(out)


def _stamp(out: str) -> int | None:
    """The primary signature's timestamp from osslsigncode's report, when its TSA's
    signature verified ("Timestamp Server Signature verification: ok")."""
    found = _STAMP.search(out)
    if found is None or "Timestamp Server Signature verification: ok" not in out:
        return None
    return calendar.timegm(time.strptime(" ".join(found[1].split()), "%b %d %H:%M:%S %Y"))


_STAMP = re.compile(r"^\s*Timestamp time: (\w{3} +\d+ [\d:]+ \d{4}) GMT", re.M)


def _failure(proc: subprocess.CompletedProcess[bytes], out: str) -> tuple[str, str, str] | None:
    if proc.returncode == 0:
        return None
    if "No signature found" in out:
        return _UNSIGNED
    if "MISMATCH" in out:
        return "E426", "signature", "was changed after it was signed (its digest differs)"
    if "Leaf hash match: failed" in out:
        return "E427", "other-signer", "is signed by another certificate than the manifest"
    if "Failed signing certificate chain" in out or "certificate purpose" in out:
        return None  # the certificate's matter: reported once, for it (E428, E429, E430)
    return "E426", "signature", f"its Authenticode signature does not hold: {last_error(proc)}"
