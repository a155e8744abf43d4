"""Helpers for the pouch_image / pouch_network / pouch_volume / pouch_info integration tests.

Modules run through harness.run_module_tasks, as pouch_container does (one ansible-playbook per call,
-c local, the repo's ansible.cfg, every task registered and dumped as JSON).
Daemon state is read back with the docker SDK (daemon.sdk), never with the module under test.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
from harness import Daemon, run_module_tasks

from lab.paths import default_state_dir
from lab.testimages import build_test_images


def run_module(daemon: Daemon | None, module: str, **args: Any) -> dict[str, Any]:
    return run_module_tasks(daemon, module, [args])[0]


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def failed(result: dict[str, Any], *fragments: str) -> None:
    """The task failed, changed nothing, and its message holds every fragment."""
    assert result.get("failed"), f"expected a failure, got {json.dumps(result)[:1500]}"
    assert not result.get("changed"), result
    message = str(result.get("msg", ""))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def ok(result: dict[str, Any], changed: bool, actions: list[str] | None = None) -> dict[str, Any]:
    assert not result.get("failed"), f"unexpected failure: {json.dumps(result)[:2000]}"
    assert result["changed"] is changed, json.dumps(result)[:2000]
    if actions is not None:
        assert result["actions"] == actions, result["actions"]
    return result


# -- images ------------------------------------------------------------------------------------


def offline_layout() -> Path:
    """The OCI layout of the offline test images (built once, cached, shared with conftest)."""
    images = build_test_images(default_state_dir() / "testimages")
    return images[0].oci_layout


def skopeo(*argv: str) -> None:
    result = subprocess.run(["skopeo", *argv], capture_output=True, text=True)
    assert result.returncode == 0, f"skopeo {' '.join(argv)}: {result.stderr}"


def push_variant(
    registry: str, repository: str, tag: str, variant: str = "latest", skopeo_flags: Sequence[str] = ()
) -> str:
    """Push a test image variant (latest or v2) to registry/repository:tag; returns the reference.

    `skopeo_flags` are extra flags of the copy (a credentialed registry's --dest-authfile)."""
    reference = f"{registry}/{repository}:{tag}"
    skopeo(
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        *skopeo_flags,
        f"oci:{offline_layout()}:{variant}",
        f"docker://{reference}",
    )
    return reference


@contextlib.contextmanager
def unique_layout(label: str) -> Iterator[Path]:
    """A copy of the test layout whose 'latest' has its own config (so its own image ID)."""
    tmp = Path(tempfile.mkdtemp(prefix="pa-layout-"))
    layout = tmp / "layout"
    try:
        shutil.copytree(offline_layout(), layout)
        result = subprocess.run(
            [
                "umoci", "config", "--image", f"{layout}:latest", "--tag", "unique",
                "--config.label", f"org.pouch-ansible.unique={label}",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        yield layout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_unique(registry: str, repository: str, tag: str, skopeo_flags: Sequence[str] = ()) -> str:
    """Push an image with an ID no other test uses; returns registry/repository:tag."""
    reference = f"{registry}/{repository}:{tag}"
    with unique_layout(repository) as layout:
        skopeo(
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            *skopeo_flags,
            f"oci:{layout}:unique",
            f"docker://{reference}",
        )
    return reference


def docker_archive(path: Path, name: str, variant: str = "latest") -> Path:
    """A docker-archive of a test image variant tagged `name`."""
    skopeo("copy", "--quiet", f"oci:{offline_layout()}:{variant}", f"docker-archive:{path}:{name}")
    return path


def oci_archive(path: Path, tag: str, variant: str = "latest") -> Path:
    """An OCI layout tar holding one test image variant, annotated with the bare tag `tag`."""
    with tempfile.TemporaryDirectory(prefix="pa-oci-") as tmp:
        layout = Path(tmp) / "layout"
        skopeo("copy", "--quiet", f"oci:{offline_layout()}:{variant}", f"oci:{layout}:{tag}")
        subprocess.run(
            ["tar", "-C", str(layout), "-cf", str(path), "oci-layout", "index.json", "blobs"], check=True
        )
    return path


def delete_from_registry(reference: str) -> None:
    """Delete a tag's manifest from the local registry (storage.delete is enabled there); skopeo
    speaks TLS or plain HTTP, whichever the registry serves."""
    skopeo("delete", "--tls-verify=false", f"docker://{reference}")


def image_id(daemon: Daemon, reference: str) -> str | None:
    try:
        return str(daemon.sdk.inspect_image(reference)["Id"])
    except docker.errors.NotFound:
        return None


def image_snapshot(daemon: Daemon) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(
        (item["Id"], tuple(sorted(item.get("RepoTags") or []))) for item in daemon.sdk.images(all=True)
    )


def remove_images(daemon: Daemon, *references: str) -> None:
    for reference in references:
        # pouchd answers 204 without the JSON body the SDK expects (ValueError): the image is gone anyway.
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError, ValueError):
            daemon.sdk.remove_image(reference, force=True)


# -- containers, networks, volumes ---------------------------------------------------------------


def start_container(daemon: Daemon, name: str, volumes: list[str] | None = None, start: bool = True) -> str:
    """A busybox `sleep` container made with the SDK (bridge network, optional named-volume binds)."""
    host_config: dict[str, Any] = {"NetworkMode": "bridge"}
    if volumes:
        host_config["Binds"] = volumes
    created = daemon.sdk.create_container(
        daemon.images["latest"], command=["sleep", "3600"], name=name, host_config=host_config
    )
    if start:
        daemon.sdk.start(created["Id"])
    return str(created["Id"])


def ensure_image(daemon: Daemon) -> None:
    if image_id(daemon, daemon.images["latest"]) is None:
        daemon.sdk.pull(daemon.images["latest"])


def container_network_names(daemon: Daemon, name: str) -> list[str]:
    detail = daemon.sdk.inspect_container(name)
    return sorted(((detail.get("NetworkSettings") or {}).get("Networks") or {}).keys())


def network(daemon: Daemon, name: str) -> dict[str, Any] | None:
    try:
        return dict(daemon.sdk.inspect_network(name))
    except docker.errors.NotFound:
        return None


def network_names(daemon: Daemon) -> list[str]:
    return sorted(item["Name"] for item in daemon.sdk.networks())


def remove_networks(daemon: Daemon, *names: str) -> None:
    for name in names:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            daemon.sdk.remove_network(name)


def volume(daemon: Daemon, name: str) -> dict[str, Any] | None:
    try:
        return dict(daemon.sdk.inspect_volume(name))
    except docker.errors.NotFound:
        return None


def volume_names(daemon: Daemon) -> list[str]:
    return sorted(item["Name"] for item in (daemon.sdk.volumes() or {}).get("Volumes") or [])


def remove_volumes(daemon: Daemon, *names: str) -> None:
    for name in names:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            daemon.sdk.remove_volume(name)


_handed_out: set[int] = set()


def free_subnet() -> str:
    """A 10.214.N.0/24 that no interface on this machine uses and no earlier test got."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for third in range(1, 255):
        if third not in _handed_out and f"10.214.{third}." not in used:
            _handed_out.add(third)
            return f"10.214.{third}.0/24"
    raise AssertionError("no free 10.214.N.0/24 subnet")


def host_in(subnet: str, index: int) -> str:
    return str(ipaddress.ip_network(subnet)[index])


# -- a fake daemon, only for what a real one cannot be made to do --------------------------------


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeDaemon:
    """A pouchd look-alike on a unix socket: answers /version, image inspect and a scripted pull stream.

    Used only for a pull that fails mid-stream (after HTTP 200) and to see the X-Registry-Auth header.
    """

    def __init__(self, pull_body: bytes, image: dict[str, Any] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pa-fake-"))
        self.socket = self.dir / "fake.sock"
        self.pull_body = pull_body
        self.image = image
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "fake"

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, dict(self.headers)))
                if self.path.endswith("/version"):
                    self._answer(200, json.dumps({"ApiVersion": "1.24", "Version": "1.3.0"}).encode())
                elif "/images/" in self.path and fake.image is not None:
                    self._answer(200, json.dumps(fake.image).encode())
                else:
                    self._answer(404, b'{"message": "image not found"}')

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if "/images/create" in self.path:
                    self._answer(200, fake.pull_body)
                else:
                    self._answer(404, b'{"message": "not here"}')

        self.server = _UnixHTTPServer(str(self.socket), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> FakeDaemon:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def closed_unix_socket(tmp: Path) -> str:
    path = tmp / "nobody.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    return f"unix://{path}"
