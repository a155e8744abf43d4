"""playbooks/example_app.yml deploys image, network, volume and two containers; a rerun changes nothing."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import docker
from harness import ROOT, Daemon, run_playbook, unique_name

PLAYBOOK = ROOT / "playbooks" / "example_app.yml"


def recap_changed(output: str) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert match, output[-3000:]
    return int(match.group(1))


def test_example_app_is_idempotent(daemon: Daemon, tmp_path: Path) -> None:
    extra_vars = {
        "example_app_hosts": "localhost",
        "example_app_pouch_host": daemon.host,
        "example_app_image": daemon.images["latest"],
        "example_app_root": str(tmp_path / "app"),
        "example_app_greeting": f"hello from {daemon.kind}",
        "example_app_network": unique_name("example-net"),
        "example_app_volume": unique_name("example-data"),
    }
    try:
        rc, first = run_playbook(PLAYBOOK, extra_vars)
        assert rc == 0, first[-3000:]
        # directory, page, network, volume, two containers (and the image when it was not there yet)
        assert recap_changed(first) in (6, 7), first[-3000:]
        rc, second = run_playbook(PLAYBOOK, extra_vars)
        assert rc == 0, second[-3000:]
        assert recap_changed(second) == 0, second[-3000:]

        web = daemon.inspect("example-web")
        client = daemon.inspect("example-client")
        assert web is not None and web["State"]["Running"]
        assert client is not None and client["State"]["Running"]
        assert extra_vars["example_app_network"] in web["NetworkSettings"]["Networks"]
        assert f"{extra_vars['example_app_volume']}:/data" in web["HostConfig"]["Binds"]
        assert daemon.sdk.inspect_network(extra_vars["example_app_network"])["Labels"] == {"app": "example"}
        assert daemon.sdk.inspect_volume(extra_vars["example_app_volume"])["Labels"] == {"app": "example"}
        deadline = time.monotonic() + 30
        logs = b""
        while time.monotonic() < deadline:
            logs = daemon.logs("example-client")
            if f"hello from {daemon.kind}".encode() in logs:
                break
            time.sleep(1)
        assert f"hello from {daemon.kind}".encode() in logs, logs[-500:]
    finally:
        daemon.remove("example-client", "example-web")
        with contextlib.suppress(docker.errors.APIError):
            daemon.sdk.remove_network(extra_vars["example_app_network"])
        with contextlib.suppress(docker.errors.APIError):
            daemon.sdk.remove_volume(extra_vars["example_app_volume"])
