"""Session fixtures: test images in a local registry, and a private dockerd / pouchd per kind.

`daemon` is parametrized over docker and pouch; the pouch half skips with a reason when no pouch
binaries are found. Every daemon, the registry and their state dirs are torn down at session end.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Daemon  # noqa: E402

from lab.daemons import (  # noqa: E402
    DockerDaemon,
    PouchDaemon,
    PrivateDaemon,
    dockerd_missing_reason,
    pouch_bin_dir,
    pouch_missing_reason,
)
from lab.paths import default_state_dir  # noqa: E402
from lab.registry import Registry  # noqa: E402
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


class _Daemons:
    """Starts each kind at most once per session, on first use."""

    def __init__(self, registry: tuple[str, dict[str, str]]) -> None:
        self.registry = registry
        self.running: dict[str, tuple[PrivateDaemon, Daemon]] = {}

    def get(self, kind: str) -> Daemon:
        if kind in self.running:
            return self.running[kind][1]
        address, refs = self.registry
        if kind == "docker":
            reason = dockerd_missing_reason()
            if reason:
                pytest.skip(reason)
            private: PrivateDaemon = DockerDaemon(registry=address)
        else:
            bin_dir = pouch_bin_dir()
            if bin_dir is None:
                pytest.skip(pouch_missing_reason())
            private = PouchDaemon(bin_dir, registry=address)
        private.start()
        daemon = Daemon(kind=kind, host=private.host, images=refs, registry=address)
        self.running[kind] = (private, daemon)
        return daemon

    def stop_all(self) -> None:
        for private, _ in self.running.values():
            private.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def daemons(registry: tuple[str, dict[str, str]]) -> Iterator[_Daemons]:
    manager = _Daemons(registry)
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
