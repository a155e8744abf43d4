"""playbooks/preflight.yml and playbooks/audit.yml through ansible-playbook on this machine.

Every run is --check: the nodes are this machine over the local connection, fed recorded kernel fact
sets (kernel_compat_recorded_facts: no probing at all) or a config.json under tmp_path, plus one
inventory host nothing listens for (127.0.0.1, port 1). The report files on the "controller" are
written anyway (the report task is check_mode: false) and are what the tests read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PYTHON = Path(sys.executable).absolute()
GHOST = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"}


def local(**host_vars: Any) -> dict[str, Any]:
    return {"ansible_connection": "local", "ansible_python_interpreter": str(PYTHON), **host_vars}


def kernel_facts(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "kernel_facts" / name).read_text())


def run_playbook(
    tmp_path: Path, playbook: str, hosts: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"pouch_nodes": {"hosts": hosts}}}}))
    env = ansible_env(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    argv = [
        ansible_command("ansible-playbook"),
        "-i",
        str(inventory),
        f"playbooks/{playbook}",
        "--check",
        *extra,
    ]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def md_rows(path: Path) -> dict[str, list[str]]:
    rows = {}
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| Node "):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_preflight_mixed_fleet_in_check_mode(tmp_path: Path) -> None:
    hosts = {
        "debian12": local(kernel_compat_recorded_facts=kernel_facts("debian12_6.1.0-50-amd64.json")),
        "centos6": local(kernel_compat_recorded_facts=kernel_facts("centos6_2.6.32-754.el6.json")),
        "ghost": GHOST,
    }
    reports = tmp_path / "reports"
    result = run_playbook(tmp_path, "preflight.yml", hosts, "-e", f"preflight_report_dir={reports}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 nodes: 1 ready, 1 blocked, 1 unreachable, 0 probe failed." in output
    rows = md_rows(reports / "preflight.md")
    assert list(rows) == ["debian12", "centos6", "ghost"]
    assert rows["debian12"][1:5] == [
        "ready",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-50-amd64<br>cgroup v2",
        "overlayfs",
    ]
    assert rows["centos6"][1] == "**blocked**" and "below 3.10" in rows["centos6"][7]
    assert rows["ghost"][1].startswith("**unreachable**<br>Failed to connect")
    nodes = json.loads((reports / "preflight.json").read_text())
    assert nodes["ghost"]["status"] == "unreachable" and nodes["debian12"]["status"] == "ok"
    assert (reports / "preflight.html").read_text().count("<tr>") == 4
    # Nothing on a node was changed: the one change of the run is the report, on the controller.
    changed = [line for line in output.splitlines() if line.startswith("changed: ")]
    assert changed == ["changed: [debian12 -> localhost]"], output


def test_preflight_can_fail_on_problems(tmp_path: Path) -> None:
    hosts = {"centos6": local(kernel_compat_recorded_facts=kernel_facts("centos6_2.6.32-754.el6.json"))}
    reports = tmp_path / "reports"
    result = run_playbook(
        tmp_path,
        "preflight.yml",
        hosts,
        "-e",
        f"preflight_report_dir={reports}",
        "-e",
        "preflight_fail_on_problems=true",
    )
    assert result.returncode != 0
    assert "1 node: 0 ready, 1 blocked" in result.stdout
    assert (reports / "preflight.md").is_file()  # written before the run fails


def write_node(tmp_path: Path, *, key_mode: int = 0o600) -> Path:
    """A config.json like roles/pouchd writes, with a TLS key, owned by the user running the tests."""
    tls = tmp_path / "tls"
    tls.mkdir()
    for name, mode in (("ca.pem", 0o644), ("cert.pem", 0o644), ("key.pem", key_mode)):
        (tls / name).write_text("x")
        (tls / name).chmod(mode)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "listen": ["unix:///nonexistent/pouchd.sock", "tcp://127.0.0.1:4243"],
                "TLS": {
                    k: str(tls / f)
                    for k, f in (("tlscacert", "ca.pem"), ("tlscert", "cert.pem"), ("tlskey", "key.pem"))
                }
                | {"tlsverify": True},
                "insecure-registries": ["127.0.0.1:65001", "10.0.2.101:5000"],
                "default-log-config": {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}},
            }
        )
    )
    config.chmod(0o644)
    return config


@pytest.mark.skipif(os.getuid() != 0, reason="the files must be root-owned to pass; run as root")
def test_audit_reports_per_check_and_fails_on_findings(tmp_path: Path) -> None:
    config = write_node(tmp_path, key_mode=0o640)
    hosts = {
        "node1": local(audit_config_file=str(config), audit_allowed_insecure_registries=["10.0.2.101:5000"]),
        "ghost": GHOST,
    }
    reports = tmp_path / "reports"
    result = run_playbook(tmp_path, "audit.yml", hosts, "-e", f"audit_report_dir={reports}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "2 nodes: 0 pass every check, 1 with findings (2 failed checks), 1 unreachable" in output
    rows = md_rows(reports / "audit.md")
    # columns: node, result, tcp-tls, socket, config-file, tls-files, log-rotation, insecure-registries
    assert rows["node1"][2] == "pass"
    assert rows["node1"][3].startswith("**FAIL**<br>/nonexistent/pouchd.sock is missing")
    assert rows["node1"][4:] == [
        "pass",
        "**FAIL**<br>" + f"{tmp_path}/tls/key.pem has mode 0640, wanted 0600 or stricter",
        "pass",
        "pass",
    ]
    assert rows["ghost"][1].startswith("**unreachable**")
    nodes = json.loads((reports / "audit.json").read_text())
    assert nodes["node1"]["observations"]["tls_files"]["tlskey"]["mode"] == "0640"


@pytest.mark.skipif(os.getuid() != 0, reason="the files must be root-owned to pass; run as root")
def test_audit_findings_need_not_fail_the_run(tmp_path: Path) -> None:
    config = write_node(tmp_path)
    hosts = {"node1": local(audit_config_file=str(config))}  # the lab registry is not allowed here
    reports = tmp_path / "reports"
    result = run_playbook(
        tmp_path,
        "audit.yml",
        hosts,
        "-e",
        f"audit_report_dir={reports}",
        "-e",
        "audit_fail_on_findings=false",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    row = md_rows(reports / "audit.md")["node1"]
    assert row[1] == "**2 failed**"
    assert row[-1] == "**FAIL**<br>insecure (plain HTTP) registries not allowed: 10.0.2.101:5000"
