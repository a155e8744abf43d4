"""roles/pouchd/files/pouchd_config_check.py: what it accepts and rejects (no pouchd needed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from pouch_builds import POUCH_BUILDS, POUCH_IDS, NoBuild, require

from lab.artifacts import PouchBuild

SCRIPT = Path(__file__).resolve().parents[2] / "roles/pouchd/files/pouchd_config_check.py"
spec = importlib.util.spec_from_file_location("pouchd_config_check", SCRIPT)
assert spec and spec.loader
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

GOOD = {
    "home-dir": "/var/lib/pouch",
    "listen": ["unix:///var/run/pouchd.sock"],
    "containerd-path": "/usr/bin/containerd",
    "snapshotter": "overlayfs",
    "default-runtime": "runc",
    "add-runtime": {
        "runc": {"path": "/usr/sbin/runc"},
        "crun": {"path": "crun", "type": "io.containerd.runc.v1"},
    },
    "enable-lxcfs": True,
    "lxcfs-home": "/var/lib/lxc/lxcfs",
    "registry-mirrors": ["mirror.example.com:5000/cache"],
    "insecure-registries": ["10.0.2.101:5000"],
    "network-config": {
        "bridge-config": {"bip": "192.168.5.1/24", "mtu": 1500, "iptables": True, "ipforward": True}
    },
    "default-log-config": {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}},
    "cgroup-driver": "cgroupfs",
    "oom-score-adjust": -500,
}


def errors_for(**changes: object) -> list[str]:
    cfg = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        cfg[key.replace("_", "-")] = value
    return check.validate(json.dumps(cfg))


def test_good_config_passes() -> None:
    assert check.validate(json.dumps(GOOD)) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not valid JSON"),
        ("{}", "non-empty JSON object"),
        ("[1]", "non-empty JSON object"),
        ('{"a":', "JSON"),
    ],
)
def test_unparsable_or_empty(text: str, fragment: str) -> None:
    assert any(fragment in e for e in check.validate(text))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"registry_mirrors": ["http://10.0.2.101:5000"]}, "has a scheme"),
        ({"insecure_registries": ["https://reg:5000"]}, "has a scheme"),
        ({"insecure_registries": ["reg:5000/path"]}, "is not host:port"),
        ({"listen": ["/var/run/pouchd.sock"]}, "must start with unix:// or tcp://"),
        ({"listen": ["tcp://0.0.0.0:4243"]}, "without TLS client verification"),
        ({"debug": "false"}, "must be a boolean"),
        ({"enable_lxcfs": 1}, "must be a boolean"),
        ({"bogus_key": True}, "unknown key"),
        ({"cgroup_driver": "cgroupv2"}, "cgroupfs or systemd"),
        ({"default_runtime": "kata"}, "is not one of add-runtime"),
        ({"add_runtime": {"runc": {"path": "/usr/sbin/runc", "type": "v2"}}}, "is not one of"),
        ({"label": ["novalue"]}, "key=value"),
        ({"home_dir": "var/lib/pouch"}, "absolute path"),
        ({"oom_score_adjust": -2000}, "between -1000 and 1000"),
        ({"network_config": {"bridge-config": {"bips": "10.0.0.1/24"}}}, "unknown key"),
        ({"network_config": {"bridge-config": {"bip": "192.168.5.1", "mtu": "1500"}}}, "address/prefix"),
        ({"default_log_config": {"Type": "journald"}}, "must be one of"),
        ({"default_log_config": {"Type": "json-file", "Config": {"max-size": "big"}}}, "not a size"),
    ],
)
def test_rejections(changes: dict[str, object], fragment: str) -> None:
    cfg = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if isinstance(value, dict):
            value = {k.replace("_", "-"): v for k, v in value.items()}
        cfg[key.replace("_", "-")] = value
    errors = check.validate(json.dumps(cfg))
    assert any(fragment in e for e in errors), errors


def test_tcp_with_verified_tls_passes() -> None:
    tls = {"tlscacert": "/etc/pouch/tls/ca.pem", "tlscert": "/c.pem", "tlskey": "/k.pem", "tlsverify": True}
    assert errors_for(listen=["unix:///var/run/pouchd.sock", "tcp://0.0.0.0:4243"], TLS=tls) == []
    assert any(
        "without TLS" in e for e in errors_for(listen=["tcp://0.0.0.0:4243"], TLS={**tls, "tlsverify": False})
    )


def test_insecure_tcp_only_when_allowed() -> None:
    cfg = json.dumps({**GOOD, "listen": ["tcp://127.0.0.1:4243"]})
    assert check.validate(cfg, allow_insecure_tcp=True) == []


def test_cli_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GOOD))
    bad.write_text(json.dumps({**GOOD, "registry-mirrors": ["http://x:5000"]}))
    assert check.main([str(good)]) == 0
    assert check.main([str(bad)]) == 1
    assert check.main([str(tmp_path / "missing.json")]) == 1


@pytest.mark.pouchd
@pytest.mark.parametrize("build", POUCH_BUILDS, ids=POUCH_IDS)
def test_pouchd_decodes_the_file(tmp_path: Path, build: PouchBuild | NoBuild) -> None:
    pouchd = str(require(build).bin_dir / "pouchd")
    good, wrong_type = tmp_path / "good.json", tmp_path / "wrong.json"
    good.write_text(json.dumps(GOOD))
    wrong_type.write_text(json.dumps({"debug": False, "network-config": {"bridge-config": {"mtu": "x"}}}))
    assert check.pouchd_decode(pouchd, str(good)) == []
    assert "pouchd rejects the file" in check.pouchd_decode(pouchd, str(wrong_type))[0]
