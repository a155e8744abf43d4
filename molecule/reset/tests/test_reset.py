"""A lab VM after playbooks/reset.yml (molecule/reset/side_effect.yml): the stack that converge.yml
installed is gone, the data survived the first reset (recorded), a second reset changed nothing
(recorded), and the final reset with reset_purge_data removed the data too."""

from __future__ import annotations

import json
import re

RECORD = "/root/reset-record.json"
HOME = "/var/lib/pouch"


def record(host) -> dict:
    return json.loads(host.file(RECORD).content_string)


def test_no_process_of_the_stack_is_left(host) -> None:
    for name in ("pouchd", "containerd", "containerd-shim", "containerd-shim-runc-v1", "lxcfs"):
        pids = host.run(f"pgrep -x {name}")
        assert pids.rc == 1 and not pids.stdout.strip(), (name, pids.stdout)
    # nothing that still runs from pouchd's or containerd's files
    leftovers = host.run("pgrep -af 'pouch|containerd|lxcfs'")
    assert not [line for line in leftovers.stdout.splitlines() if "pgrep" not in line], leftovers.stdout


def test_no_unit_of_the_stack_is_left(host) -> None:
    for unit in ("pouch.service", "lxcfs.service", "dfdaemon.service", "dragonfly-dfget-server.service"):
        assert not host.file(f"/etc/systemd/system/{unit}").exists, unit
        listed = host.run(f"systemctl list-unit-files --no-legend {unit}")
        assert not listed.stdout.strip(), listed.stdout
    # roles/containerd masked Debian's containerd.service (a link to /dev/null): no longer
    assert not host.file("/etc/systemd/system/containerd.service").exists
    wants = host.run("ls /etc/systemd/system/multi-user.target.wants/")
    assert not re.search(r"\b(pouch|lxcfs)\.service\b", wants.stdout), wants.stdout


def test_no_config_binary_or_cache_is_left(host) -> None:
    for path in (
        "/etc/pouch",
        "/usr/local/bin/pouch",
        "/usr/local/bin/pouchd",
        "/usr/local/libexec/pouch-ansible",
        "/var/cache/pouch-ansible",
        "/var/run/pouchd.sock",
    ):
        assert not host.file(path).exists, path


def test_no_sysctl_or_module_file_of_ours_is_left(host) -> None:
    assert not host.file("/etc/sysctl.d/60-pouch.conf").exists
    assert not host.file("/etc/modules-load.d/pouch.conf").exists
    grep = host.run("grep -rl 'roles/kernel_compat' /etc/sysctl.d /etc/modules-load.d")
    assert not grep.stdout.strip(), grep.stdout


def test_lxcfs_is_unmounted_and_its_mount_point_gone(host) -> None:
    assert host.run("findmnt --raw --noheadings --types fuse.lxcfs").stdout.strip() == ""
    assert not host.file("/var/lib/lxc/lxcfs").exists


def test_stack_packages_are_purged_and_shared_ones_kept(host) -> None:
    for package in ("containerd", "runc", "crun", "lxcfs"):
        assert not host.package(package).is_installed, package
        status = host.run(f"dpkg-query -W -f='${{db:Status-Abbrev}}' {package}")
        assert not status.stdout.startswith("rc"), (package, "config files left")
    for package in ("iptables", "fuse3"):
        assert host.package(package).is_installed, package


def test_group_and_bridge_are_gone(host) -> None:
    assert not host.group("pouch").exists
    assert host.run("ip link show dev p0").rc != 0


def test_the_unconfirmed_reset_and_the_first_reset_kept_the_data(host) -> None:
    rec = record(host)
    before, after = rec["before"], rec["after_reset"]
    assert rec["before"]["running"] in before["ids"], before
    # every container's state directory survived the reset that kept the data
    assert before["ids"] and set(before["ids"]) <= set(after["ids"]), (before, after)


def test_a_second_reset_changed_nothing(host) -> None:
    second = record(host)["second_reset"]
    assert int(second["rc"]) == 0, second
    assert len(second["recap"]) == 1, second
    assert re.search(r"\bchanged=0\b", second["recap"][0]) and re.search(r"\bfailed=0\b", second["recap"][0])


def test_the_purging_reset_removed_the_data(host) -> None:
    assert not host.file(HOME).exists
    assert host.run(f"findmnt --raw --noheadings --output TARGET | grep -F {HOME}/").stdout == ""
