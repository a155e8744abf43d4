"""The lab's shared services on 127.0.0.1: the apt repository's HTTP server and the OCI registry.

One pair serves every group of VMs. Ports are picked free (or fixed with ``LAB_REPO_PORT`` /
``LAB_REGISTRY_PORT``) and kept in the state dir, so VMs started later reach the same services.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from lab.aptrepo import build_repo
from lab.errors import LabError
from lab.paths import REPO_ROOT, LabPaths
from lab.procs import free_tcp_port, spawn_detached, stop_tracked, tcp_port_is_free, tracked_pid
from lab.registry import Registry, RegistryError
from lab.testimages import TestImageError, build_test_images

HTTP_MARKER = "lab.httpserve"


@dataclass(frozen=True)
class SharedServices:
    repo_port: int
    registry_port: int

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


def _registry(paths: LabPaths) -> Registry:
    return Registry(paths.registry_dir, port=_env_port("LAB_REGISTRY_PORT"), log_dir=paths.logs)


def _http_pidfile(paths: LabPaths):
    return paths.services_dir / "apt-http.pid"


def _http_portfile(paths: LabPaths):
    return paths.services_dir / "apt-http.port"


def running_services(paths: LabPaths) -> SharedServices | None:
    """The shared services if both run (and this state dir started them)."""
    pid = tracked_pid(_http_pidfile(paths), HTTP_MARKER)
    registry = Registry(paths.registry_dir, log_dir=paths.logs)
    if pid is None or not registry.is_running() or not _http_portfile(paths).exists():
        return None
    return SharedServices(int(_http_portfile(paths).read_text()), registry.port)


def _start_http(paths: LabPaths, root: str) -> int:
    pidfile, portfile = _http_pidfile(paths), _http_portfile(paths)
    log = paths.logs / "apt-http.log"
    port = _env_port("LAB_REPO_PORT")
    if port is None:
        # Keep the previous port when it is free: VMs of running groups have it in their relays.
        previous = int(portfile.read_text()) if portfile.exists() else 0
        port = previous if previous and tcp_port_is_free(previous) else free_tcp_port()
    elif not tcp_port_is_free(port):
        raise LabError(f"cannot serve the apt repository: 127.0.0.1:{port} (LAB_REPO_PORT) is already in use")
    argv = [sys.executable, "-m", HTTP_MARKER, "--dir", root, "--port", str(port)]
    proc = spawn_detached(argv, log, pidfile, cwd=REPO_ROOT)
    portfile.write_text(str(port))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            raise LabError(f"the apt repository's HTTP server exited with code {proc.returncode}", log)
        if _answers(f"http://127.0.0.1:{port}/Release"):
            return port
        time.sleep(0.2)
    stop_tracked(pidfile, HTTP_MARKER)
    raise LabError(f"the apt repository's HTTP server did not answer on 127.0.0.1:{port}", log)


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
        repo_port = _start_http(paths, str(repo.root))
        registry = _registry(paths)
        registry.start()
        for image in images:
            registry.push(image)
    except RegistryError as exc:
        stop_services(paths)
        raise LabError(f"local registry: {exc}") from exc
    except BaseException:
        stop_services(paths)
        raise
    return SharedServices(repo_port, registry.port), True


def stop_services(paths: LabPaths) -> None:
    stop_tracked(_http_pidfile(paths), HTTP_MARKER)
    Registry(paths.registry_dir, log_dir=paths.logs).stop()
