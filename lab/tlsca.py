"""A private certificate authority for the lab's and the tests' registries (openssl, EC P-256).

The pouch 1.3.0 release pulls over HTTPS only (it has no insecure-registries), so every registry a
pouchd pulls from serves TLS with a certificate from this CA, and the daemon trusts the CA: pouchd
reads ``SSL_CERT_FILE`` (Go's crypto/x509), a node gets it in its trust store. Keys are 0600.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
VALID_DAYS = "3650"


class CaError(RuntimeError):
    """openssl refused to make a key or certificate; the message has its output."""


def _openssl(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise CaError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


@dataclass(frozen=True)
class ServerCert:
    cert: Path
    key: Path


@dataclass(frozen=True)
class LabCa:
    """A CA kept in ``directory`` (ca.crt, ca.key); made once, reused while both files are there."""

    directory: Path
    name: str = "pouch-ansible lab CA"

    @property
    def cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> LabCa:
        if self.cert.is_file() and self.key.is_file():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        _new_key(self.key)
        _openssl(
            "req", "-x509", "-new", "-key", str(self.key), "-out", str(self.cert), "-days", VALID_DAYS,
            "-subj", f"/CN={self.name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        return self

    def server_cert(self, name: str, hosts: list[str]) -> ServerCert:
        """A server certificate for ``hosts`` (IP addresses and DNS names), reissued when the host
        list changes."""
        self.ensure()
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        hosts_file = self.directory / f"{name}.hosts"
        wanted = "\n".join(sorted(set(hosts)))
        if cert.is_file() and key.is_file() and hosts_file.is_file() and hosts_file.read_text() == wanted:
            return ServerCert(cert, key)
        san = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in sorted(set(hosts)))
        csr = self.directory / f"{name}.csr"
        _new_key(key)
        _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={hosts[0]}")
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(
            f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-out", str(cert), "-days", VALID_DAYS, "-extfile", str(extensions),
        )  # fmt: skip
        csr.unlink()
        hosts_file.write_text(wanted)
        return ServerCert(cert, key)

    def trust_bundle(self) -> Path:
        """The system's CA bundle plus this CA, for ``SSL_CERT_FILE`` (which replaces the system store)."""
        self.ensure()
        bundle = self.directory / "trust-bundle.pem"
        system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.is_file() else ""
        content = system + ("" if system.endswith("\n") or not system else "\n") + self.cert.read_text()
        if not bundle.is_file() or bundle.read_text() != content:
            bundle.write_text(content)
        return bundle


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
