"""Smoke checks on each lab VM, after converge: the real packages, daemon, image and network."""

from __future__ import annotations

IMAGE = "10.0.2.101:5000/library/busybox:latest"


def test_packages_come_from_the_lab_repository(host) -> None:
    for name in ("containerd", "runc"):
        assert host.package(name).is_installed
    policy = host.check_output("apt-cache policy containerd")
    assert "http://10.0.2.100 ./" in policy


def test_guest_apt_uses_only_the_lab_repository(host) -> None:
    sources = host.check_output(
        "cat /etc/apt/sources.list; cat /etc/apt/sources.list.d/* 2>/dev/null || true"
    )
    uris = [word for word in sources.split() if word.startswith("http")]
    assert uris == ["http://10.0.2.100/"]


def test_containerd_runs(host) -> None:
    assert host.service("containerd").is_running


def test_image_pulled_from_the_lab_registry_runs(host) -> None:
    assert IMAGE in host.check_output("ctr image ls -q").splitlines()
    out = host.check_output(f"ctr run --rm {IMAGE} verify-run busybox echo verified")
    assert out.strip() == "verified"


def test_private_network_reaches_every_node(host) -> None:
    for address in host.ansible.get_variables()["lab_private_ips"]:
        assert host.run(f"ping -c 1 -W 5 {address}").rc == 0, f"cannot ping {address}"


def test_unique_machine_id_and_own_private_address(host) -> None:
    variables = host.ansible.get_variables()
    assert host.file("/etc/machine-id").content_string.strip() != ""
    assert variables["lab_private_ip"] in host.check_output("ip -4 -o addr show")
