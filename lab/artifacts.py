"""Which pouch and Dragonfly builds the tests, the molecule scenarios and ``make site`` use.

For each, in this order (the first that is set or present wins; a user's variable always does):

1. the user's variable: ``POUCH_BIN_DIR`` (a directory holding ``pouchd`` and ``pouch``),
   ``POUCH_ARCHIVE`` or ``DRAGONFLY_ARCHIVE`` (a ``.tar.gz`` with ``<archive>.sha256`` beside it);
2. the project's test artifacts in ``../shared/artifacts`` beside the checkout (``PA_ARTIFACTS_DIR``
   moves it): every ``pouch-<label>-linux-amd64.tar.gz`` there is one build (the module tests run on
   all of them; the scenarios and ``make site`` use the release, a label that is a plain version);
3. what the project used before: ``/opt/pouch/bin`` and the newest ``/opt/pouch/pouch-*.tar.gz``.

An archive is checked against its ``.sha256`` before it is unpacked into ``.lab/artifacts/`` (one
directory per archive and checksum, so a changed archive is unpacked anew). What a build is comes from
the binary itself (``pouchd --version``: version and build commit), never from the file name alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lab.paths import REPO_ROOT, default_state_dir
from module_utils.pouchd_capabilities import capabilities, runtime_types_in

LEGACY_POUCH_DIR = Path("/opt/pouch")
POUCH_ARCHIVE_GLOB = "pouch-*-linux-amd64.tar.gz"
DRAGONFLY_ARCHIVE_GLOB = "dragonfly-*-linux-amd64.tar.gz"
POUCH_BINARIES = ("pouchd", "pouch")


class ArtifactError(RuntimeError):
    """An artifact that is named but unusable: missing checksum, mismatch, wrong layout."""


def artifacts_dir() -> Path:
    """The test artifacts: ``$PA_ARTIFACTS_DIR``, else ``../shared/artifacts`` beside the checkout."""
    configured = os.environ.get("PA_ARTIFACTS_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "artifacts"


def version_key(label: str) -> tuple[int, ...]:
    """Numeric sort key of a version-like label ("1.10.0" after "1.9.2"; text sorts them the other way)."""
    return tuple(int(part) for part in re.findall(r"\d+", label))


def archive_label(archive: Path, glob: str = POUCH_ARCHIVE_GLOB) -> str:
    """``1.3.0`` of pouch-1.3.0-linux-amd64.tar.gz, ``master-bc5839e3`` of pouch-master-bc5839e3-..."""
    prefix, suffix = glob.split("*")
    name = archive.name
    return name[len(prefix) : -len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else name


def is_release_label(label: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)+", label) is not None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_file(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def expected_sha256(archive: Path) -> str:
    """The hex digest ``<archive>.sha256`` names (``sha256sum`` format or a bare digest)."""
    sums = checksum_file(archive)
    if not sums.is_file():
        raise ArtifactError(f"{archive} has no checksum file {sums}: every artifact needs one")
    words = sums.read_text().split()
    if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        raise ArtifactError(f"{sums} does not start with a sha256 hex digest")
    return words[0].lower()


def verified_sha256(archive: Path) -> str:
    """The archive's sha256 after checking it against its ``.sha256``; raises on a mismatch."""
    if not archive.is_file():
        raise ArtifactError(f"{archive} does not exist")
    expected = expected_sha256(archive)
    actual = sha256_of(archive)
    if actual != expected:
        raise ArtifactError(
            f"{archive}: sha256 {actual} does not match {expected} in {checksum_file(archive)}; not unpacked"
        )
    return actual


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpack(archive: Path, root: Path | None = None) -> Path:
    """Verify ``archive`` and unpack it once into ``<root>/<name>-<sha12>/``; returns that directory.

    Concurrent callers (pytest workers) wait on a lock; the directory appears whole or not at all.
    """
    root = root or default_state_dir() / "artifacts"
    digest = verified_sha256(archive)
    name = archive.name.removesuffix(".tar.gz").removesuffix(".tgz")
    target = root / f"{name}-{digest[:12]}"
    with _lock(root / ".lock"):
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _has_pouch(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in POUCH_BINARIES)


