#!/usr/bin/python
"""pouch_volume: volumes on pouchd (or dockerd) (logic in module_utils)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouch_volume
short_description: Manage volumes on pouchd (or dockerd) through the engine API
description:
  - Creates, recreates and removes volumes, like community.docker's docker_volume, on pouchd (API 1.24) and
    dockerd.
  - Only the driver options and labels given are compared with the volume; the driver always (default
    V(local)).
  - A volume that a container mounts is never removed or recreated; the task fails and names the containers.
version_added: "0.1.0"
author:
  - pouch-ansible contributors
extends_documentation_fragment:
  - pouch
  - pouch.attributes
options:
  name:
    description: Volume name, two or more of letters, digits, C(_), C(.) and C(-), starting with a letter
      or digit.
    type: str
    required: true
    aliases: [volume_name]
  state:
    description: V(present) creates the volume (and recreates it following O(recreate)); V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  driver:
    description: Volume driver. pouchd has V(local) and V(tmpfs) built in; dockerd has V(local).
    type: str
    default: local
  driver_options:
    description:
      - Driver options (string values).
      - pouchd's V(local) driver takes C(mount) (an absolute host directory the volume lives in) and C(size)
        (a quota such as C(10g); pouchd stores it in bytes, and C(10g) and C(10737418240) compare equal).
      - dockerd's V(local) driver takes C(type), C(device) and C(o), and refuses C(mount) and C(size).
    type: dict
    default: {}
  labels:
    description: Labels (string values).
    type: dict
    default: {}
  recreate:
    description:
      - V(never) leaves an existing volume as it is, warning when it differs from the task.
        V(options-changed) recreates it when the driver, a given driver option or a given label differs.
        V(always) recreates it at every run. A recreated volume loses its data.
    type: str
    default: never
    choices: [never, always, options-changed]
seealso:
  - module: pouch_container
  - module: pouch_info
"""

EXAMPLES = r"""
- name: A data volume in its own directory with a 10 GiB quota (pouchd)
  pouch_volume:
    name: pgdata
    driver_options:
      mount: /data/volumes
      size: 10g
    labels:
      app: db

- name: A tmpfs-backed volume on dockerd
  pouch_volume:
    pouch_host: unix:///var/run/docker.sock
    name: scratch
    driver_options:
      type: tmpfs
      device: tmpfs
      o: size=64m
    recreate: options-changed

- name: Remove it
  pouch_volume:
    name: scratch
    state: absent
"""

RETURN = r"""
volume:
  description: The volume's inspect output after the task (empty when absent; in check mode the current
    volume).
  returned: success
  type: dict
  sample: {"Name": "pgdata", "Driver": "local", "Mountpoint": "/data/volumes/pgdata", "Labels": {"app": "db"}}
actions:
  description: What was done (or would be done in check mode), in order, among V(create) and V(remove).
  returned: always
  type: list
  elements: str
  sample: ["remove", "create"]
differences:
  description: What differs between the existing volume and the task (C(driver), C(driver_options.KEY),
    C(labels.KEY)).
  returned: when state is present
  type: list
  elements: str
  sample: ["driver_options.size"]
"""

from ansible.module_utils.pouch_volume_engine import run_module


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
