"""Artifacts of the containerd and runtimes roles: a sha256 mismatch fails clearly and installs nothing.

Runs the roles' artifact task files on this machine (connection local, into a temp dir): no VM needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]

PLAYBOOK = """
- name: Install one artifact with the {role} role's task file
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run {tasks_from}
      ansible.builtin.include_role:
        name: {role}
        tasks_from: {tasks_from}
"""


def run_role(tmp_path: Path, role: str, tasks_from: str, extra: dict) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / f"{role}-{tasks_from}.yml"
    playbook.write_text(PLAYBOOK.format(role=role, tasks_from=tasks_from))
    extra = {"ansible_python_interpreter": sys.executable, **extra}
    argv = [ansible_command("ansible-playbook"), "-i", "localhost,", str(playbook), "-e", json.dumps(extra)]
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def runlxc_stub(tmp_path: Path) -> Path:
    stub = tmp_path / "src" / "runlxc"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\necho runlxc version test-stub\n")
    return stub


def artifact_vars(tmp_path: Path, artifact: dict) -> dict:
    return {
        "runtimes_artifact_name": "runlxc",
        "runtimes_artifact": artifact,
        "runtimes_artifact_dest": str(tmp_path / "bin" / "runlxc"),
        "runtimes_cache_dir": str(tmp_path / "cache"),
        "runtimes_download_retries": 0,
    }


def test_controller_file_installed_then_unchanged(tmp_path: Path, runlxc_stub: Path) -> None:
    (tmp_path / "bin").mkdir()
    extra = artifact_vars(tmp_path, {"src": str(runlxc_stub), "checksum": sha256(runlxc_stub)})
    first = run_role(tmp_path, "runtimes", "artifact.yml", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    installed = tmp_path / "bin" / "runlxc"
    assert installed.read_bytes() == runlxc_stub.read_bytes()
    assert os.access(installed, os.X_OK)
    second = run_role(tmp_path, "runtimes", "artifact.yml", extra)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed=0" in second.stdout, second.stdout


@pytest.mark.parametrize("source", ["src", "url"])
def test_checksum_mismatch_fails_and_installs_nothing(tmp_path: Path, runlxc_stub: Path, source: str) -> None:
    (tmp_path / "bin").mkdir()
    location = str(runlxc_stub) if source == "src" else runlxc_stub.as_uri()
    extra = artifact_vars(tmp_path, {source: location, "checksum": "sha256:" + "0" * 64})
    result = run_role(tmp_path, "runtimes", "artifact.yml", extra)
    assert result.returncode != 0, result.stdout
    assert "Nothing was installed" in result.stdout, result.stdout
    assert "0" * 64 in result.stdout
    assert not (tmp_path / "bin" / "runlxc").exists()
    assert not list((tmp_path / "cache").rglob("runlxc")), "a file that failed its checksum was kept"


def test_archive_member_installed_from_url(tmp_path: Path, runlxc_stub: Path) -> None:
    (tmp_path / "bin").mkdir()
    archive = tmp_path / "src" / "runlxc-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(runlxc_stub, arcname="runlxc-1.0/bin/runlxc")
    extra = artifact_vars(
        tmp_path, {"url": archive.as_uri(), "checksum": sha256(archive), "member": "runlxc-1.0/bin/runlxc"}
    )
    result = run_role(tmp_path, "runtimes", "artifact.yml", extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "bin" / "runlxc").read_bytes() == runlxc_stub.read_bytes()


def test_containerd_archive_mismatch_fails_before_copy(tmp_path: Path) -> None:
    archive = tmp_path / "containerd-9.9.9-linux-amd64.tar.gz"
    archive.write_bytes(b"not really an archive")
    extra = {
        "containerd_archive": {"src": str(archive), "checksum": "sha256:" + "1" * 64},
        "containerd_cache_dir": str(tmp_path / "cache"),
    }
    result = run_role(tmp_path, "containerd", "fetch.yml", extra)
    assert result.returncode != 0, result.stdout
    assert "sha256 mismatch" in result.stdout and "Nothing was installed" in result.stdout, result.stdout
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))
