"""A local OCI registry: Debian's docker-registry (distribution 2.8) bound to 127.0.0.1.

The process is tracked by a pidfile in its state dir, so another process (``lab down``, a test
session's teardown) can stop a registry it did not start. The access log (stdout of the registry,
combined log format with byte counts) is kept apart from the application log, for egress figures.

With ``credentials={user: password}`` the registry requires HTTP basic auth (distribution's htpasswd
backend, which reads bcrypt hashes only): the htpasswd file is written with ``htpasswd -B`` from
Debian's apache2-utils, the password passed on stdin, never on a command line.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab.testimages import TestImage
from lab.tlsca import ServerCert

REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"
CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}
"""
TLS_TEMPLATE = """\
  tls:
    certificate: {cert}
    key: {key}
"""
# distribution's `redirect` storage middleware: blob GETs are answered with a redirect to this base
# URL + the blob's storage path (/docker/registry/v2/blobs/sha256/<xx>/<hex>/data), as a registry
# whose blobs live in an object store does.
REDIRECT_TEMPLATE = """\
middleware:
  storage:
    - name: redirect
      options:
        baseurl: {baseurl}
"""
AUTH_TEMPLATE = """\
auth:
  htpasswd:
    realm: pouch-ansible-lab
    path: {htpasswd}
"""


class RegistryError(RuntimeError):
    """The registry could not be started, reached or seeded; the message names the log file."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def write_htpasswd(path: Path, credentials: dict[str, str]) -> None:
    """An htpasswd file with a bcrypt hash per user (the only hash distribution's htpasswd auth reads)."""
    if not Path(HTPASSWD_BIN).exists():
        raise RegistryError(f"{HTPASSWD_BIN} is missing: install Debian's apache2-utils package")
    path.unlink(missing_ok=True)
    for user, password in credentials.items():
        create = [] if path.exists() else ["-c"]
        result = subprocess.run(
            [HTPASSWD_BIN, "-i", "-B", *create, str(path), user],
            input=password,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RegistryError(f"htpasswd could not write {path} for {user}: {result.stderr.strip()}")
    path.chmod(0o600)


class Registry:
    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        log_dir: Path | None = None,
        credentials: dict[str, str] | None = None,
        tls: ServerCert | None = None,
        ca_file: Path | None = None,
        storage: Path | None = None,
        blob_redirect: str | None = None,
    ) -> None:
        """``tls``: serve HTTPS with this certificate; ``ca_file`` is the CA that issued it (to probe it).
        ``storage``: serve another registry's storage (the same images over another protocol).
        ``blob_redirect``: answer blob downloads with a redirect to this base URL (scheme://host:port),
        where something else serves the storage directory."""
        self.state_dir = state_dir
        self.tls = tls
        self.ca_file = ca_file
        self.credentials = dict(credentials or {})
        self.htpasswd = state_dir / "htpasswd"
        self.log_dir = log_dir or state_dir
        self.pidfile = state_dir / "registry.pid"
        self.portfile = state_dir / "registry.port"
        self.config = state_dir / "registry.yml"
        self.storage = storage or state_dir / "storage"
        self.log = self.log_dir / "registry.log"
        self.access_log = self.log_dir / "registry-access.log"
        if port is None and self.portfile.exists():
            port = int(self.portfile.read_text())  # keep the address a running registry already has
        self.port = port if port is not None else free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.scheme = "https" if tls else "http"
        self.blob_redirect = blob_redirect

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        return pid if b"docker-registry" in cmdline else None

    def is_running(self) -> bool:
        return self._pid() is not None

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        try:
            with urllib.request.urlopen(
                f"{self.scheme}://{self.address}/v2/", timeout=2, context=context
            ) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError as exc:
            # An auth registry answers the anonymous probe with 401 and a basic challenge.
            return bool(self.credentials) and exc.code == 401
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 20.0) -> None:
        """Start the registry unless this state dir's registry already runs; wait for /v2/."""
        if self.is_running():
            if self._answers():
                return
            self.stop()
        if not Path(REGISTRY_BIN).exists():
            raise RegistryError(f"{REGISTRY_BIN} is missing: install Debian's docker-registry package")
        if not port_is_free(self.port):
            raise RegistryError(f"cannot start the registry: 127.0.0.1:{self.port} is already in use")
        for d in (self.state_dir, self.log_dir, self.storage):
            d.mkdir(parents=True, exist_ok=True)
        config = CONFIG_TEMPLATE.format(storage=self.storage, address=self.address)
        if self.tls:
            config += TLS_TEMPLATE.format(cert=self.tls.cert, key=self.tls.key)
        if self.blob_redirect:
            config += REDIRECT_TEMPLATE.format(baseurl=self.blob_redirect)
        if self.credentials:
            write_htpasswd(self.htpasswd, self.credentials)
            config += AUTH_TEMPLATE.format(htpasswd=self.htpasswd)
        self.config.write_text(config)
        with self.access_log.open("ab") as out, self.log.open("ab") as err:
            proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(self.config)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pidfile.write_text(str(proc.pid))
        self.portfile.write_text(str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                raise RegistryError(f"the registry exited with code {proc.returncode}; see {self.log}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RegistryError(
            f"the registry did not answer on {self.scheme}://{self.address}/v2/ in {timeout:.0f}s; "
            f"see {self.log}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                try:  # reap it when it is our child; otherwise just wait for it to go
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    pass
                time.sleep(0.1)
            else:
                if Path(f"/proc/{pid}").exists():
                    os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def push(self, image: TestImage) -> str:
        """Copy a test image into the registry (as its first user, if it has credentials); returns its
        reference there."""
        ref = f"{self.address}/{image.name}:{image.tag}"
        result = subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                *self.skopeo_auth(),
                image.oci_ref,
                f"docker://{ref}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RegistryError(
                f"pushing {image.oci_ref} to {ref} failed: {result.stderr.strip()}; see {self.log}"
            )
        return ref

    def skopeo_auth(self, also: tuple[str, ...] = ()) -> list[str]:
        """skopeo's flags to write to this registry (and to the addresses ``also``, which serve the same
        storage): an auth file (never credentials on a command line)."""
        if not self.credentials:
            return []
        user, password = next(iter(self.credentials.items()))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authfile = self.state_dir / "skopeo-auth.json"
        authfile.write_text(json.dumps({"auths": {a: {"auth": token} for a in (self.address, *also)}}))
        authfile.chmod(0o600)
        return [f"--dest-authfile={authfile}"]
