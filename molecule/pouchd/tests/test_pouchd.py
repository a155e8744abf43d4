"""A lab VM after the pouchd role (and its prerequisite roles): the daemon, its socket and config,
containers with every runtime, lxcfs inside a container, a pull from the lab registry over TLS, and
containers that survived a pouchd restart (recorded by side_effect.yml)."""

from __future__ import annotations

import json
import shlex

import pytest

REGISTRY = "10.0.2.101:5443"  # the lab registry over TLS, trusted through the lab CA
IMAGE = f"{REGISTRY}/library/busybox:latest"
SOCKET = "/var/run/pouchd.sock"
RESTART_RECORD = "/root/pouchd-restart-check.json"

API_GET = (
    "import http.client,socket,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
    "c=http.client.HTTPConnection('d'); c.sock=s; c.request('GET', sys.argv[2])\n"
    "r=c.getresponse(); sys.stdout.write(r.read().decode()); sys.exit(0 if r.status==200 else 1)\n"
)


def api_get(host, path: str):
    return json.loads(host.check_output(f"python3 -c {shlex.quote(API_GET)} {SOCKET} {shlex.quote(path)}"))


def test_pouch_service_is_active_and_enabled(host) -> None:
    service = host.service("pouch")
    assert service.is_running
    assert service.is_enabled


def test_unit_passes_no_flags_and_never_hups(host) -> None:
    unit = host.file("/etc/systemd/system/pouch.service").content_string
    lines = [line.strip() for line in unit.splitlines()]
    assert "ExecStart=/usr/local/bin/pouchd" in lines
    assert not any(line.startswith("ExecReload") for line in lines)
    for wanted in ("Type=notify", "KillMode=process", "Delegate=yes", "Requires=lxcfs.service"):
        assert wanted in lines, wanted
    exec_start = host.check_output("systemctl show -p ExecStart --value pouch")
    assert "argv[]=/usr/local/bin/pouchd ;" in exec_start, exec_start


def test_socket_is_root_pouch_0660(host) -> None:
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert (sock.user, sock.group, sock.mode) == ("root", "pouch", 0o660)


def test_config_holds_every_setting(host) -> None:
    config_file = host.file("/etc/pouch/config.json")
    assert (config_file.user, config_file.mode) == ("root", 0o644)
    config = json.loads(config_file.content_string)
    bridge = config["network-config"]["bridge-config"]
    assert bridge["iptables"] is True and bridge["ipforward"] is True
    assert config["enable-lxcfs"] is True and config["lxcfs-home"] == "/var/lib/lxc/lxcfs"
    # No plain-HTTP registry: the lab's is reached over TLS (the settings the release can honour).
    assert config.get("insecure-registries", []) == []
    assert not any("://" in entry for entry in config.get("registry-mirrors", []))


def test_the_lab_ca_is_in_the_trust_store(host) -> None:
    installed = host.file("/usr/local/share/ca-certificates/pouch-ansible-pouch-lab.crt")
    assert (installed.user, installed.mode) == ("root", 0o644)
    pem = installed.content_string.strip()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_info_reports_snapshotter_runtimes_and_registry(host) -> None:
    info = api_get(host, "/info")
    registered = set(json.loads(host.file("/etc/pouch/config.json").content_string)["add-runtime"])
    assert info["Driver"] == "overlayfs"
    assert info["DefaultRuntime"] == "runc"
    assert "runc" in registered and registered <= set(info["Runtimes"])
    assert info["DefaultRegistry"] == REGISTRY
    assert info["LiveRestoreEnabled"] is True
    assert info.get("LxcfsEnabled") is True  # omitted by pouchd when false
    cli = host.check_output("pouch info")
    assert "Storage Driver: overlayfs" in cli and "LxcfsEnabled: true" in cli


def test_pull_from_the_lab_registry(host) -> None:
    host.check_output(f"pouch pull {REGISTRY}/library/busybox:v2")
    assert f"{REGISTRY}/library/busybox:v2" in host.check_output("pouch images")


def test_a_container_runs_with_each_runtime(host) -> None:
    # The pouch 1.3 CLI sends MemorySwappiness=0 unless told otherwise, and pouchd validates it only
    # against cgroup v1 knobs, so on cgroup v2 it reaches the OCI spec: runc ignores it, crun refuses
    # ("cannot set memory swappiness with cgroupv2"). -1 means unset. API clients that omit the field
    # (pouch_container) are not affected; test_crun_through_the_api_without_swappiness checks that.
    for runtime in sorted(api_get(host, "/info")["Runtimes"]):
        run = f"pouch run --rm --runtime {runtime} --memory-swappiness=-1"
        out = host.check_output(f"{run} {IMAGE} echo ran-with-{runtime}")
        assert out.strip().endswith(f"ran-with-{runtime}"), (runtime, out)


def test_crun_through_the_api_without_swappiness(host) -> None:
    # The pouchd scenario registers crun and starts crun-check with pouch_container; the default
    # scenario (site.yml with the lab's settings) leaves crun off.
    registered = json.loads(host.file("/etc/pouch/config.json").content_string)["add-runtime"]
    if "crun" not in registered:
        pytest.skip("crun is not registered on this node (runtimes_crun_enabled is off)")
    inspect = api_get(host, "/containers/crun-check/json")
    assert inspect["State"]["Running"] is True, inspect["State"]
    assert inspect["HostConfig"]["Runtime"] == "crun"


def test_lxcfs_shows_the_memory_limit_inside_a_container(host) -> None:
    out = host.check_output(f"pouch run --rm -m 64m --enableLxcfs {IMAGE} grep MemTotal /proc/meminfo")
    assert out.split()[1:3] == ["65536", "kB"], out


def test_memory_limit_reaches_the_container_cgroup(host) -> None:
    name = "molecule-memlimit"
    host.run(f"pouch rm -f {name}")
    created = host.check_output(f"pouch run -d -m 64m --name {name} {IMAGE} sleep 600")
    try:
        pid = host.check_output(f"pouch inspect -f '{{{{.State.Pid}}}}' {name}").strip()
        cgroup = host.check_output(f"cat /proc/{pid}/cgroup")
        # "ID:controllers:/path" per line. cgroup v1 (the release's nodes boot with it): the memory
        # controller's line and memory.limit_in_bytes; cgroup v2 (master on Debian 12's default):
        # the one line "0::/path" and memory.max.
        entries = [line.split(":", 2) for line in cgroup.splitlines()]
        v1_path = next((path for _, controllers, path in entries if "memory" in controllers.split(",")), None)
        if v1_path is not None:
            limit_file = f"/sys/fs/cgroup/memory{v1_path}/memory.limit_in_bytes"
        else:
            limit_file = f"/sys/fs/cgroup{next(path for hid, _, path in entries if hid == '0')}/memory.max"
        limit = host.check_output(f"cat {limit_file}").strip()
        assert limit == str(64 * 1024 * 1024), (created, cgroup, limit_file, limit)
    finally:
        host.run(f"pouch rm -f {name}")


def test_containers_survived_the_pouchd_restart(host) -> None:
    record = json.loads(host.file(RESTART_RECORD).content_string)
    before, after = record["before"], record["after"]
    assert before["pouchd_pid"] != after["pouchd_pid"], "pouchd was not restarted by the config change"
    assert before["container"] == after["container"], "the container was restarted or replaced"
    state = api_get(host, f"/containers/{record['name']}/json")["State"]
    assert state["Status"] == "running"
    assert f"{state['Pid']} {state['StartedAt']}" == after["container"]
