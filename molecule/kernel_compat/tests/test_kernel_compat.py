"""kernel_compat on a lab VM, after converge, idempotence and the drift side effect."""

from __future__ import annotations

SYSCTL_FILE = "/etc/sysctl.d/60-pouch.conf"
MODULES_FILE = "/etc/modules-load.d/pouch.conf"


def drop_in_settings(host) -> dict[str, str]:
    settings = {}
    for line in host.file(SYSCTL_FILE).content_string.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def test_sysctl_drop_in(host) -> None:
    drop_in = host.file(SYSCTL_FILE)
    assert drop_in.is_file
    assert (drop_in.user, drop_in.group, drop_in.mode) == ("root", "root", 0o644)
    settings = drop_in_settings(host)
    assert settings["net.ipv4.ip_forward"] == "1"
    # Debian's kernel has br_netfilter as a module, so the bridge settings belong in the file.
    assert settings["net.bridge.bridge-nf-call-iptables"] == "1"
    assert settings["net.bridge.bridge-nf-call-ip6tables"] == "1"
    assert int(settings["fs.inotify.max_user_watches"]) >= 524288
    assert int(settings["fs.inotify.max_user_instances"]) >= 8192
    assert "fs.may_detach_mounts" not in settings  # RHEL 7 only


def test_live_values_match_the_drop_in(host) -> None:
    for name, value in drop_in_settings(host).items():
        assert host.sysctl(name) == int(value), name


def test_modules_load_file_and_loaded_modules(host) -> None:
    listed = [line for line in host.file(MODULES_FILE).content_string.splitlines() if line and line[0] != "#"]
    assert listed == ["overlay", "br_netfilter"]
    loaded = {line.split()[0] for line in host.file("/proc/modules").content_string.splitlines()}
    assert {"overlay", "br_netfilter"} <= loaded


def test_drop_ins_survive_systemd_sysctl(host) -> None:
    """The boot path: systemd-sysctl reapplies the drop-in without errors."""
    result = host.run("/usr/lib/systemd/systemd-sysctl %s", SYSCTL_FILE)
    assert result.rc == 0, result.stderr
    assert host.sysctl("net.ipv4.ip_forward") == 1
