"""audit.yml on a freshly provisioned lab node: every check passes, and the report matches the node."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPORT_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"
CHECK_IDS = ["tcp-tls", "socket", "config-file", "tls-files", "log-rotation", "insecure-registries"]


def audit() -> dict:
    return json.loads((REPORT_DIR / "audit.json").read_text())["audit1"]


def test_every_check_passes() -> None:
    node = audit()
    assert node["status"] == "ok"
    assert [check["id"] for check in node["checks"]] == CHECK_IDS
    assert {c["id"]: c["detail"] for c in node["checks"] if not c["passed"]} == {}
    report = (REPORT_DIR / "audit.md").read_text()
    assert "1 node: 1 pass every check, 0 with findings (0 failed checks), 0 unreachable" in report
    assert "| audit1 | all pass | " + " | ".join(["pass"] * len(CHECK_IDS)) + " |" in report
    assert (REPORT_DIR / "audit.html").stat().st_size > 1000


def test_report_matches_the_node(host) -> None:
    observed = audit()["observations"]
    socket = host.file("/var/run/pouchd.sock")
    assert socket.is_socket
    assert (socket.user, socket.group, socket.mode) == ("root", "pouch", 0o660)
    assert observed["sockets"][0] == {
        "path": "/var/run/pouchd.sock",
        "exists": True,
        "type": "socket",
        "mode": "0660",
        "owner": "root",
        "group": "pouch",
    }
    config = host.file("/etc/pouch/config.json")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o644)
    assert json.loads(config.content_string) == observed["config"]
    log_config = observed["config"]["default-log-config"]
    assert log_config == {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}}
    assert observed["config"]["insecure-registries"] == ["10.0.2.101:5000"]


def test_pouchd_is_running(host) -> None:
    assert host.service("pouch").is_running
