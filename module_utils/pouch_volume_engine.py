"""pouch_volume's engine: volumes with driver, options and labels, and a recreate policy.

pouchd keeps a volume's driver options in Status (with "size" normalized to bytes, and an empty "size"
added when none was given); dockerd keeps them in Options. Only the options and labels given are
compared. A volume that a container mounts is never removed or recreated: the task fails and names them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ansible.module_utils.pouch_client import container_name
from ansible.module_utils.pouch_common import ResourceInputError, ResourceManager, run_manager, string_map

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def argument_spec() -> dict[str, Any]:
    return {
        "name": {"type": "str", "required": True, "aliases": ["volume_name"]},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "driver": {"type": "str", "default": "local"},
        "driver_options": {"type": "dict", "default": {}},
        "labels": {"type": "dict", "default": {}},
        "recreate": {"type": "str", "default": "never", "choices": ["never", "always", "options-changed"]},
    }


VolumeInputError = ResourceInputError


def parse_size(text: str) -> int:
    """pouchd's size syntax: bytes or a number with k, m, g, t, p (binary multiples), e.g. 10g."""
    match = SIZE_RE.match(text)
    if not match:
        raise VolumeInputError(
            f"driver_options size {text!r} is not a size: use bytes or a number with k, m, g or t"
        )
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


class VolumeManager(ResourceManager):
    kind = "volume"

    def validate(self) -> dict[str, Any]:
        name = self.params["name"]
        if not name or not NAME_RE.match(name):
            raise VolumeInputError(
                f"volume name {name!r} is invalid: at least two of letters, digits, '_', '.' and '-', "
                "starting with a letter or digit"
            )
        if not self.params["driver"]:
            raise VolumeInputError("driver must not be empty")
        options = string_map("driver_options", self.params["driver_options"] or {})
        labels = string_map("labels", self.params["labels"] or {})
        if self.params["driver"] == "local" and self.client.is_pouch:
            if "size" in options:
                parse_size(options["size"])
            if "mount" in options and not os.path.isabs(options["mount"]):
                raise VolumeInputError(f"driver_options mount {options['mount']!r} must be an absolute path")
        return {"driver": self.params["driver"], "driver_options": options, "labels": labels}

    def current(self, volume: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
        if volume is None:
            return {}
        if self.client.is_pouch:
            options = {k: v for k, v in (volume.get("Status") or {}).items() if not (k == "size" and v == "")}
        else:
            options = volume.get("Options") or {}
        labels = volume.get("Labels") or {}
        return {
            "driver": volume.get("Driver"),
            "driver_options": {key: options.get(key) for key in desired["driver_options"]},
            "labels": {key: labels.get(key) for key in desired["labels"]},
        }

    def differences(self, current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
        found = []
        if current.get("driver") != desired["driver"]:
            found.append("driver")
        for key, wanted in desired["driver_options"].items():
            actual = current["driver_options"].get(key)
            if key == "size" and self.client.is_pouch and actual not in (None, ""):
                try:
                    if int(str(actual)) == parse_size(wanted):
                        continue
                except ValueError:
                    pass
            if actual != wanted:
                found.append(f"driver_options.{key}")
        for key, wanted in desired["labels"].items():
            if current["labels"].get(key) != wanted:
                found.append(f"labels.{key}")
        return found

    def users(self, name: str) -> list[str]:
        found = []
        for item in self.client.list_containers(all_containers=True):
            mounts = item.get("Mounts")
            if mounts is None:  # the 1.3.0 release lists containers without their mounts
                mounts = (self.client.inspect_container(item["Id"]) or {}).get("Mounts")
            for mount in mounts or []:
                if mount.get("Name") == name:
                    found.append(container_name(item))
                    break
        return sorted(found)

    def guard(self, name: str, purpose: str) -> None:
        self.refuse_if_used(f"volume {name}", self.users(name), purpose, "remove those containers first")

    def run(self) -> dict[str, Any]:
        desired = self.validate()
        name = self.params["name"]
        volume = self.client.inspect_volume(name)
        before = self.current(volume, desired)
        if self.params["state"] == "absent":
            self.result["diff"] = {"before": before, "after": {}}
            self.result["volume"] = {}
            if volume is not None:
                self.guard(name, "remove it")
                self.remove(name)
            return self.result
        differences = self.differences(before, desired) if volume is not None else []
        self.result["differences"] = differences
        policy = self.params["recreate"]
        recreate = volume is not None and (
            policy == "always" or (policy == "options-changed" and differences)
        )
        if volume is not None and differences and policy == "never":
            self.module.warn(
                f"volume {name} differs from the task ({', '.join(differences)}) but recreate is 'never': "
                "left as it is"
            )
        if recreate:
            self.guard(name, "recreate it")
        if volume is None or recreate:
            self.replace(name, volume, self.create_body(name, desired))
            after = dict(desired)
        else:
            after = before
        self.result["diff"] = {"before": before, "after": after}
        self.result["volume"] = self.client.inspect_volume(name)
        return self.result

    @staticmethod
    def create_body(name: str, desired: dict[str, Any]) -> dict[str, Any]:
        return {
            "Name": name,
            "Driver": desired["driver"],
            "DriverOpts": desired["driver_options"],
            "Labels": desired["labels"],
        }


def run_module() -> None:
    run_manager(VolumeManager, argument_spec())
