"""The generated inventory is valid YAML with the variables the roles and playbooks rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.inventory import instance_records, inventory_yaml, write_inventory
from lab.paths import LabPaths
from lab.vms import VmSpec


def vms() -> list[VmSpec]:
    return [VmSpec("default", f"node{i + 1}", i, 40000 + i, 50000 + i, f"{i:032x}") for i in range(3)]


def test_inventory_content(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "state")
    data = yaml.safe_load(inventory_yaml(paths, vms()))
    group = data["all"]["children"]["pouch_nodes"]
    assert list(group["hosts"]) == ["node1", "node2", "node3"]
    node2 = group["hosts"]["node2"]
    assert node2 == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 40001,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(paths.ssh_key),
        "lab_private_ip": "10.77.0.12",
    }
    assert group["vars"] == {"lab_apt_repo_url": "http://10.0.2.100/", "lab_registry": "10.0.2.101:5000"}


def test_inventory_file_and_instance_records(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "state")
    target = write_inventory(paths, vms(), tmp_path / "inv" / "hosts.yml")
    assert target.read_text().startswith("---\n")
    records = instance_records(paths, vms()[:1])
    assert records == [
        {
            "instance": "node1",
            "address": "127.0.0.1",
            "user": "root",
            "port": 40000,
            "identity_file": str(paths.ssh_key),
            "lab_private_ip": "10.77.0.11",
        }
    ]


def test_private_addresses_and_macs_are_distinct() -> None:
    specs = vms()
    assert len({vm.private_ip for vm in specs}) == len({vm.private_mac for vm in specs}) == 3
