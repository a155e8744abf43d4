"""roles/lxcfs on a lab VM: our lxcfs.service, its mount, per-cgroup view, reload and restart guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOME = "/var/lib/lxc/lxcfs"
SCENARIO = Path(__file__).resolve().parents[1]
PLAYBOOK_BIN = Path(sys.executable).parent / "ansible-playbook"


def main_pid(host) -> int:
    return int(host.check_output("systemctl show -p MainPID --value lxcfs.service"))


def lxcfs_mounts(host) -> list[str]:
    return host.check_output("findmnt -rn -t fuse.lxcfs -o TARGET").split()


def run_playbook(host, name: str) -> subprocess.CompletedProcess[str]:
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_inventory
    return subprocess.run(
        [str(PLAYBOOK_BIN), "-i", inventory, str(SCENARIO / name)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, ANSIBLE_ROLES_PATH=str(SCENARIO.parents[1] / "roles")),
    )


def test_exported_home(host) -> None:
    assert json.loads(host.file("/root/molecule-lxcfs.json").content_string) == {"pouch_lxcfs_home": HOME}


def test_service_is_ours_active_and_enabled(host) -> None:
    service = host.service("lxcfs")
    assert service.is_running and service.is_enabled
    show = host.check_output(
        "systemctl show lxcfs.service -p FragmentPath -p Before -p KillMode -p Restart -p ExecReload"
    )
    assert "FragmentPath=/etc/systemd/system/lxcfs.service" in show
    assert "pouch.service" in show and "KillMode=process" in show and "Restart=on-failure" in show
    assert "-USR1" in show


def test_mounted_only_at_the_pouch_home(host) -> None:
    # Debian's own unit would have mounted /var/lib/lxcfs; the role moved it on first install.
    assert lxcfs_mounts(host) == [HOME]
    assert f" {HOME} fuse.lxcfs " in host.file("/proc/mounts").content_string


def test_meminfo_through_lxcfs_is_readable(host) -> None:
    assert host.check_output(f"head -n 1 {HOME}/proc/meminfo").startswith("MemTotal:")


def test_cgroup_with_64m_limit_sees_65536_kb(host) -> None:
    # What a pouch container with --enableLxcfs -m 64m sees: lxcfs answers from the reader's cgroup.
    out = host.check_output(
        f"systemd-run --quiet --wait --pipe -p MemoryMax=64M head -n 1 {HOME}/proc/meminfo"
    )
    assert out.split() == ["MemTotal:", "65536", "kB"]


def test_reload_keeps_process_and_mount(host) -> None:
    before = main_pid(host)
    host.check_output("systemctl reload lxcfs.service")
    assert main_pid(host) == before
    assert lxcfs_mounts(host) == [HOME]
    assert host.check_output(f"head -n 1 {HOME}/proc/meminfo").startswith("MemTotal:")


def test_moving_home_refused_while_a_container_uses_lxcfs(host) -> None:
    # A stand-in container: a process in its own mount namespace with lxcfs's meminfo over /proc/meminfo.
    holder = (
        "unshare -m --propagation private"
        f" sh -c 'mount --bind {HOME}/proc/meminfo /proc/meminfo && exec sleep 600'"
    )
    host.check_output(f"systemd-run --unit molecule-lxcfs-user {holder}")
    try:
        host.check_output(
            "pid=$(systemctl show -p MainPID --value molecule-lxcfs-user); for i in $(seq 20); do"
            " grep -qs ' /proc/meminfo ' /proc/$pid/mountinfo && exit 0; sleep 0.5;"
            " pid=$(systemctl show -p MainPID --value molecule-lxcfs-user); done; exit 1"
        )
        before = main_pid(host)
        result = run_playbook(host, "move_home.yml")
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "Nothing was restarted" in output and "processes using it now" in output, output
        assert main_pid(host) == before
        assert lxcfs_mounts(host) == [HOME]
        assert host.check_output(f"head -n 1 {HOME}/proc/meminfo").startswith("MemTotal:")
        assert "lxcfs-moved" not in host.file("/etc/systemd/system/lxcfs.service").content_string
    finally:
        host.run("systemctl stop molecule-lxcfs-user; systemctl reset-failed molecule-lxcfs-user")


def test_moving_home_without_users_restarts_and_moves_back(host) -> None:
    # No process uses lxcfs now: the move is allowed; converge then moves it back.
    moved = run_playbook(host, "move_home.yml")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert lxcfs_mounts(host) == ["/var/lib/lxc/lxcfs-moved"]
    assert host.check_output("head -n 1 /var/lib/lxc/lxcfs-moved/proc/meminfo").startswith("MemTotal:")
    back = run_playbook(host, "converge.yml")
    assert back.returncode == 0, back.stdout + back.stderr
    assert lxcfs_mounts(host) == [HOME]
    assert host.service("lxcfs").is_running


def test_pouch_container_sees_its_memory_limit(host) -> None:
    # The same check through pouchd, when this VM has it (molecule/pouchd converges lxcfs with pouchd
    # from the pouch archive and checks it there); the cgroup check above needs lxcfs alone.
    if not host.exists("pouch") or not host.service("pouch").is_running:
        pytest.skip("pouch binaries are not installed on this VM (see the pouchd scenario for this check)")
    out = host.check_output(
        "pouch run --rm --enableLxcfs -m 64m 10.0.2.101:5000/library/busybox:latest head -n 1 /proc/meminfo"
    )
    assert out.split() == ["MemTotal:", "65536", "kB"]
