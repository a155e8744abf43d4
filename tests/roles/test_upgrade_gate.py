"""playbooks/upgrade.yml's gates on this machine, with no VM: nodes are inventory names pointing at a
closed port on 127.0.0.1, so nothing can be changed anywhere.

- a wrong or missing archive stops the run in the first play, before the rolling play starts;
- with good inputs the rolling play starts, takes upgrade_serial nodes per batch, and a failed batch
  (here: unreachable nodes) stops the rollout, so later nodes are never contacted.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]
ROLLING_PLAY = "PLAY [Upgrade Pouch nodes, one batch at a time]"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_upgrade(tmp_path: Path, nodes: list[str], extra: dict) -> subprocess.CompletedProcess[str]:
    port = closed_port()
    hosts = {n: {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root"} for n in nodes}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"pouch_nodes": {"hosts": hosts}}))
    env = ansible_env(ANSIBLE_TIMEOUT="5")
    argv = [
        ansible_command("ansible-playbook"),
        "-i",
        str(inventory),
        str(ROOT / "playbooks/upgrade.yml"),
        "-e",
        json.dumps({"ansible_python_interpreter": sys.executable, **extra}),
    ]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "pouch-9.9.9-linux-amd64.tar.gz"
    path.write_bytes(b"not really an archive; only its checksum is read here\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def rolling_part(result: subprocess.CompletedProcess[str]) -> str:
    assert ROLLING_PLAY in result.stdout, result.stdout
    return result.stdout.split(ROLLING_PLAY, 1)[1].split("PLAY RECAP", 1)[0]


def test_wrong_checksum_stops_before_the_rolling_play(tmp_path: Path, archive: tuple[Path, str]) -> None:
    path, digest = archive
    result = run_upgrade(
        tmp_path, ["n1", "n2"], {"pouchd_archive_src": str(path), "pouchd_archive_sha256": "0" * 64}
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out
    assert f"has sha256 {digest}, but pouchd_archive_sha256 is {'0' * 64}" in out
    assert "The upgrade was stopped before any node was changed" in out
    assert ROLLING_PLAY not in result.stdout


def test_missing_archive_stops_before_the_rolling_play(tmp_path: Path) -> None:
    missing = tmp_path / "pouch-absent.tar.gz"
    result = run_upgrade(
        tmp_path, ["n1"], {"pouchd_archive_src": str(missing), "pouchd_archive_sha256": "a" * 64}
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out
    assert f"the pouchd archive {missing} does not exist on the controller" in out
    assert ROLLING_PLAY not in result.stdout


def test_malformed_checksum_is_refused(tmp_path: Path, archive: tuple[Path, str]) -> None:
    path, _ = archive
    result = run_upgrade(
        tmp_path, ["n1"], {"pouchd_archive_src": str(path), "pouchd_archive_sha256": "sha256:abc"}
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out
    assert "pouchd_archive_sha256 (64 hex digits)" in out
    assert ROLLING_PLAY not in result.stdout


@pytest.mark.parametrize(("serial", "first_batch"), [(None, ["n1"]), (2, ["n1", "n2"])])
def test_a_failed_batch_stops_the_rollout(
    tmp_path: Path, archive: tuple[Path, str], serial: int | None, first_batch: list[str]
) -> None:
    path, digest = archive
    extra = {"pouchd_archive_src": str(path), "pouchd_archive_sha256": digest}
    if serial is not None:
        extra["upgrade_serial"] = serial
    result = run_upgrade(tmp_path, ["n1", "n2", "n3"], extra)
    assert result.returncode != 0, result.stdout
    rolling = rolling_part(result)
    for node in ("n1", "n2", "n3"):
        # every node passed the input checks of the first play
        assert f"ok: [{node}]" in result.stdout.split(ROLLING_PLAY, 1)[0], result.stdout
        # only the first batch was tried; the nodes after it were never contacted
        assert (f"[{node}]" in rolling) == (node in first_batch), rolling
