"""A lab VM provisioned with the released pouch 1.3.0: the build, the cgroup v1 hierarchy it needs,
a pull from the lab registry over TLS, a container's memory limit seen from inside it and through
lxcfs, and a container run by the CLI."""

from __future__ import annotations

import json

RELEASE_BUILD = "37051654"
REGISTRY = "10.0.2.101:5443"  # the lab registry over TLS
IMAGE = f"{REGISTRY}/library/busybox:latest"
LIMIT = 64 * 1024 * 1024
MEMORY_LIMIT_FILE = "/sys/fs/cgroup/memory/memory.limit_in_bytes"


def test_pouchd_is_the_release(host) -> None:
    version = host.check_output("/usr/local/bin/pouchd --version")
    assert f"build: {RELEASE_BUILD}" in version, version
    assert host.service("pouch").is_running


def test_config_holds_only_keys_the_release_has(host) -> None:
    config = json.loads(host.file("/etc/pouch/config.json").content_string)
    for key in ("insecure-registries", "registry-mirrors", "enable-builder", "cni-runtime-config"):
        assert key not in config, key
    assert config["enable-lxcfs"] is True
    # the only shim the release has (roles/runtimes writes it on cgroup v1 nodes)
    types = {spec.get("type", "io.containerd.runtime.v1.linux") for spec in config["add-runtime"].values()}
    assert types == {"io.containerd.runtime.v1.linux"}, config["add-runtime"]


def test_registry_ca_is_in_the_trust_store(host) -> None:
    installed = host.file("/usr/local/share/ca-certificates/pouch-ansible-pouch-lab.crt")
    assert installed.mode == 0o644
    pem = installed.content_string.strip()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_pull_from_the_lab_registry_over_tls(host) -> None:
    host.run(f"pouch rmi {REGISTRY}/library/busybox:v2")
    host.check_output(f"pouch pull {REGISTRY}/library/busybox:v2")
    assert f"{REGISTRY}/library/busybox:v2" in host.check_output("pouch images")


def test_node_has_the_cgroup_v1_hierarchy(host) -> None:
    assert host.file("/sys/fs/cgroup/memory").is_directory
    assert "systemd.unified_cgroup_hierarchy=0" in host.file("/proc/cmdline").content_string


def test_container_runs_with_its_memory_limit(host) -> None:
    state = host.check_output("pouch inspect -f '{{.State.Status}}' release-memcheck")
    assert state.strip() == "running"
    limit = host.check_output(f"pouch exec release-memcheck cat {MEMORY_LIMIT_FILE}")
    assert int(limit) == LIMIT


def test_lxcfs_shows_the_limit_as_memtotal(host) -> None:
    meminfo = host.check_output("pouch exec release-memcheck grep MemTotal /proc/meminfo")
    assert meminfo.split()[1] == str(LIMIT // 1024), meminfo


def test_cli_runs_a_container_with_a_limit(host) -> None:
    out = host.check_output(f"pouch run --rm -m 32m {IMAGE} cat {MEMORY_LIMIT_FILE}")
    assert int(out.strip().splitlines()[-1]) == 32 * 1024 * 1024
