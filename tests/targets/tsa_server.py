"""A local RFC 3161 timestamp authority for the signing tests (issue 14): an HTTP server in a
thread that answers each `application/timestamp-query` POST with `openssl ts -reply`, signed by
a throw-away TSA certificate (extendedKeyUsage critical timeStamping, as RFC 3161 requires)
issued by its own CA. The tests need no network and no public TSA, and every answer is made by
the real openssl, so osslsigncode checks a real countersignature."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# `openssl ts -reply` reads its TSA from a config section; the serial file makes every answer
# unique, as a public TSA's are.
_CONFIG = """
[tsa]
default_tsa = dcomc_tsa
[dcomc_tsa]
dir = {dir}
serial = $dir/tsa-serial
signer_cert = $dir/tsa.pem
certs = $dir/tsa-ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[tsa_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Tsa:
    url: str
    ca: Path  # the TSA's root: what `osslsigncode verify -TSA-CAfile` trusts
    requests: list[int]  # one entry per answered request, so a test can tell it was asked


def _openssl(folder: Path, *args: str, data: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], cwd=folder, input=data, capture_output=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def make_tsa(folder: Path) -> None:
    """The TSA's CA (tsa-ca.pem), its certificate (tsa.pem) and key, valid about 74 years so
    that the TSA outlives the code-signing certificates the tests let expire."""
    (folder / "tsa.cnf").write_text(_CONFIG.format(dir=folder))
    (folder / "tsa-serial").write_text("01\n")
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa-ca.key",
             "-out", "tsa-ca.pem", "-subj", "/CN=dcomc Test TSA CA", "-config", "tsa.cnf",
             "-extensions", "ca_ext", "-days", "27000")
    _openssl(folder, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key",
             "-out", "tsa.csr", "-subj", "/CN=dcomc Test TSA", "-config", "tsa.cnf")
    _openssl(folder, "x509", "-req", "-in", "tsa.csr", "-CA", "tsa-ca.pem", "-CAkey",
             "tsa-ca.key", "-CAcreateserial", "-out", "tsa.pem", "-days", "27000",
             "-extfile", "tsa.cnf", "-extensions", "tsa_ext")


class _Handler(BaseHTTPRequestHandler):
    folder: Path
    requests: list[int]
    lock: threading.Lock

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        query = self.rfile.read(length)
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(415, "application/timestamp-query expected")
            return
        with self.lock:  # one serial file: answers one at a time
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tsq") as tsq:
                tsq.write(query)
                tsq.flush()
                try:
                    reply = _openssl(self.folder, "ts", "-reply", "-config", "tsa.cnf",
                                     "-queryfile", tsq.name)
                except RuntimeError as exc:
                    self.send_error(400, str(exc)[:200])
                    return
            self.requests.append(len(query))
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows a failing test's output, not every request."""


@contextmanager
def serve(folder: Path) -> Iterator[Tsa]:
    """A running TSA on 127.0.0.1 (a free port), made in `folder`; stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "tsa.pem").is_file():
        make_tsa(folder)
    requests: list[int] = []
    handler = type("Handler", (_Handler,), {"folder": folder, "requests": requests,
                                            "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(f"http://127.0.0.1:{server.server_address[1]}", folder / "tsa-ca.pem",
                  requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
