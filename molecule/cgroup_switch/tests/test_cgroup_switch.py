"""A VM booted through UEFI firmware and GRUB, switched by kernel_compat from the pure cgroup v2
hierarchy to cgroup v1 for the pouch 1.3.0 release (one reboot), then provisioned by site.yml."""

from __future__ import annotations

import json

RELEASE_BUILD = "37051654"
ARGUMENT = "systemd.unified_cgroup_hierarchy=0"
IMAGE = "10.0.2.101:5443/library/busybox:latest"  # the lab registry over TLS (lab inventory)


def test_the_argument_came_from_grub(host) -> None:
    cmdline = host.file("/proc/cmdline").content_string
    assert ARGUMENT in cmdline.split(), cmdline
    # Booted by GRUB from the node's own grub.cfg, not by qemu with the lab's command line.
    assert "lab.hostname=" not in cmdline and "BOOT_IMAGE=" in cmdline, cmdline
    grub_defaults = host.file("/etc/default/grub").content_string
    assert any(
        line.startswith("GRUB_CMDLINE_LINUX=") and ARGUMENT in line for line in grub_defaults.splitlines()
    ), grub_defaults
    assert ARGUMENT in host.file("/boot/grub/grub.cfg").content_string


def test_the_node_runs_the_cgroup_v1_hierarchy(host) -> None:
    assert host.file("/sys/fs/cgroup/memory").is_directory
    assert not host.file("/sys/fs/cgroup/cgroup.controllers").exists


def test_pouchd_is_the_release_with_only_the_v1_shim(host) -> None:
    assert f"build: {RELEASE_BUILD}" in host.check_output("/usr/local/bin/pouchd --version")
    config = json.loads(host.file("/etc/pouch/config.json").content_string)
    types = {spec.get("type", "io.containerd.runtime.v1.linux") for spec in config["add-runtime"].values()}
    assert types == {"io.containerd.runtime.v1.linux"}, config["add-runtime"]
    assert host.service("pouch").is_running


def test_a_container_runs_with_its_memory_limit_and_lxcfs(host) -> None:
    out = host.check_output(
        f"pouch run --rm -m 48m --enableLxcfs {IMAGE} "
        "sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep MemTotal /proc/meminfo'"
    )
    limit, meminfo = out.strip().splitlines()[-2:]
    assert int(limit) == 48 * 1024 * 1024
    assert meminfo.split()[1] == str(48 * 1024), meminfo
