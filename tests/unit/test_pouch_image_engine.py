"""pouch_image's engine without a daemon: reference checks, Moby's name normalization, archive reading
and each daemon's naming rules for loads, pull progress summaries."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from pouch_module_utils import load

engine = load("pouch_image_engine")


@pytest.mark.parametrize(
    "reference",
    [
        "busybox",
        "busybox:1.36",
        "library/busybox:latest",
        "127.0.0.1:5000/library/busybox:v2",
        "registry.example.com/team/app@sha256:" + "a" * 64,
        "localhost/app:1",
        "Registry.Example.com:5000/app:1",
    ],
)
def test_valid_references(reference: str) -> None:
    engine.check_reference(reference)


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("", "must not be empty"),
        ("Bad Name", "not a valid image reference"),
        ("UPPER/case:1", "not a valid image reference"),
        ("busybox:", "not a valid image reference"),
        ("busybox:bad tag", "not a valid image reference"),
        ("app@sha256:short", "not a valid image reference"),
    ],
)
def test_invalid_references(reference: str, fragment: str) -> None:
    with pytest.raises(engine.ImageInputError, match=fragment):
        engine.check_reference(reference)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:v2", "docker.io/library/busybox:v2"),
        ("team/app:1", "docker.io/team/app:1"),
        ("docker.io/busybox:1", "docker.io/library/busybox:1"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
        ("localhost/app", "localhost/app:latest"),
        ("reg.example.com/a/b@sha256:" + "f" * 64, "reg.example.com/a/b@sha256:" + "f" * 64),
    ],
)
def test_docker_normalized(given: str, normalized: str) -> None:
    assert engine.docker_normalized(given) == normalized


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, tags: list[str], config: str = "ab" * 32) -> Path:
    with tarfile.open(path, "w") as archive:
        _add(archive, f"{config}.json", b"{}")
        manifest = [{"Config": f"{config}.json", "RepoTags": tags, "Layers": []}]
        _add(archive, "manifest.json", json.dumps(manifest).encode())
    return path


def oci_archive(path: Path, refs: dict[str, str]) -> Path:
    """refs: ref.name annotation -> config digest hex."""
    with tarfile.open(path, "w") as archive:
        _add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        manifests = []
        for index, (ref, config) in enumerate(refs.items()):
            manifest = json.dumps({"config": {"digest": f"sha256:{config}"}, "layers": []}).encode()
            digest = f"{index:064d}"
            _add(archive, f"blobs/sha256/{digest}", manifest)
            manifests.append(
                {"digest": f"sha256:{digest}", "annotations": {"org.opencontainers.image.ref.name": ref}}
            )
        _add(archive, "index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
    return path


def test_read_docker_archive_normalizes_tags(tmp_path: Path) -> None:
    archive = engine.read_archive(str(docker_archive(tmp_path / "a.tar", ["busybox:v2", "team/app:1"])))
    assert archive.kind == "docker-archive"
    assert archive.references == {
        "docker.io/library/busybox:v2": "sha256:" + "ab" * 32,
        "docker.io/team/app:1": "sha256:" + "ab" * 32,
    }


def test_read_oci_archive(tmp_path: Path) -> None:
    archive = engine.read_archive(
        str(oci_archive(tmp_path / "o.tar", {"7": "c" * 64, "reg.io/x/y:1": "d" * 64}))
    )
    assert archive.kind == "oci-archive"
    assert archive.references == {"7": "sha256:" + "c" * 64, "reg.io/x/y:1": "sha256:" + "d" * 64}


def test_read_archive_errors(tmp_path: Path) -> None:
    with pytest.raises(engine.ImageInputError, match="does not exist"):
        engine.read_archive(str(tmp_path / "missing.tar"))
    with pytest.raises(engine.ImageInputError, match="is not a file"):
        engine.read_archive(str(tmp_path))
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"x" * 2048)
    with pytest.raises(engine.ImageInputError, match="not a readable image archive"):
        engine.read_archive(str(garbage))
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as archive:
        _add(archive, "README", b"hello")
    with pytest.raises(engine.ImageInputError, match="neither a docker-archive"):
        engine.read_archive(str(empty))


def test_plan_load_docker_archive(tmp_path: Path) -> None:
    archive = engine.read_archive(str(docker_archive(tmp_path / "a.tar", ["busybox:v2"])))
    on_pouch = engine.plan_load(archive, "busybox:v2", on_pouch=True)
    assert (on_pouch.name_param, on_pouch.loaded_as, on_pouch.retag) == (
        "docker.io/library/busybox",
        "docker.io/library/busybox:v2",
        True,
    )
    exact = engine.plan_load(archive, "docker.io/library/busybox:v2", on_pouch=True)
    assert exact.retag is False
    on_docker = engine.plan_load(archive, "busybox:v2", on_pouch=False)
    assert (on_docker.name_param, on_docker.retag) == (None, False)
    with pytest.raises(
        engine.ImageInputError,
        match=r"holds no image named busybox:v3: it holds docker\.io/library/busybox:v2",
    ):
        engine.plan_load(archive, "busybox:v3", on_pouch=True)


def test_plan_load_oci_archive(tmp_path: Path) -> None:
    archive = engine.read_archive(str(oci_archive(tmp_path / "o.tar", {"7": "c" * 64})))
    plan = engine.plan_load(archive, "team/app:7", on_pouch=True)
    assert (plan.name_param, plan.loaded_as, plan.image_id) == (
        "team/app",
        "team/app:7",
        "sha256:" + "c" * 64,
    )
    with pytest.raises(engine.ImageInputError, match="dockerd cannot name it"):
        engine.plan_load(archive, "team/app:7", on_pouch=False)
    with pytest.raises(engine.ImageInputError, match="holds no image for team/app:8"):
        engine.plan_load(archive, "team/app:8", on_pouch=True)


def test_summarize_progress_for_both_daemons() -> None:
    pouch = [
        {"id": "r:1", "status": "resolved"},
        {"id": "layer-sha256:aa", "status": "downloading"},
        {"id": "layer-sha256:aa", "status": "done"},
        {"id": "config-sha256:bb", "status": "done"},
    ]
    assert engine.summarize_progress(pouch) == {"events": 4, "layers": ["layer-sha256:aa"], "status": "done"}
    docker = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Pull complete", "id": "aaf4c0e8aab7"},
        {"status": "Status: Downloaded newer image for busybox:latest"},
    ]
    summary = engine.summarize_progress(docker)
    assert summary["layers"] == ["aaf4c0e8aab7"]
    assert summary["status"].startswith("Status: Downloaded newer image")