@dataclass(frozen=True)
class PouchBuild:
    """One pouch build: where its binaries are, where they came from and what ``pouchd --version`` says."""

    label: str  # "1.3.0", "master-bc5839e3": from the archive name, else from the binary
    bin_dir: Path
    source: str  # the variable or place it was found by
    archive: Path | None = None

    @property
    def test_id(self) -> str:
        return f"pouch-{self.label}"

    def version(self) -> tuple[str, str]:
        """(version, build commit) as the binary reports them."""
        caps = self.capabilities()
        return caps["version"], caps["build"]

    def capabilities(self) -> dict[str, Any]:
        """What this build supports (module_utils/pouchd_capabilities.py: flags, runtime types)."""
        return pouchd_capabilities(self.bin_dir / "pouchd")

    def describe(self) -> str:
        version, commit = self.version()
        origin = self.archive or self.bin_dir
        return f"pouch {self.label}: pouchd {version}, build {commit} ({self.source}: {origin})"


def _pouchd_says(pouchd: Path, flag: str) -> str:
    result = subprocess.run([str(pouchd), flag], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise ArtifactError(f"{pouchd} {flag} exited {result.returncode}: {result.stderr.strip()[:300]}")
    return result.stdout + result.stderr


@cache
def pouchd_capabilities(pouchd: Path) -> dict[str, Any]:
    try:
        return capabilities(
            _pouchd_says(pouchd, "--version"),
            _pouchd_says(pouchd, "--help"),
            runtime_types_in(pouchd.read_bytes()),
        )
    except ValueError as exc:
        raise ArtifactError(f"{pouchd}: {exc}") from exc


def build_from_archive(archive: Path, source: str) -> PouchBuild:
    bin_dir = unpack(archive) / "bin"
    if not _has_pouch(bin_dir):
        raise ArtifactError(f"{archive} has no executable bin/pouchd and bin/pouch")
    return PouchBuild(archive_label(archive), bin_dir, source, archive)


def build_from_dir(bin_dir: Path, source: str) -> PouchBuild:
    if not _has_pouch(bin_dir):
        raise ArtifactError(f"{source}={bin_dir} lacks executable {' and '.join(POUCH_BINARIES)}")
    caps = pouchd_capabilities(bin_dir / "pouchd")
    return PouchBuild(f"{caps['version']}-{caps['build']}", bin_dir, source)


def shared_pouch_archives() -> list[Path]:
    """The test artifacts' pouch archives: releases first (newest first), then the other builds."""
    found = sorted(artifacts_dir().glob(POUCH_ARCHIVE_GLOB)) if artifacts_dir().is_dir() else []
    releases = sorted(
        (a for a in found if is_release_label(archive_label(a))),
        key=lambda a: version_key(archive_label(a)),
        reverse=True,
    )
    return releases + [a for a in found if a not in releases]


def newest(archives: list[Path], glob: str) -> Path | None:
    return max(archives, key=lambda a: version_key(archive_label(a, glob)), default=None)


# Which test-artifact build the VM scenarios and `make site` install when POUCH_ARCHIVE is unset:
# the release users install. Scenarios that need master, or are not yet proven on the release, ask
# for it (requires.txt: pouch_archive:master).
LAB_DEFAULT_BUILD = "release"
BUILD_KINDS = ("release", "master")


def pouch_archive(kind: str = LAB_DEFAULT_BUILD) -> tuple[Path, str] | None:
    """The pouch archive to install on VMs, with where it was found: ``$POUCH_ARCHIVE``, else the test
    artifacts' build of that kind ("release": the newest plain version; "master": any other), else the
    newest ``/opt/pouch/pouch-*.tar.gz``."""
    if kind not in BUILD_KINDS:
        raise ValueError(f"pouch build kind {kind!r}: use one of {', '.join(BUILD_KINDS)}")
    configured = os.environ.get("POUCH_ARCHIVE")
    if configured:
        return Path(configured), "POUCH_ARCHIVE"
    shared = [a for a in shared_pouch_archives() if is_release_label(archive_label(a)) == (kind == "release")]
    if shared:
        return shared[0], str(artifacts_dir())
    legacy = newest(sorted(LEGACY_POUCH_DIR.glob("pouch-*.tar.gz")), "pouch-*.tar.gz")
    return (legacy, str(LEGACY_POUCH_DIR)) if legacy else None


def upgrade_from_archive() -> tuple[Path, str] | None:
    """The pouch archive molecule/upgrade starts a node from (it upgrades to ``pouch_archive("master")``):
    ``$POUCH_UPGRADE_FROM_ARCHIVE``, else the test artifacts' release, what users run today."""
    configured = os.environ.get("POUCH_UPGRADE_FROM_ARCHIVE")
    if configured:
        return Path(configured), "POUCH_UPGRADE_FROM_ARCHIVE"
    releases = [a for a in shared_pouch_archives() if is_release_label(archive_label(a))]
    return (releases[0], str(artifacts_dir())) if releases else None


def pouch_builds() -> list[PouchBuild]:
    """Every pouch build the module tests run on (``ArtifactError`` when a named one is unusable):
    ``$POUCH_BIN_DIR``, else ``$POUCH_ARCHIVE``, else every build in the test artifacts, else
    ``/opt/pouch/bin``."""
    configured_dir = os.environ.get("POUCH_BIN_DIR")
    if configured_dir:
        return [build_from_dir(Path(configured_dir), "POUCH_BIN_DIR")]
    configured_archive = os.environ.get("POUCH_ARCHIVE")
    if configured_archive:
        return [build_from_archive(Path(configured_archive), "POUCH_ARCHIVE")]
    shared = shared_pouch_archives()
    if shared:
        return [build_from_archive(a, str(artifacts_dir())) for a in shared]
    if _has_pouch(LEGACY_POUCH_DIR / "bin"):
        return [build_from_dir(LEGACY_POUCH_DIR / "bin", str(LEGACY_POUCH_DIR / "bin"))]
    return []


def pouch_missing_reason() -> str:
    return (
        "no pouch build found: set POUCH_BIN_DIR (a directory holding pouchd and pouch) or POUCH_ARCHIVE "
        f"(a pouch archive with its .sha256), or provide the test artifacts in {artifacts_dir()} "
        f"({POUCH_ARCHIVE_GLOB}, PA_ARTIFACTS_DIR moves it)"
    )


def dragonfly_archive() -> tuple[Path, str] | None:
    """``$DRAGONFLY_ARCHIVE``, else the test artifacts' newest Dragonfly 1.x archive."""
    configured = os.environ.get("DRAGONFLY_ARCHIVE")
    if configured:
        return Path(configured), "DRAGONFLY_ARCHIVE"
    folder = artifacts_dir()
    found = (
        newest(sorted(folder.glob(DRAGONFLY_ARCHIVE_GLOB)), DRAGONFLY_ARCHIVE_GLOB)
        if folder.is_dir()
        else None
    )
    return (found, str(folder)) if found else None


def archive_environment(kind: str = LAB_DEFAULT_BUILD) -> dict[str, str]:
    """``POUCH_ARCHIVE`` (of build ``kind``), ``DRAGONFLY_ARCHIVE`` and ``POUCH_UPGRADE_FROM_ARCHIVE`` as
    resolved here, for the Ansible runs that read them (the lab inventory, molecule scenarios); a
    user's own values pass through."""
    env = {}
    for variable, found in (
        ("POUCH_ARCHIVE", pouch_archive(kind)),
        ("DRAGONFLY_ARCHIVE", dragonfly_archive()),
        ("POUCH_UPGRADE_FROM_ARCHIVE", upgrade_from_archive()),
    ):
        if found is not None:
            env[variable] = str(found[0])
    return env


def describe_archive(archive: Path, source: str) -> str:
    """One line naming the pouch archive a run installs: path, where it was found, and what its pouchd
    says it is (the archive is verified and unpacked to ask it)."""
    try:
        build = build_from_archive(archive, source)
        return build.describe()
    except ArtifactError as exc:
        return f"pouch archive {archive} ({source}) is unusable: {exc}"
