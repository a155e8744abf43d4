"""The lab's shared services on 127.0.0.1: the apt repository's HTTP server and the OCI registry.

One set serves every group of VMs. The registry's storage is served twice: over plain HTTP (guests:
10.0.2.101:5000, for builds and tools configured with insecure-registries) and over TLS with a
certificate from the lab CA (guests: 10.0.2.101:5443), which the 1.3.0 release, pulling over HTTPS
only, can use once the node trusts ``.lab/ca/ca.crt``. A third time over TLS (guests: 10.0.2.101:5444)
as a registry whose blobs live in an object store: it answers blob downloads with a redirect to the
blob store, a plain-HTTP server of the same storage directory (guests: 10.0.2.101:5080), which is
where pouchd's image-proxy (Dragonfly's dfdaemon) can catch them. Ports are picked free (or fixed with
``LAB_REPO_PORT`` / ``LAB_REGISTRY_PORT``) and kept in the state dir, so VMs started later reach the
same services.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.aptrepo import build_repo
from lab.errors import LabError
from lab.paths import REPO_ROOT, LabPaths
from lab.procs import free_tcp_port, spawn_detached, stop_tracked, tcp_port_is_free, tracked_pid
from lab.registry import Registry, RegistryError
from lab.testimages import TestImageError, build_test_images
from lab.tlsca import CaError, LabCa, ServerCert

HTTP_MARKER = "lab.httpserve"


@dataclass(frozen=True)
class SharedServices:
    repo_port: int
    registry_port: int
    registry_tls_port: int
    registry_redirect_port: int
    blob_store_port: int

    @property
    def repo_url(self) -> str:
        return f"http://127.0.0.1:{self.repo_port}/"

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry_port}"


def _env_port(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit():
        raise LabError(f"{name}={value!r} is not a port number")
    return int(value)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# Guests reach the registry's TLS twins at this address: their certificate names this IP (and 127.0.0.1).
REGISTRY_TLS_GUEST_IP = "10.0.2.101"
BLOB_STORE_GUEST_ADDRESS = "10.0.2.101:5080"


@dataclass(frozen=True)
class StaticServer:
    """One lab.httpserve process: its pid and port files, log and readiness probe."""

    name: str
    port_env: str
    probe: str

    def pidfile(self, paths: LabPaths) -> Path:
        return paths.services_dir / f"{self.name}.pid"

    def portfile(self, paths: LabPaths) -> Path:
        return paths.services_dir / f"{self.name}.port"

    def port(self, paths: LabPaths) -> int | None:
        if tracked_pid(self.pidfile(paths), HTTP_MARKER) is None or not self.portfile(paths).exists():
            return None
        return int(self.portfile(paths).read_text())


APT_HTTP = StaticServer("apt-http", "LAB_REPO_PORT", "/Release")
BLOB_STORE = StaticServer("blob-store", "LAB_BLOB_STORE_PORT", "/docker/registry/v2/")


def _registry(paths: LabPaths, port: int | None = None) -> Registry:
    return Registry(paths.registry_dir, port=port, log_dir=paths.logs)


def _tls_twin(paths: LabPaths, cert: ServerCert | None = None, ca_file: Path | None = None) -> Registry:
    """The registry's TLS twin: the same storage, over HTTPS with ``cert`` (needed only to start it)."""
    return Registry(
        paths.registry_dir / "tls", log_dir=paths.logs / "registry-tls", tls=cert, ca_file=ca_file,
        storage=_registry(paths).storage,
    )  # fmt: skip


def _redirect_twin(paths: LabPaths, cert: ServerCert | None = None, ca_file: Path | None = None) -> Registry:
    """The same storage over HTTPS, with blob downloads redirected to the plain-HTTP blob store."""
    return Registry(
        paths.registry_dir / "tls-redirect", log_dir=paths.logs / "registry-redirect", tls=cert,
        ca_file=ca_file, storage=_registry(paths).storage, blob_redirect=f"http://{BLOB_STORE_GUEST_ADDRESS}",
    )  # fmt: skip


