"""How roles/dragonfly wires pouchd to the local dfdaemon, by dragonfly_pouchd_wiring and the pouchd
build (the capabilities site.yml's first play learns; passed here as the role's
__dragonfly_pouchd_build, as recorded from the two builds): the settings exported for roles/pouchd,
and the preflight's refusals. On this machine, no VM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]
RELEASE = {"version": "1.3.0", "build": "37051654", "registry_mirrors": False, "image_proxy": True}
MASTER = {"version": "1.3.0", "build": "bc5839e3", "registry_mirrors": True, "image_proxy": True}
DFDAEMON = "127.0.0.1:65001"

PLAYBOOK = """
- name: Wire pouchd to dfdaemon
  hosts: node1
  connection: local
  gather_facts: false
  tasks:
    - name: Check the inputs
      ansible.builtin.include_role:
        name: dragonfly
        tasks_from: preflight
    - name: Export the pouchd settings
      ansible.builtin.include_role:
        name: dragonfly
        tasks_from: pouchd
    - name: Save them
      ansible.builtin.copy:
        content: "{{ {'mirrors': pouchd_registry_mirrors, 'insecure': pouchd_insecure_registries,
                     'proxy': pouchd_image_proxy} | to_json }}"
        dest: "{{ wiring_out }}"
        mode: "0644"
"""


def wire(tmp_path: Path, build: dict, wiring: str) -> tuple[dict | None, str]:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {
        "all": {
            "hosts": {"node1": {"test_ip": "127.0.0.1"}},
            "children": {
                "pouch_nodes": {"hosts": {"node1": {}}},
                "dragonfly_supernodes": {"hosts": {"node1": {}}},
            },
            "vars": {"pouchd_default_registry": "10.0.2.101:5444", "pouchd_insecure_registries": []},
        }
    }
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    out = tmp_path / "wiring.json"
    extra = {
        "ansible_python_interpreter": sys.executable,
        "dragonfly_enabled": True,
        "dragonfly_address_var": "test_ip",
        "dragonfly_archive_src": "/nonexistent/dragonfly.tar.gz",
        "dragonfly_archive_sha256": "0" * 64,
        "dragonfly_pouchd_wiring": wiring,
        "__dragonfly_pouchd_build": build,
        "wiring_out": str(out),
    }
    argv = [ansible_command("ansible-playbook"), "-i", str(tmp_path / "inventory.json")]
    argv += [str(tmp_path / "play.yml"), "-e", json.dumps(extra)]
    result = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    text = " ".join((result.stdout + result.stderr).split())
    return (json.loads(out.read_text()) if result.returncode == 0 else None), text


@pytest.mark.parametrize(
    ("build", "wiring", "expected"),
    [
        (RELEASE, "auto", {"mirrors": [], "insecure": [], "proxy": f"http://{DFDAEMON}"}),
        (MASTER, "auto", {"mirrors": [DFDAEMON], "insecure": [DFDAEMON], "proxy": ""}),
        (MASTER, "image_proxy", {"mirrors": [], "insecure": [], "proxy": f"http://{DFDAEMON}"}),
        (MASTER, "both", {"mirrors": [DFDAEMON], "insecure": [DFDAEMON], "proxy": f"http://{DFDAEMON}"}),
    ],
    ids=["release-auto", "master-auto", "master-image_proxy", "master-both"],
)
def test_the_wiring_follows_the_build(tmp_path: Path, build: dict, wiring: str, expected: dict) -> None:
    settings, text = wire(tmp_path, build, wiring)
    assert settings == expected, text[-3000:]


@pytest.mark.parametrize("wiring", ["mirror", "both"])
def test_mirror_wiring_on_the_release_is_refused_naming_the_build_and_the_way_out(
    tmp_path: Path, wiring: str
) -> None:
    settings, text = wire(tmp_path, RELEASE, wiring)
    assert settings is None
    assert f"dragonfly_pouchd_wiring {wiring} needs pouchd's registry-mirrors and insecure-registries" in text
    assert "pouchd 1.3.0 (build 37051654) does not have" in text
    assert "Use dragonfly_pouchd_wiring: image_proxy" in text


def test_auto_without_a_known_build_is_refused(tmp_path: Path) -> None:
    settings, text = wire(tmp_path, {}, "auto")
    assert settings is None
    assert "auto picks by the pouchd build, which is not known yet on node1" in text


def test_an_unknown_wiring_is_refused(tmp_path: Path) -> None:
    settings, text = wire(tmp_path, MASTER, "proxy")
    assert settings is None
    assert "dragonfly_pouchd_wiring must be auto, mirror, image_proxy or both (now 'proxy')" in text
