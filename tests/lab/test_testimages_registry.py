"""The offline test images and the local registry, for real: build, serve, push, read back."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.registry import Registry, RegistryError, port_is_free
from lab.testimages import build_test_images


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory):
    return build_test_images(tmp_path_factory.mktemp("images"))


def test_variants_have_distinct_configs(images) -> None:
    configs = {}
    for image in images:
        out = subprocess.run(
            ["skopeo", "inspect", "--config", image.oci_ref], capture_output=True, text=True, check=True
        ).stdout
        configs[image.tag] = json.loads(out)["config"]
        assert image.docker_archive.stat().st_size > 500_000  # busybox itself is ~2 MB
    assert configs["latest"]["Cmd"] == ["sh"]
    assert configs["latest"]["Labels"] != configs["v2"]["Labels"]
    assert any(e.startswith("PATH=") for e in configs["latest"]["Env"])


def test_cached_build_is_reused(tmp_path: Path, images) -> None:
    cache = images[0].oci_layout.parent
    stamp = (cache / "testimages.stamp").stat().st_mtime_ns
    build_test_images(cache)
    assert (cache / "testimages.stamp").stat().st_mtime_ns == stamp


def test_concurrent_builds_share_one_cache(tmp_path: Path) -> None:
    """Test workers and `lab up` build into one cache at once (CI failed on that race once)."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys; from pathlib import Path; from lab.testimages import build_test_images; "
        "print(build_test_images(Path(sys.argv[1]))[0].docker_archive)"
    )
    procs = [
        subprocess.Popen(
            ["python3", "-c", code, str(tmp_path)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [(p.wait(), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err.decode()
        assert Path(out.decode().strip()).stat().st_size > 500_000
    built = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{tmp_path / 'oci-busybox'}:v2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(built.stdout)["config"]["Cmd"] == ["sh"]


def test_registry_serves_pushed_images(tmp_path: Path, images) -> None:
    registry = Registry(tmp_path / "reg")
    registry.start()
    try:
        refs = [registry.push(image) for image in images]
        assert refs[0] == f"{registry.address}/library/busybox:latest"
        with urllib.request.urlopen(f"http://{registry.address}/v2/library/busybox/tags/list") as resp:
            assert sorted(json.load(resp)["tags"]) == ["latest", "v2"]
        # A second handle on the same state dir sees and can stop the running registry.
        other = Registry(tmp_path / "reg")
        assert other.address == registry.address and other.is_running()
        assert "GET /v2/library/busybox/tags/list" in registry.access_log.read_text()
    finally:
        registry.stop()
    assert not registry.is_running()
    assert port_is_free(registry.port)


def test_registry_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    first = Registry(tmp_path / "a")
    first.start()
    try:
        with pytest.raises(RegistryError, match=rf"127.0.0.1:{first.port} is already in use"):
            Registry(tmp_path / "b", port=first.port).start()
    finally:
        first.stop()
