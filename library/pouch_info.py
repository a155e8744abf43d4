#!/usr/bin/python
"""pouch_info: what a pouchd (or dockerd) node runs, in one shape for both (logic in module_utils)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouch_info
short_description: Read a pouchd (or dockerd) node's engine facts and, optionally, its objects
description:
  - Reads C(/version) and C(/info) and returns them raw and as RV(engine), a summary under one set of names
    for
    pouchd and dockerd (root dir, storage driver and snapshotter, runtimes, lxcfs, CRI, registries, ...).
  - Optionally lists containers, images, networks and volumes, like community.docker's docker_host_info.
  - Never changes anything.
version_added: "0.1.0"
author:
  - pouch-ansible contributors
extends_documentation_fragment:
  - pouch
  - pouch.attributes_read_only
options:
  containers:
    description: List the running containers in RV(containers).
    type: bool
    default: false
  containers_all:
    description: List all containers, stopped ones too, in RV(containers).
    type: bool
    default: false
  images:
    description: List the images in RV(images).
    type: bool
    default: false
  networks:
    description: List the networks in RV(networks).
    type: bool
    default: false
  volumes:
    description: List the volumes in RV(volumes).
    type: bool
    default: false
  verbose_output:
    description: Return the daemon's full list entries instead of summaries.
    type: bool
    default: false
seealso:
  - module: pouch_container
  - module: pouch_image
"""

EXAMPLES = r"""
- name: Read the engine's facts
  pouch_info:
  register: pouch

- name: Check the node is set up as the roles intend
  ansible.builtin.assert:
    that:
      - pouch.engine.kind == 'pouch'
      - pouch.engine.lxcfs_enabled
      - "'runc' in pouch.engine.runtimes"
      - pouch.engine.default_runtime == 'runc'
      - pouch.engine.storage_family == 'overlay'

- name: Everything the node holds
  pouch_info:
    containers_all: true
    images: true
    networks: true
    volumes: true
  register: inventory
"""

RETURN = r"""
can_talk_to_daemon:
  description: Whether the daemon answered.
  returned: always
  type: bool
engine:
  description: The engine's facts under one set of names for both daemons.
  returned: success
  type: dict
  contains:
    kind:
      description: V(pouch) or V(docker).
      type: str
    version:
      description: Engine version (C(1.3.0)).
      type: str
    api_version:
      description: API version the daemon speaks (pouchd C(1.24)).
      type: str
    root_dir:
      description: The daemon's state directory (pouchd C(PouchRootDir), dockerd C(DockerRootDir)).
      type: str
    storage_driver:
      description: The daemon's C(Driver) as reported (pouchd C(overlayfs), dockerd C(overlay2)).
      type: str
    storage_family:
      description: V(overlay), V(devicemapper), V(btrfs), V(zfs), V(aufs) or V(native), the same name
        whichever daemon reports it.
      type: str
    snapshotter:
      description: The containerd snapshotter images are unpacked with (pouchd), null for a graph driver
        (dockerd).
      type: str
    runtimes:
      description: Names of the OCI runtimes the daemon knows.
      type: list
      elements: str
    default_runtime:
      description: Runtime used when a container names none.
      type: str
    lxcfs_enabled:
      description: Whether pouchd runs with C(enable-lxcfs) (always false on dockerd).
      type: bool
    cri_enabled:
      description: Whether pouchd serves the Kubernetes CRI (always false on dockerd).
      type: bool
    live_restore_enabled:
      description: Whether containers survive a daemon restart.
      type: bool
    default_registry:
      description: Registry short names resolve to (pouchd C(default-registry); C(docker.io) on dockerd).
      type: str
    registry_mirrors:
      description: Registry mirrors.
      type: list
      elements: str
    insecure_registries:
      description: Registries and CIDRs reached without TLS verification.
      type: list
      elements: str
    cgroup_driver:
      description: C(cgroupfs) or C(systemd).
      type: str
  sample: {"kind": "pouch", "version": "1.3.0", "api_version": "1.24", "root_dir": "/var/lib/pouch",
           "storage_driver": "overlayfs", "storage_family": "overlay", "snapshotter": "overlayfs",
           "runtimes": ["runc"], "default_runtime": "runc", "lxcfs_enabled": true, "cri_enabled": false,
           "registry_mirrors": [], "insecure_registries": ["127.0.0.1:5000"]}
host_info:
  description: The daemon's C(/info) answer as it is.
  returned: success
  type: dict
version:
  description: The daemon's C(/version) answer as it is.
  returned: success
  type: dict
containers:
  description: Containers (Id, Name, Image, ImageID, Status, Created, Labels; full entries with
    O(verbose_output)).
  returned: when O(containers) or O(containers_all) is true
  type: list
  elements: dict
images:
  description: Images (Id, RepoTags, RepoDigests, Size, Created; full entries with O(verbose_output)).
  returned: when O(images) is true
  type: list
  elements: dict
networks:
  description: Networks (Id, Name, Driver, Scope, Subnets, Labels; full entries with O(verbose_output)).
  returned: when O(networks) is true
  type: list
  elements: dict
volumes:
  description: Volumes (Name, Driver, Mountpoint, Labels; full entries with O(verbose_output)).
  returned: when O(volumes) is true
  type: list
  elements: dict
"""

from ansible.module_utils.pouch_info_engine import run_module


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