def blob_store_access_log(paths: LabPaths) -> Path:
    """Where the blob store logs each request with the bytes it sent (combined log format)."""
    return paths.logs / "blob-store-access.log"


def running_services(paths: LabPaths) -> SharedServices | None:
    """The shared services if all of them run (and this state dir started them)."""
    repo_port, blob_port = APT_HTTP.port(paths), BLOB_STORE.port(paths)
    registries = (_registry(paths), _tls_twin(paths), _redirect_twin(paths))
    if repo_port is None or blob_port is None or not all(r.is_running() for r in registries):
        return None
    return SharedServices(repo_port, *(r.port for r in registries), blob_port)


def _start_http(paths: LabPaths, server: StaticServer, root: str, access_log: Path | None = None) -> int:
    pidfile, portfile = server.pidfile(paths), server.portfile(paths)
    log = paths.logs / f"{server.name}.log"
    port = _env_port(server.port_env)
    if port is None:
        # Keep the previous port when it is free: VMs of running groups have it in their relays.
        previous = int(portfile.read_text()) if portfile.exists() else 0
        port = previous if previous and tcp_port_is_free(previous) else free_tcp_port()
    elif not tcp_port_is_free(port):
        raise LabError(f"cannot start {server.name}: 127.0.0.1:{port} ({server.port_env}) is already in use")
    argv = [sys.executable, "-m", HTTP_MARKER, "--dir", root, "--port", str(port)]
    if access_log is not None:
        argv += ["--access-log", str(access_log)]
    proc = spawn_detached(argv, log, pidfile, cwd=REPO_ROOT)
    portfile.write_text(str(port))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            raise LabError(f"the {server.name} HTTP server exited with code {proc.returncode}", log)
        if _answers(f"http://127.0.0.1:{port}{server.probe}"):
            return port
        time.sleep(0.2)
    stop_tracked(pidfile, HTTP_MARKER)
    raise LabError(f"the {server.name} HTTP server did not answer on 127.0.0.1:{port}", log)


def start_services(paths: LabPaths) -> tuple[SharedServices, bool]:
    """Build the repo and test images if needed, start both services; returns (services, started)."""
    # First, so a changed package list reaches a running server too (it serves the directory by path).
    repo = build_repo(paths)
    running = running_services(paths)
    if running is not None:
        return running, False
    try:
        images = build_test_images(paths.testimages_dir)
    except TestImageError as exc:
        raise LabError(f"building the test images failed: {exc}") from exc
    stop_services(paths)  # a half-started pair from an earlier run
    try:
        repo_port = _start_http(paths, APT_HTTP, str(repo.root))
        registry = _registry(paths, _env_port("LAB_REGISTRY_PORT"))
        registry.start()
        for image in images:
            registry.push(image)
        ca = LabCa(paths.ca_dir)
        cert = ca.server_cert("lab-registry", [REGISTRY_TLS_GUEST_IP, "127.0.0.1"])
        tls_twin = _tls_twin(paths, cert, ca.cert)
        tls_twin.start()
        redirect_twin = _redirect_twin(paths, cert, ca.cert)
        redirect_twin.start()
        blob_port = _start_http(paths, BLOB_STORE, str(registry.storage), blob_store_access_log(paths))
    except (RegistryError, CaError) as exc:
        stop_services(paths)
        raise LabError(f"local registry: {exc}") from exc
    except BaseException:
        stop_services(paths)
        raise
    return SharedServices(repo_port, registry.port, tls_twin.port, redirect_twin.port, blob_port), True


def stop_services(paths: LabPaths) -> None:
    for server in (APT_HTTP, BLOB_STORE):
        stop_tracked(server.pidfile(paths), HTTP_MARKER)
    _redirect_twin(paths).stop()
    _tls_twin(paths).stop()
    _registry(paths).stop()
