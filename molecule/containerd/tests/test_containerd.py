"""roles/containerd on a lab VM: pinned binary, no standalone containerd, binary usable by pouchd."""

from __future__ import annotations

import json
import shlex

import pytest

# pouchd starts containerd itself with its own config, root, state and sockets; do the same, briefly.
PRIVATE_CONTAINERD = """
set -e
d=$(mktemp -d)
printf '%s\\n' 'version = 2' "root = \\"$d/root\\"" "state = \\"$d/state\\"" \\
  '[grpc]' "address = \\"$d/c.sock\\"" '[debug]' "address = \\"$d/d.sock\\"" > "$d/config.toml"
/usr/bin/containerd --config "$d/config.toml" > "$d/log" 2>&1 &
pid=$!
for i in $(seq 60); do ctr --address "$d/c.sock" version > "$d/version" 2>/dev/null && break; sleep 0.5; done
kill "$pid"; wait "$pid" || true
cat "$d/version"; rm -rf "$d"
"""


@pytest.fixture(scope="module")
def exported(host) -> dict:
    return json.loads(host.file("/root/molecule-containerd.json").content_string)


def test_exported_path_is_the_debian_binary(host, exported) -> None:
    assert exported["pouch_containerd_path"] == "/usr/bin/containerd"
    assert host.file("/usr/bin/containerd").mode & 0o111


def test_installed_version_is_the_pinned_one(host, exported) -> None:
    assert host.package("containerd").version == exported["containerd_version"]
    reported = host.check_output("/usr/bin/containerd --version").split()
    assert exported["containerd_version"] in reported[2:4]


def test_distro_service_masked_and_inactive(host) -> None:
    # Debian's postinst runs `deb-systemd-helper unmask`; the admin's mask must survive it.
    assert host.run("systemctl is-enabled containerd.service").stdout.strip() == "masked"
    assert host.run("systemctl is-active containerd.service").stdout.strip() == "inactive"
    assert host.file("/etc/systemd/system/containerd.service").linked_to == "/dev/null"
    assert not host.process.filter(comm="containerd")


def test_binary_serves_on_a_private_socket_like_pouchd_runs_it(host) -> None:
    out = host.check_output("bash -c " + shlex.quote(PRIVATE_CONTAINERD))
    assert "Server:" in out, out
