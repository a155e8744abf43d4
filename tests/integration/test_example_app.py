"""playbooks/example_app.yml deploys its two containers, and a second run changes nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness import ROOT, Daemon, run_playbook

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
    }
    try:
        rc, first = run_playbook(PLAYBOOK, extra_vars)
        assert rc == 0, first[-3000:]
        assert recap_changed(first) == 4
        rc, second = run_playbook(PLAYBOOK, extra_vars)
        assert rc == 0, second[-3000:]
        assert recap_changed(second) == 0, second[-3000:]

        web = daemon.inspect("example-web")
        client = daemon.inspect("example-client")
        assert web is not None and web["State"]["Running"]
        assert client is not None and client["State"]["Running"]
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
