"""Hardening audit checks (module_utils/pouch_audit.py) on recorded observations, pass and fail."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import pwd
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "audit"
LAB_SETTINGS = {"allowed_insecure_registries": ["10.0.2.101:5000"]}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pouch_audit", ROOT / "module_utils" / "pouch_audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pa = _load()


def observations(name: str = "lab_provisioned.json") -> dict[str, Any]:
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def results(obs: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {check["id"]: check for check in pa.evaluate(obs, LAB_SETTINGS if settings is None else settings)}


def failed(obs: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, str]:
    return {cid: check["detail"] for cid, check in results(obs, settings).items() if not check["passed"]}


# --- the provisioned nodes pass everything --------------------------------------------------------


@pytest.mark.parametrize("fixture", ["lab_provisioned.json", "tcp_tls_dragonfly.json"])
def test_provisioned_node_passes_every_check(fixture: str) -> None:
    checks = pa.evaluate(observations(fixture), LAB_SETTINGS)
    assert [check["id"] for check in checks] == [check[0] for check in pa.CHECKS]
    assert {check["id"]: check["detail"] for check in checks if not check["passed"]} == {}
    assert all(check["title"] and check["reference"].startswith("CIS Docker") for check in checks)


def test_pass_details_say_what_was_found() -> None:
    checks = results(observations("tcp_tls_dragonfly.json"))
    assert checks["tcp-tls"]["detail"] == "TCP listener tcp://0.0.0.0:4243 with TLS and client verification"
    assert checks["socket"]["detail"] == "/var/run/pouchd.sock 0660 root:pouch"
    assert checks["log-rotation"]["detail"] == "json-file max-size 100m, max-file 3"
    assert checks["insecure-registries"]["detail"] == "only allowed ones: 127.0.0.1:65001"


# --- tcp-tls --------------------------------------------------------------------------------------


def test_tcp_without_tls_fails() -> None:
    obs = observations()
    obs["config"]["listen"].append("tcp://0.0.0.0:4243")
    detail = failed(obs)["tcp-tls"]
    assert "tcp://0.0.0.0:4243" in detail
    assert "TLS.tlscacert/tlscert/tlskey not set" in detail
    assert "tlsverify is not true" in detail


def test_tcp_with_tls_but_no_client_verification_fails() -> None:
    obs = observations("tcp_tls_dragonfly.json")
    obs["config"]["TLS"]["tlsverify"] = False
    assert list(failed(obs)) == ["tcp-tls"]
    assert "no client certificate verification" in failed(obs)["tcp-tls"]


def test_tcp_without_ca_fails() -> None:
    obs = observations("tcp_tls_dragonfly.json")
    del obs["config"]["TLS"]["tlscacert"]
    assert "TLS.tlscacert not set" in failed(obs)["tcp-tls"]


# --- socket ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"mode": "0666"}, "mode 0666, wanted 0660 or stricter"),
        ({"mode": "2660"}, "mode 2660, wanted 0660 or stricter"),
        ({"group": "root"}, "group root, not pouch"),
        ({"owner": "pouchuser"}, "owned by pouchuser, not root"),
        ({"type": "file"}, "is a file, not a socket"),
        ({"exists": False, "error": "No such file or directory"}, "missing (No such file or directory)"),
    ],
)
def test_socket_problems_fail(change: dict[str, Any], expected: str) -> None:
    obs = observations()
    obs["sockets"][0].update(change)
    assert list(failed(obs)) == ["socket"]
    assert expected in failed(obs)["socket"]


def test_stricter_socket_mode_passes() -> None:
    obs = observations()
    obs["sockets"][0]["mode"] = "0600"
    assert "socket" not in failed(obs)


def test_socket_group_is_a_setting() -> None:
    obs = observations()
    assert "group pouch, not docker" in failed(obs, {**LAB_SETTINGS, "socket_group": "docker"})["socket"]


# --- config-file ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"mode": "0664"}, "mode 0664, wanted 0644 or stricter"),
        ({"mode": "0646"}, "mode 0646"),
        ({"owner": "admin"}, "owned by admin, not root"),
        ({"group": "pouch"}, "group pouch, not root"),
    ],
)
def test_config_file_problems_fail(change: dict[str, Any], expected: str) -> None:
    obs = observations()
    obs["config_file"].update(change)
    assert list(failed(obs)) == ["config-file"]
    assert expected in failed(obs)["config-file"]


def test_config_0600_passes() -> None:
    obs = observations()
    obs["config_file"]["mode"] = "0600"
    assert failed(obs) == {}


def test_missing_config_fails_every_check_that_reads_it() -> None:
    obs = observations()
    obs["config_file"] = {
        "path": "/etc/pouch/config.json",
        "exists": False,
        "error": "No such file or directory",
    }
    obs["config"] = None
    assert set(failed(obs)) == {"tcp-tls", "config-file", "tls-files", "log-rotation", "insecure-registries"}
    assert "cannot be verified" in failed(obs)["tcp-tls"]


def test_unparsable_config_fails() -> None:
    obs = observations()
    obs["config"] = None
    obs["config_error"] = "Expecting value: line 1 column 1 (char 0)"
    assert "not readable JSON (Expecting value" in failed(obs)["log-rotation"]


# --- tls-files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "change", "expected"),
    [
        ("tlskey", {"mode": "0640"}, "key.pem has mode 0640, wanted 0600 or stricter"),
        ("tlskey", {"mode": "0644"}, "key.pem has mode 0644"),
        ("tlskey", {"owner": "nobody"}, "key.pem is owned by nobody"),
        ("tlscert", {"mode": "0666"}, "cert.pem has mode 0666, wanted 0644 or stricter"),
        ("tlscacert", {"group": "pouch"}, "ca.pem has group pouch, not root"),
        ("tlskey", {"exists": False, "error": "No such file or directory"}, "key.pem is missing"),
    ],
)
def test_tls_file_problems_fail(key: str, change: dict[str, Any], expected: str) -> None:
    obs = observations("tcp_tls_dragonfly.json")
    obs["tls_files"][key].update(change)
    assert list(failed(obs)) == ["tls-files"]
    assert expected in failed(obs)["tls-files"]


def test_key_0400_passes() -> None:
    obs = observations("tcp_tls_dragonfly.json")
    obs["tls_files"]["tlskey"]["mode"] = "0400"
    assert failed(obs) == {}


# --- log-rotation ---------------------------------------------------------------------------------


def test_json_file_without_max_size_fails() -> None:
    obs = observations()
    obs["config"]["default-log-config"] = {"Type": "json-file", "Config": {}}
    assert "max-size is not set" in failed(obs)["log-rotation"]


def test_no_log_config_fails() -> None:
    # pouchd's default is json-file without limits.
    obs = observations()
    del obs["config"]["default-log-config"]
    assert list(failed(obs)) == ["log-rotation"]


def test_bad_max_file_fails() -> None:
    obs = observations()
    obs["config"]["default-log-config"]["Config"]["max-file"] = "0"
    assert "max-file '0' is not a positive number" in failed(obs)["log-rotation"]


@pytest.mark.parametrize(("driver", "passes"), [("syslog", True), ("none", True), ("fluentd", False)])
def test_other_log_drivers(driver: str, passes: bool) -> None:
    obs = observations()
    obs["config"]["default-log-config"] = {"Type": driver}
    assert ("log-rotation" not in failed(obs)) is passes


# --- insecure-registries --------------------------------------------------------------------------


def test_registry_not_allowed_fails() -> None:
    obs = observations()
    # Without the lab's allowance its registry is a finding; the P2P mirror stays allowed.
    obs["config"]["insecure-registries"].append("127.0.0.1:65001")
    detail = failed(obs, {})["insecure-registries"]
    assert detail == "insecure (plain HTTP) registries not allowed: 10.0.2.101:5000"


def test_other_registry_fails_even_with_the_lab_allowance() -> None:
    obs = observations()
    obs["config"]["insecure-registries"].append("registry.example.com:5000")
    assert failed(obs)["insecure-registries"].endswith("registry.example.com:5000")


def test_p2p_mirror_port_is_a_setting() -> None:
    obs = observations("tcp_tls_dragonfly.json")
    assert "127.0.0.1:65001" in failed(obs, {"p2p_mirrors": ["127.0.0.1:65002"]})["insecure-registries"]


# --- collect on real files ------------------------------------------------------------------------


def test_collect_reads_modes_owners_and_config(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    sock_path = tmp_path / "pouchd.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    os.chmod(sock_path, 0o660)
    key = tmp_path / "key.pem"
    key.write_text("secret")
    os.chmod(key, 0o640)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "listen": [f"unix://{sock_path}", "tcp://127.0.0.1:4243"],
                "TLS": {"tlskey": str(key), "tlscert": str(tmp_path / "absent.pem"), "tlsverify": True},
            }
        )
    )
    os.chmod(config, 0o644)
    try:
        obs = pa.collect(str(config))
    finally:
        server.close()
    conf = obs["config_file"]
    assert (conf["exists"], conf["type"], conf["mode"], conf["owner"]) == (True, "file", "0644", me)
    assert obs["config"]["TLS"]["tlsverify"] is True
    assert [s["path"] for s in obs["sockets"]] == [str(sock_path)]
    assert (obs["sockets"][0]["type"], obs["sockets"][0]["mode"]) == ("socket", "0660")
    assert obs["tls_files"]["tlskey"]["mode"] == "0640"
    assert obs["tls_files"]["tlscert"]["exists"] is False
    checks = failed(obs)
    assert "key.pem has mode 0640" in checks["tls-files"] and "absent.pem is missing" in checks["tls-files"]
    assert "TLS.tlscacert not set" in checks["tcp-tls"]


def test_collect_without_config_uses_the_default_socket(tmp_path: Path) -> None:
    obs = pa.collect(str(tmp_path / "missing.json"))
    assert obs["config"] is None and obs["config_file"]["exists"] is False
    assert [s["path"] for s in obs["sockets"]] == ["/var/run/pouchd.sock"]


def test_collect_reports_invalid_json(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("[1, 2]")
    obs = pa.collect(str(config))
    assert obs["config"] is None and obs["config_error"] == "not a JSON object"
