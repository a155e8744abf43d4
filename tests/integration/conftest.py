"""Session fixtures: test images in a local registry, and a private dockerd / pouchd per build.

`daemon` is parametrized over dockerd and every pouch build lab/artifacts.py finds (the 1.3.0
release and master from the test artifacts, or the user's POUCH_BIN_DIR / POUCH_ARCHIVE), so each
test id names the build it ran on: `[docker]`, `[pouch-1.3.0]`, `[pouch-master-bc5839e3]`. Without any
pouch build the pouch half skips with a reason naming the variables to set; an archive whose checksum
does not match fails the tests that need it.

Each registry's storage is served twice: over TLS with a session CA for pouchd (the release pulls
over HTTPS only; pouchd trusts the CA through SSL_CERT_FILE) and over plain HTTP for dockerd, which
treats 127.0.0.0/8 as insecure and, after any error over HTTPS, retries over HTTP and reports that
error instead of the registry's.
A second registry requires credentials (htpasswd, bcrypt): `auth_registry`. Every daemon, the
registries and their state dirs are torn down at session end.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import BOUNDED_RUNC, BOUNDED_RUNTIME, AuthRegistry, Daemon  # noqa: E402
from pouch_builds import POUCH_BUILDS, POUCH_IDS, require  # noqa: E402

from lab.daemons import DockerDaemon, PouchDaemon, PrivateDaemon, dockerd_missing_reason  # noqa: E402
from lab.paths import default_state_dir  # noqa: E402
from lab.registry import Registry, RegistryError  # noqa: E402
from lab.testimages import build_test_images  # noqa: E402
from lab.tlsca import LabCa  # noqa: E402

# Configured as insecure on builds that have the setting, so pouch_info's report of it is checked;
# nothing pulls from it (the test registries serve TLS).
UNUSED_INSECURE_REGISTRY = "insecure.invalid:5000"


DAEMON_KINDS = ["docker", *POUCH_IDS]
BUILD_BY_ID = dict(zip(POUCH_IDS, POUCH_BUILDS, strict=True))


@pytest.fixture(scope="session")
def test_ca() -> Iterator[LabCa]:
    directory = Path(tempfile.mkdtemp(prefix="pa-ca-", dir="/tmp"))
    try:
        yield LabCa(directory, name="pouch-ansible test CA").ensure()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class _RegistryPair:
    """One storage served over TLS (`tls`) and plain HTTP (`plain`)."""

    def __init__(self, ca: LabCa, **kwargs: Any) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pa-registry-", dir="/tmp"))
        cert = ca.server_cert(self.root.name, ["127.0.0.1", "localhost"])
        self.tls = Registry(self.root / "tls", tls=cert, ca_file=ca.cert, **kwargs)
        self.plain = Registry(self.root / "plain", storage=self.tls.storage, **kwargs)

    def start(self) -> None:
        try:
            self.tls.start()
            self.plain.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.plain.stop()
        self.tls.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(test_ca: LabCa) -> Iterator[dict[str, tuple[str, dict[str, str]]]]:
    """{"tls"|"plain": (address, {tag: reference})} of a private registry seeded with the offline
    test images."""
    images = build_test_images(default_state_dir() / "testimages")
    pair = _RegistryPair(test_ca)
    pair.start()
    try:
        refs = {image.tag: pair.tls.push(image) for image in images}
        plain_refs = {tag: ref.replace(pair.tls.address, pair.plain.address, 1) for tag, ref in refs.items()}
        yield {"tls": (pair.tls.address, refs), "plain": (pair.plain.address, plain_refs)}
    finally:
        pair.stop()


@pytest.fixture(scope="session")
def auth_registry_or_reason(test_ca: LabCa) -> Iterator[AuthRegistry | str]:
    """The credentialed registry, or why it cannot run here (only the tests that need it skip)."""
    password = "pa-" + secrets.token_urlsafe(18)
    pair = _RegistryPair(test_ca, credentials={"pa-deploy": password})
    try:
        pair.start()
    except RegistryError as exc:
        yield f"the credentialed registry cannot start: {exc}"
        return
    try:
        flags = tuple(pair.tls.skopeo_auth(also=(pair.plain.address,)))
        yield AuthRegistry(pair.tls.address, "pa-deploy", password, flags, pair.plain.address)
    finally:
        pair.stop()


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
    """lab/daemons.py's pouchd with the bounded runtime."""

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["add-runtime"][BOUNDED_RUNTIME] = {"path": str(BOUNDED_RUNC)}
        return config


class _Daemons:
    """Starts each kind (dockerd, one pouch build) at most once per session, on first use."""

    def __init__(self, registry: dict[str, tuple[str, dict[str, str]]], ca: LabCa) -> None:
        self.registry = registry
        self.ca = ca
        self.running: dict[str, tuple[PrivateDaemon, Daemon]] = {}

    def get(self, kind: str) -> Daemon:
        if kind in self.running:
            return self.running[kind][1]
        address, refs = self.registry["plain" if kind == "docker" else "tls"]
        extra: dict[str, Any] = {}
        if kind == "docker":
            reason = dockerd_missing_reason()
            if reason:
                pytest.skip(reason)
            # dockerd treats any registry on 127.0.0.0/8 as insecure without being told: plain HTTP.
            private: PrivateDaemon = _TestDockerDaemon(registry=address)
        else:
            build = require(BUILD_BY_ID[kind])
            capabilities = build.capabilities()
            insecure = [UNUSED_INSECURE_REGISTRY] if capabilities["insecure_registries"] else []
            private = _TestPouchDaemon(
                build.bin_dir,
                registry=address,
                trust_bundle=self.ca.trust_bundle(),
                insecure_registries=insecure,
            )
            extra = {"build": build, "capabilities": capabilities, "insecure_registries": insecure}
        private.start()
        daemon = Daemon(
            kind=kind.split("-")[0], host=private.host, images=refs, registry=address, extra=extra
        )
        self.running[kind] = (private, daemon)
        return daemon

    def stop_all(self) -> None:
        for private, _ in self.running.values():
            private.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def daemons(registry: dict[str, tuple[str, dict[str, str]]], test_ca: LabCa) -> Iterator[_Daemons]:
    manager = _Daemons(registry, test_ca)
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


@pytest.fixture(scope="session", params=POUCH_IDS)
def pouch_daemon(request: pytest.FixtureRequest, daemons: _Daemons) -> Daemon:
    return daemons.get(request.param)
