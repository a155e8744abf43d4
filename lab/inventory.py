"""The Ansible inventory of the default lab group (``inventories/lab/hosts.yml``) and molecule's view."""

from __future__ import annotations

import json
from pathlib import Path

from lab.paths import REPO_ROOT, LabPaths
from lab.vms import REGISTRY_GUEST_ADDRESS, REPO_GUEST_ADDRESS, VmSpec

INVENTORY_FILE = REPO_ROOT / "inventories" / "lab" / "hosts.yml"
INVENTORY_GROUP = "pouch_nodes"
APT_REPO_URL = f"http://{REPO_GUEST_ADDRESS}/"


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def inventory_yaml(paths: LabPaths, vms: list[VmSpec]) -> str:
    lines = [
        "---",
        "# Written by `python -m lab up`; do not edit (regenerated on every boot of the lab).",
        "all:",
        "  children:",
        f"    {INVENTORY_GROUP}:",
        "      hosts:",
    ]
    for vm in vms:
        lines += [
            f"        {vm.name}:",
            "          ansible_host: 127.0.0.1",
            f"          ansible_port: {vm.ssh_port}",
            "          ansible_user: root",
            f"          ansible_ssh_private_key_file: {_quote(str(paths.ssh_key))}",
            f"          lab_private_ip: {_quote(vm.private_ip)}",
        ]
    lines += [
        "      vars:",
        f"        lab_apt_repo_url: {_quote(APT_REPO_URL)}",
        f"        lab_registry: {_quote(REGISTRY_GUEST_ADDRESS)}",
    ]
    return "\n".join(lines) + "\n"


def write_inventory(paths: LabPaths, vms: list[VmSpec], path: Path = INVENTORY_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(inventory_yaml(paths, vms))
    return path


def instance_records(paths: LabPaths, vms: list[VmSpec]) -> list[dict[str, str | int]]:
    """What molecule's instance config needs, plus the lab's per-host facts."""
    return [
        {
            "instance": vm.name,
            "address": "127.0.0.1",
            "user": "root",
            "port": vm.ssh_port,
            "identity_file": str(paths.ssh_key),
            "lab_private_ip": vm.private_ip,
        }
        for vm in vms
    ]
