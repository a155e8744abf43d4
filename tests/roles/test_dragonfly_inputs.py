"""roles/dragonfly bad input on this machine (connection local, no VM): each case stops with a
clear message before anything is installed.

- Dragonfly not enabled: the role ends at once;
- enabled without the supernode group: names the group;
- a supernode host without an address: names the host and the variable;
- a wrong archive checksum: both sums, nothing copied;
- an unreachable supernode: the peer names the URL that failed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]

PLAYBOOK = """
- name: Run the dragonfly role
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Run {tasks_from}
      ansible.builtin.include_role:
        name: dragonfly
        tasks_from: {tasks_from}
"""


def run_role(
    tmp_path: Path, extra: dict, groups: dict[str, list[str]] | None = None, tasks_from: str = "main"
) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / f"dragonfly-{tasks_from}.yml"
    playbook.write_text(PLAYBOOK.format(tasks_from=tasks_from))
    inventory = {"all": {"hosts": {"node1": {"ansible_host": "127.0.0.1", "test_ip": "127.0.0.1"}}}}
    if groups:
        inventory["all"]["children"] = {g: {"hosts": {h: {} for h in hosts}} for g, hosts in groups.items()}
    inventory_file = tmp_path / "inventory.json"
    inventory_file.write_text(json.dumps(inventory))
    extra = {
        "ansible_python_interpreter": sys.executable,
        "dragonfly_cache_dir": str(tmp_path / "cache"),
        "dragonfly_bin_dir": str(tmp_path / "bin"),
        "dragonfly_address_var": "test_ip",
        "dragonfly_registry_mirror_remote": "http://127.0.0.1:5000",
        # No pouchd build was asked here (site.yml's first play does that): name the wiring.
        "dragonfly_pouchd_wiring": "mirror",
        **extra,
    }
    argv = [
        ansible_command("ansible-playbook"),
        "-i",
        str(inventory_file),
        str(playbook),
        "-e",
        json.dumps(extra),
    ]
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "stage" / "bin"
    src.mkdir(parents=True)
    for name in ("supernode", "dfget", "dfdaemon"):
        (src / name).write_text("#!/bin/sh\necho stub\n")
    path = tmp_path / "dragonfly-test.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="bin")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def output(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_disabled_role_ends_without_changes(tmp_path: Path) -> None:
    result = run_role(tmp_path, {"dragonfly_enabled": False})
    assert result.returncode == 0, output(result)
    assert "changed=0" in result.stdout
    assert not (tmp_path / "cache").exists()


def test_missing_supernode_group(tmp_path: Path, archive: tuple[Path, str]) -> None:
    path, digest = archive
    extra = {
        "dragonfly_enabled": True,
        "dragonfly_archive_src": str(path),
        "dragonfly_archive_sha256": digest,
    }
    result = run_role(tmp_path, extra)
    assert result.returncode != 0
    wanted = "The inventory group 'dragonfly_supernodes' (dragonfly_supernode_group) is missing or empty"
    assert wanted in output(result)
    assert not (tmp_path / "cache").exists()


def test_supernode_without_address(tmp_path: Path, archive: tuple[Path, str]) -> None:
    path, digest = archive
    extra = {
        "dragonfly_enabled": True,
        "dragonfly_archive_src": str(path),
        "dragonfly_archive_sha256": digest,
        "dragonfly_address_var": "no_such_var",
    }
    result = run_role(tmp_path, extra, groups={"dragonfly_supernodes": ["node1"]})
    assert result.returncode != 0
    text = output(result)
    assert "No address for supernode host(s) ['node1']" in text, text
    assert "the host variable no_such_var (dragonfly_address_var) is not set" in text


def test_checksum_mismatch_installs_nothing(tmp_path: Path, archive: tuple[Path, str]) -> None:
    path, digest = archive
    wrong = "0" * 64
    extra = {"dragonfly_enabled": True, "dragonfly_archive_src": str(path), "dragonfly_archive_sha256": wrong}
    result = run_role(tmp_path, extra, groups={"dragonfly_supernodes": ["node1"]})
    assert result.returncode != 0
    text = output(result)
    assert f"has sha256 {digest}, expected {wrong} (dragonfly_archive_sha256)" in text, text
    assert "Nothing was copied or installed" in text
    assert not (tmp_path / "cache").exists() and not (tmp_path / "bin").exists()


def test_url_checksum_mismatch_installs_nothing(tmp_path: Path, archive: tuple[Path, str]) -> None:
    """dragonfly_archive_url (the offline bundle's way): get_url never moves a mismatch into place."""
    path, digest = archive
    wrong = "0" * 64
    extra = {"dragonfly_enabled": True, "dragonfly_archive_url": path.as_uri()}
    extra["dragonfly_archive_sha256"] = wrong
    result = run_role(tmp_path, extra, groups={"dragonfly_supernodes": ["node1"]})
    assert result.returncode != 0
    text = output(result)
    assert "Download the archive, checking its sha256" in text, text
    assert digest in text and wrong in text, text
    assert not list((tmp_path / "cache").glob("*.tar.gz")) and not (tmp_path / "bin").exists()


def test_unreachable_supernode_stops_the_peer(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    extra = {"dragonfly_enabled": True, "dragonfly_supernode_port": 9}
    result = run_role(tmp_path, extra, groups={"dragonfly_supernodes": ["node1"]}, tasks_from="peer")
    assert result.returncode != 0
    text = output(result)
    assert "node1 reaches no supernode of 'dragonfly_supernodes': http://127.0.0.1:9/_ping" in text, text


def archive_spec(path: Path, digest: str, install: list[str]) -> dict:
    # No part enabled: the restart handlers the new binaries notify skip on this machine.
    return {
        "dragonfly_supernode_enabled": False,
        "dragonfly_peer_enabled": False,
        "__dragonfly_archive": {
            "label": "dragonfly",
            "src": str(path),
            "url": "",
            "sha256": digest,
            "sha256_var": "dragonfly_archive_sha256",
            "contains": ["supernode", "dfget", "dfdaemon"],
            "install": install,
        },
    }


def test_archive_installs_only_what_the_host_runs(tmp_path: Path, archive: tuple[Path, str]) -> None:
    """install_archive.yml (both generations' one way to install binaries): a peer gets dfget and
    dfdaemon, not the supernode; a second run changes nothing."""
    path, digest = archive
    extra = archive_spec(path, digest, ["dfget", "dfdaemon"])
    first = run_role(tmp_path, extra, tasks_from="install_archive")
    assert first.returncode == 0, output(first)
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["dfdaemon", "dfget"]
    assert (tmp_path / "bin" / "dfget").stat().st_mode & 0o777 == 0o755
    second = run_role(tmp_path, extra, tasks_from="install_archive")
    assert second.returncode == 0, output(second)
    assert "changed=0" in second.stdout, second.stdout


def test_archive_missing_a_binary(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "dfget").write_text("#!/bin/sh\n")
    path = tmp_path / "partial.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(stage / "dfget", arcname="dfget")
    extra = archive_spec(path, hashlib.sha256(path.read_bytes()).hexdigest(), ["dfget"])
    result = run_role(tmp_path, extra, tasks_from="install_archive")
    assert result.returncode != 0
    text = output(result)
    assert "must contain one each of supernode, dfget, dfdaemon; found" in text, text
    assert not (tmp_path / "bin").exists()
