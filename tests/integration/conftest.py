"""Session fixtures: test images in a local registry, and a private dockerd / pouchd per kind.

`daemon` is parametrized over docker and pouch; the pouch half skips with a reason when no pouch
binaries are found. A second registry requires credentials (htpasswd, bcrypt): `auth_registry`.
Both registries start before any daemon, because each daemon is told at start which plain-HTTP
registries to trust (pouchd: insecure-registries; dockerd trusts 127.0.0.0/8 by itself). Every
daemon, the registries and their state dirs are torn down at session end.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BOUNDED_RUNC, BOUNDED_RUNTIME, AuthRegistry, Daemon  # noqa: E402

from lab.daemons import (  # noqa: E402
    DockerDaemon,
    PouchDaemon,
    PrivateDaemon,
    dockerd_missing_reason,
    pouch_bin_dir,
    pouch_missing_reason,
)
from lab.paths import default_state_dir  # noqa: E402
from lab.registry import Registry, RegistryError  # noqa: E402
from lab.testimages import build_test_images  # noqa: E402

DAEMON_KINDS = ["docker", "pouch"]


@pytest.fixture(scope="session")
def registry() -> Iterator[tuple[str, dict[str, str]]]:
    """(address, {tag: reference}) of a private registry seeded with the offline test images."""
    images = build_test_images(default_state_dir() / "testimages")
    state = Path(tempfile.mkdtemp(prefix="pa-registry-", dir="/tmp"))
    server = Registry(state)
    server.start()
    try:
        refs = {image.tag: server.push(image) for image in images}
        yield server.address, refs
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def auth_registry_or_reason() -> Iterator[AuthRegistry | str]:
    """The credentialed registry, or why it cannot run here (only the tests that need it skip)."""
    state = Path(tempfile.mkdtemp(prefix="pa-authregistry-", dir="/tmp"))
    password = "pa-" + secrets.token_urlsafe(18)
    server = Registry(state, credentials={"pa-deploy": password})
    try:
        server.start()
    except RegistryError as exc:
        shutil.rmtree(state, ignore_errors=True)
        yield f"the credentialed registry cannot start: {exc}"
        return
    try:
        yield AuthRegistry(server.address, "pa-deploy", password, tuple(server.skopeo_auth()))
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def auth_registry(auth_registry_or_reason: AuthRegistry | str) -> AuthRegistry:
    if isinstance(auth_registry_or_reason, str):
        pytest.skip(auth_registry_or_reason)
    return auth_registry_or_reason


class _TestDockerDaemon(DockerDaemon):
    """lab/daemons.py's dockerd with the bounded runtime."""

    def command(self) -> list[str]:
        return [*super().command(), f"--add-runtime={BOUNDED_RUNTIME}={BOUNDED_RUNC}"]


class _TestPouchDaemon(PouchDaemon):
    """lab/daemons.py's pouchd with the bounded runtime, trusting every registry of the session
    (its `registry=` takes one)."""

    def __init__(self, bin_dir: Path, registries: list[str], **kwargs: Any) -> None:
        super().__init__(bin_dir, registry=registries[0], **kwargs)
        self.registries = registries

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["insecure-registries"] = list(self.registries)
        config["add-runtime"][BOUNDED_RUNTIME] = {"path": str(BOUNDED_RUNC)}
        return config


class _Daemons:
    """Starts each kind at most once per session, on first use."""

    def __init__(self, registry: tuple[str, dict[str, str]], extra_registries: list[str]) -> None:
        self.registry = registry
        self.extra_registries = extra_registries
        self.running: dict[str, tuple[PrivateDaemon, Daemon]] = {}

    def get(self, kind: str) -> Daemon:
        if kind in self.running:
            return self.running[kind][1]
        address, refs = self.registry
        if kind == "docker":
            reason = dockerd_missing_reason()
            if reason:
                pytest.skip(reason)
            # dockerd speaks plain HTTP to any registry on 127.0.0.0/8 without being told.
            private: PrivateDaemon = _TestDockerDaemon(registry=address)
        else:
            bin_dir = pouch_bin_dir()
            if bin_dir is None:
                pytest.skip(pouch_missing_reason())
            private = _TestPouchDaemon(bin_dir, [address, *self.extra_registries])
        private.start()
        daemon = Daemon(kind=kind, host=private.host, images=refs, registry=address)
        self.running[kind] = (private, daemon)
        return daemon

    def stop_all(self) -> None:
        for private, _ in self.running.values():
            private.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def daemons(
    registry: tuple[str, dict[str, str]], auth_registry_or_reason: AuthRegistry | str
) -> Iterator[_Daemons]:
    extra = [] if isinstance(auth_registry_or_reason, str) else [auth_registry_or_reason.address]
    manager = _Daemons(registry, extra)
    try:
        yield manager
    finally:
        manager.stop_all()


@pytest.fixture(scope="session", params=DAEMON_KINDS)
def daemon(request: pytest.FixtureRequest, daemons: _Daemons) -> Daemon:
    return daemons.get(request.param)


@pytest.fixture(scope="session")
def docker_daemon(daemons: _Daemons) -> Daemon:
    return daemons.get("docker")


@pytest.fixture(scope="session")
def pouch_daemon(daemons: _Daemons) -> Daemon:
    return daemons.get("pouch")
