"""roles/dragonfly templates rendered on this machine with the cluster scenario's values: what the
supernode, nginx, the upload server, dfdaemon and pouchd get (no VM needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env, local_role_play

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "dragonfly"
TEMPLATES = [p.name.removesuffix(".j2") for p in sorted((ROLE / "templates").glob("*.j2"))]

PLAYBOOK = """  tasks:
    - name: Render
      ansible.builtin.template:
        src: {role}/templates/{{{{ item }}}}.j2
        dest: {out}/{{{{ item }}}}
        mode: "0644"
      loop: {templates}
    - name: Compute the pouchd facts
      ansible.builtin.include_tasks: {role}/tasks/pouchd.yml
    - name: Save them
      ansible.builtin.copy:
        content: "{{{{ {{'mirrors': pouchd_registry_mirrors, 'insecure': pouchd_insecure_registries,
                      'proxy': pouchd_image_proxy}} | to_json }}}}"
        dest: {out}/pouchd.json
        mode: "0644"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dragonfly-render")
    out = tmp / "out"
    out.mkdir()
    inventory = {
        "all": {
            "children": {
                "pouch_nodes": {
                    "hosts": {"c1": {"lab_private_ip": "10.77.0.11"}, "c2": {"lab_private_ip": "10.77.0.12"}}
                },
                "dragonfly_supernodes": {"hosts": {"c1": {}}},
            },
        }
    }
    # Extra vars: the role's defaults are loaded here as vars_files, which outrank inventory vars.
    extra = {
        "dragonfly_enabled": True,
        "dragonfly_address_var": "lab_private_ip",
        "ansible_python_interpreter": sys.executable,
        # The master build (registry-mirrors): dragonfly_pouchd_wiring auto picks the mirror.
        "__dragonfly_pouchd_build": {"registry_mirrors": True, "image_proxy": True},
    }
    # pouchd's own settings from the inventory, as the lab sets them (set_fact must outrank them).
    inventory["all"]["vars"] = {
        "pouchd_default_registry": "10.0.2.101:5000",
        "pouchd_insecure_registries": ["10.0.2.101:5000"],
    }
    (tmp / "inventory.json").write_text(json.dumps(inventory))
    playbook = tmp / "render.yml"
    playbook.write_text(
        local_role_play("Render the dragonfly templates", "c2", ROLE)
        + PLAYBOOK.format(role=ROLE, out=out, templates=json.dumps(TEMPLATES))
    )
    result = subprocess.run(
        [
            ansible_command("ansible-playbook"),
            "-i",
            str(tmp / "inventory.json"),
            str(playbook),
            "-e",
            json.dumps(extra),
        ],
        cwd=ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_dfdaemon_config(rendered: Path) -> None:
    text = (rendered / "dfdaemon.yml").read_text()
    assert "remote: http://10.0.2.101:5000\n" in text  # follows pouchd's default registry, plain HTTP
    assert "node:\n  - 10.77.0.11:8002\n" in text  # from the supernode group, not typed by hand
    assert "\nsupernodes:" not in text  # ignored by dfdaemon 0.4.x
    assert "notbs: false\n" in text and "port: 65001\n" in text


def test_supernode_and_nginx_use_the_node_address(rendered: Path) -> None:
    # Rendered for c2: each node's own address comes from lab_private_ip.
    assert "advertiseIP: 10.77.0.12\n" in (rendered / "supernode.yml").read_text()
    nginx = (rendered / "nginx.conf").read_text()
    assert "listen 10.77.0.12:8001;" in nginx and "root /var/lib/dragonfly/supernode/repo;" in nginx
    unit = (rendered / "dragonfly-supernode.service").read_text()
    assert "--home-dir /var/lib/dragonfly/supernode" in unit and "User=dragonfly" in unit


def test_upload_server_and_dfdaemon_units(rendered: Path) -> None:
    upload = (rendered / "dragonfly-dfget-server.service").read_text()
    assert "dfget server --ip 10.77.0.12 --port 15001" in upload and "--alivetime 0s" in upload
    dfdaemon = (rendered / "dfdaemon.service").read_text()
    assert "ExecStartPre=+/usr/sbin/iptables -w -I INPUT -p tcp --dport 65001 ! -i lo -j REJECT" in dfdaemon
    assert "ExecStopPost=-+/usr/sbin/iptables -w -D INPUT -p tcp --dport 65001 ! -i lo -j REJECT" in dfdaemon
    assert "Before=pouch.service" in dfdaemon


def test_pouchd_settings(rendered: Path) -> None:
    facts = json.loads((rendered / "pouchd.json").read_text())
    assert facts == {
        "mirrors": ["127.0.0.1:65001"],
        "insecure": ["127.0.0.1:65001", "10.0.2.101:5000"],
        "proxy": "",
    }


def test_dfdaemon_runs_dfget_with_a_download_timeout(rendered: Path, tmp_path: Path) -> None:
    assert "dfpath: /usr/local/bin/dfget-for-dfdaemon\n" in (rendered / "dfdaemon.yml").read_text()
    wrapper = (rendered / "dfget-for-dfdaemon").read_text()
    # Run the wrapper against a dfget that prints its arguments: downloads get --timeout, and
    # `version` (dfdaemon's start check) and `server` pass through unchanged.
    (tmp_path / "dfget").write_text('#!/bin/sh\necho "$@"\n')
    (tmp_path / "dfget").chmod(0o755)
    script = tmp_path / "dfget-for-dfdaemon"
    script.write_text(wrapper.replace("/usr/local/bin/", f"{tmp_path}/"))

    def run(*args: str) -> str:
        return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, check=True).stdout

    assert run("--dfdaemon", "-u", "http://r/v2/x", "--header", "A:b c") == (
        "--dfdaemon -u http://r/v2/x --header A:b c --timeout 1800\n"
    )
    assert run("version") == "version\n"
    assert run("server", "--ip", "10.77.0.12") == "server --ip 10.77.0.12\n"
