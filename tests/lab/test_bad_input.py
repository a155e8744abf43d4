"""Bad input: each failure is a clear error naming the cause and the log, and nothing is left running.

These use the real programs (debootstrap, qemu, the HTTP server) but need no booted VM; a test whose
program is absent skips and says which.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab import services
from lab.aptrepo import AptRepo
from lab.errors import LabError
from lab.image import BaseImage, build_image, ensure_ssh_key
from lab.paths import LabPaths, default_state_dir
from lab.procs import pids_with_marker
from lab.services import SharedServices, running_services, start_services
from lab.vms import QEMU, Group, up_group

ROOT = Path(__file__).resolve().parents[2]


def needs(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")


@pytest.fixture
def paths(tmp_path: Path) -> LabPaths:
    lab_paths = LabPaths(tmp_path / "state")
    lab_paths.ensure()
    return lab_paths


@pytest.fixture
def taken_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_missing_programs_are_named_before_anything_starts(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path / "empty-bin"), LAB_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "lab", "up", "--nodes", "1"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "qemu-system-x86_64 (Debian package qemu-system-x86)" in result.stderr
    assert "debootstrap (Debian package debootstrap)" in result.stderr
    assert not pids_with_marker(str(tmp_path / "state"))


def test_repo_port_taken(paths: LabPaths, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_REPO_PORT", str(taken_port))
    (paths.repo_dir / "www").mkdir(parents=True)
    with pytest.raises(LabError, match=f"127.0.0.1:{taken_port} \\(LAB_REPO_PORT\\) is already in use"):
        services._start_http(paths, services.APT_HTTP, str(paths.repo_dir / "www"))


def test_registry_port_taken_stops_the_repo_server_it_started(
    paths: LabPaths, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("docker-registry", "skopeo", "umoci")
    www = paths.repo_dir / "www"
    www.mkdir(parents=True)
    (www / "Release").write_text("Origin: test\n")
    # The apt repository's content does not matter here; only the services' start/cleanup does.
    monkeypatch.setattr(services, "build_repo", lambda _paths: AptRepo(www))
    monkeypatch.setenv("LAB_REGISTRY_PORT", str(taken_port))
    with pytest.raises(LabError, match=f"127.0.0.1:{taken_port} is already in use"):
        start_services(paths)
    assert running_services(paths) is None
    assert not pids_with_marker(str(paths.root)), (
        "the HTTP server started before the failure is still running"
    )


def test_failed_image_build_names_the_step_and_log(paths: LabPaths) -> None:
    needs("debootstrap", "mkfs.ext4")
    with socket.socket() as sock:  # a port nobody listens on: the "mirror" refuses connections
        sock.bind(("127.0.0.1", 0))
        dead_mirror = f"http://127.0.0.1:{sock.getsockname()[1]}/debian"
    with pytest.raises(LabError) as err:
        build_image(paths, mirror=dead_mirror)
    log = paths.logs / "image-build.log"
    assert "failed at debootstrap" in str(err.value)
    assert str(log) in str(err.value)
    assert dead_mirror in log.read_text()
    assert not (paths.image_dir / "stamp").exists()
    assert not (paths.image_dir / "build").exists()


def test_qemu_that_exits_at_boot_is_reported_and_cleaned_up(paths: LabPaths) -> None:
    needs(QEMU, "qemu-img", "ssh-keygen")
    ensure_ssh_key(paths)
    paths.image_dir.mkdir(parents=True)
    image = BaseImage.in_dir(paths.image_dir)
    image.kernel.write_text("not a kernel\n")
    image.initrd.write_text("not an initrd\n")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(image.disk), "16M"], check=True)
    with pytest.raises(LabError) as err:
        up_group(paths, "broken", ["vm1"], image, SharedServices(1, 1, 1, 1, 1), ssh_timeout=60)
    group = Group("broken", paths)
    assert "qemu exited during boot" in str(err.value)
    assert str(group.qemu_log("vm1")) in str(err.value)
    assert not pids_with_marker(str(paths.root)), "qemu or the hub outlived the failed boot"
    assert not group.dir.exists()


def test_vm_that_never_answers_ssh_names_its_console_log(paths: LabPaths) -> None:
    needs(QEMU, "qemu-img", "ssh-keygen", "ssh")
    cached = BaseImage.in_dir(LabPaths(default_state_dir()).image_dir)
    if not cached.exists():
        pytest.skip(f"needs the lab's cached base image ({cached.disk}); build it with `python -m lab image`")
    ensure_ssh_key(paths)  # a key the image does not know: SSH can never succeed
    with pytest.raises(LabError) as err:
        up_group(paths, "silent", ["vm1"], cached, SharedServices(1, 1, 1, 1, 1), ssh_timeout=5)
    group = Group("silent", paths)
    assert "did not answer SSH" in str(err.value)
    assert str(group.console_log("vm1")) in str(err.value)
    assert not pids_with_marker(str(paths.root))


def test_down_without_a_lab_is_harmless(tmp_path: Path) -> None:
    env = dict(os.environ, LAB_STATE_DIR=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, "-m", "lab", "down"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout
