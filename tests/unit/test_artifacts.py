"""lab/artifacts.py: which pouch and Dragonfly archives a run uses, checksums, unpacking (no pouchd run:
the archives here hold shell scripts that print what a pouchd prints)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from lab import artifacts
from lab.artifacts import ArtifactError

VERSION_SCRIPT = """#!/bin/sh
case "$1" in
  --version) echo "pouchd version: {version}, build: {build}, build at: 2026-01-01";;
  --help) printf 'Flags:\\n      --config-file string   x\\n';;
esac
"""


def make_archive(path: Path, version: str = "1.3.0", build: str = "37051654", checksum: bool = True) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (
            ("bin/pouchd", VERSION_SCRIPT.format(version=version, build=build)),
            ("bin/pouch", ""),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    if checksum:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        (path.parent / (path.name + ".sha256")).write_text(f"{digest}  {path.name}\n")
    return path


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "shared-artifacts"
    folder.mkdir()
    for variable in ("POUCH_ARCHIVE", "POUCH_BIN_DIR", "DRAGONFLY_ARCHIVE", "POUCH_UPGRADE_FROM_ARCHIVE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PA_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "lab"))
    monkeypatch.setattr(artifacts, "LEGACY_POUCH_DIR", tmp_path / "opt-pouch")
    return folder


def test_shared_builds_release_first_then_others(shared: Path) -> None:
    make_archive(shared / "pouch-master-bc5839e3-linux-amd64.tar.gz", build="bc5839e3")
    make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz")
    builds = artifacts.pouch_builds()
    assert [b.test_id for b in builds] == ["pouch-1.3.0", "pouch-master-bc5839e3"]
    assert builds[1].version() == ("1.3.0", "bc5839e3")
    assert "build bc5839e3" in builds[1].describe() and str(shared) in builds[1].describe()
    archive, source = artifacts.pouch_archive("release")
    assert archive.name == "pouch-1.3.0-linux-amd64.tar.gz" and source == str(shared)
    archive, source = artifacts.pouch_archive("master")
    assert archive.name == "pouch-master-bc5839e3-linux-amd64.tar.gz" and source == str(shared)
    with pytest.raises(ValueError, match="release, master"):
        artifacts.pouch_archive("nightly")


def test_upgrade_goes_from_the_release_to_master_unless_told(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz")
    master = make_archive(shared / "pouch-master-bc5839e3-linux-amd64.tar.gz", build="bc5839e3")
    assert artifacts.upgrade_from_archive() == (release, str(shared))
    env = artifacts.archive_environment("master")
    assert (env["POUCH_UPGRADE_FROM_ARCHIVE"], env["POUCH_ARCHIVE"]) == (str(release), str(master))
    mine = make_archive(tmp_path / "mine" / "pouch-1.2.0-linux-amd64.tar.gz", version="1.2.0")
    monkeypatch.setenv("POUCH_UPGRADE_FROM_ARCHIVE", str(mine))
    assert artifacts.upgrade_from_archive() == (mine, "POUCH_UPGRADE_FROM_ARCHIVE")


def test_explicit_variables_win(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz")
    mine = make_archive(tmp_path / "mine" / "pouch-9.9.9-linux-amd64.tar.gz", version="9.9.9", build="abc")
    monkeypatch.setenv("POUCH_ARCHIVE", str(mine))
    assert artifacts.pouch_archive("release") == artifacts.pouch_archive("master") == (mine, "POUCH_ARCHIVE")
    assert [b.label for b in artifacts.pouch_builds()] == ["9.9.9"]
    bin_dir = artifacts.unpack(mine) / "bin"
    monkeypatch.setenv("POUCH_BIN_DIR", str(bin_dir))
    (build,) = artifacts.pouch_builds()
    assert (build.bin_dir, build.source, build.label) == (bin_dir, "POUCH_BIN_DIR", "9.9.9-abc")


def test_nothing_found_names_the_variables(shared: Path) -> None:
    assert artifacts.pouch_builds() == [] and artifacts.pouch_archive() is None
    reason = artifacts.pouch_missing_reason()
    assert "POUCH_BIN_DIR" in reason and "POUCH_ARCHIVE" in reason and str(shared) in reason
    assert artifacts.archive_environment() == {}


def test_legacy_dir_newest_by_version_not_text(shared: Path, tmp_path: Path) -> None:
    legacy = tmp_path / "opt-pouch"
    for version in ("1.9.0", "1.10.0", "1.2.0"):
        make_archive(legacy / f"pouch-{version}-linux-amd64.tar.gz", version=version)
    assert artifacts.pouch_archive() == (legacy / "pouch-1.10.0-linux-amd64.tar.gz", str(legacy))


def test_checksum_mismatch_is_an_error_not_an_absence(shared: Path) -> None:
    archive = make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz")
    (shared / (archive.name + ".sha256")).write_text("0" * 64 + "  x\n")
    with pytest.raises(ArtifactError, match="does not match"):
        artifacts.pouch_builds()
    assert not list((Path(artifacts.default_state_dir()) / "artifacts").glob("pouch-*"))


def test_missing_checksum_file_is_an_error(shared: Path) -> None:
    make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz", checksum=False)
    with pytest.raises(ArtifactError, match="no checksum file"):
        artifacts.pouch_builds()


def test_unpack_once_per_checksum(shared: Path) -> None:
    archive = make_archive(shared / "pouch-1.3.0-linux-amd64.tar.gz")
    first = artifacts.unpack(archive)
    (first / "marker").write_text("kept")
    assert artifacts.unpack(archive) == first and (first / "marker").exists()
    make_archive(archive, version="1.3.1")  # same name, new content and checksum
    assert artifacts.unpack(archive) != first


def test_dragonfly_archive(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert artifacts.dragonfly_archive() is None
    found = shared / "dragonfly-0.4.1-linux-amd64.tar.gz"
    found.write_bytes(b"x")
    assert artifacts.dragonfly_archive() == (found, str(shared))
    monkeypatch.setenv("DRAGONFLY_ARCHIVE", str(tmp_path / "mine.tar.gz"))
    assert artifacts.archive_environment()["DRAGONFLY_ARCHIVE"] == str(tmp_path / "mine.tar.gz")
