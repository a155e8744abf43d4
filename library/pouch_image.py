#!/usr/bin/python
"""pouch_image: images on pouchd (or dockerd): pull, load, tag, remove (logic in module_utils)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouch_image
short_description: Pull, load, tag and remove images on pouchd (or dockerd) through the engine API
description:
  - Makes an image present on the daemon, by pulling it from a registry, loading it from an archive on the
    managed node, or requiring it to be there already, optionally adds a tag to it, or removes it.
  - pouchd finds an image only under the exact name it was stored as, so O(name) is used as written
    (C(:latest) is added when no tag or digest is given); no C(docker.io/library/) expansion happens.
  - Like community.docker's docker_image, but for pouchd's API 1.24 (which docker_image refuses) and
    dockerd alike.
version_added: "0.1.0"
author:
  - pouch-ansible contributors
extends_documentation_fragment:
  - pouch
  - pouch.attributes
  - pouch.registry_auth
attributes:
  check_mode:
    details:
      - Loads are predicted exactly (the archive names the image ID it holds). A forced pull of an image
        that is
        already present is reported as a change, because only pulling tells whether the registry has a
        newer one.
options:
  name:
    description:
      - Image reference C([REGISTRY[:PORT]/]PATH[:TAG][@DIGEST]), or with O(state=absent) or
        O(source=local) an image ID.
    type: str
    required: true
  tag:
    description: Tag to use when O(name) carries none. Must agree with a tag written in O(name).
    type: str
  state:
    description: V(present) makes sure the image is on the daemon; V(absent) removes this reference (the image
      itself goes with its last reference).
    type: str
    default: present
    choices: [present, absent]
  source:
    description:
      - Where a missing image comes from. V(pull) pulls it from its registry; V(load) loads O(load_path);
        V(local)
        requires it to be on the daemon already (fails otherwise), for tagging an existing image.
    type: str
    default: pull
    choices: [pull, load, local]
  load_path:
    description:
      - Image archive on the managed node for O(source=load), a docker-archive (C(docker save), C(skopeo
        copy ...
        docker-archive:)) or an OCI image layout tar. Needed with O(source=load).
      - On pouchd the archive is loaded with C(?name=REPOSITORY), so only the wanted repository's
        references are
        imported. An OCI archive whose images are tagged only C(TAG) (annotation
        C(org.opencontainers.image.ref.name))
        becomes C(REPOSITORY:TAG). A docker-archive's tags are stored normalized
        (C(docker.io/library/busybox:v2));
        when O(name) is spelled differently, the module also tags the image as O(name), so it can be found
        by it.
      - On dockerd the whole archive is loaded (dockerd has no name filter); dockerd 20.10 cannot load OCI
        archives.
      - The archive is read on the node first; if it holds no image for O(name) the task fails before
        loading anything.
    type: path
  force_source:
    description:
      - Pull or load again even if the image is present. The task reports a change only when the image ID
        changed.
    type: bool
    default: false
  force_absent:
    description:
      - With O(state=absent), remove the image even if containers use it (the daemon's C(force)).
        Without it the task fails, naming the containers, when it would remove the image's last reference.
    type: bool
    default: false
  repository:
    description:
      - With O(state=present), also tag the image as C(REPOSITORY[:TAG]) (C(POST /images/{name}/tag)).
        Without a tag
        the tag of O(name) is used. Changed when the tag is missing or names another image.
      - pouchd refuses to move a tag that names another image, so there the old reference is removed first.
    type: str
notes:
  - A pull that fails, before or in the middle of the progress stream, fails the task with the registry's
    message
    and leaves an image already present under O(name) untouched.
seealso:
  - module: pouch_container
  - module: pouch_info
"""

EXAMPLES = r"""
- name: Pull an image from the local registry
  pouch_image:
    name: registry.example.com:5000/library/busybox:1.36

- name: Pull again and report a change only when the registry has a new image
  pouch_image:
    name: registry.example.com:5000/library/busybox:1.36
    force_source: true
    registry_auth:
      username: deploy
      password: "{{ registry_password }}"
      server_address: registry.example.com:5000

- name: Load an archive copied to the node and name the image app:1.0
  pouch_image:
    name: app:1.0
    source: load
    load_path: /var/tmp/app-1.0.tar

- name: Tag an image already on the node
  pouch_image:
    name: registry.example.com:5000/library/busybox:1.36
    source: local
    repository: busybox:stable

- name: Remove a reference
  pouch_image:
    name: busybox:stable
    state: absent
"""

RETURN = r"""
image:
  description: The image's inspect output after the task (empty when absent; null when only predicted in
    check mode).
  returned: success
  type: dict
  sample: {"Id": "sha256:a1d58372c667", "RepoTags": ["registry.example.com:5000/library/busybox:1.36"]}
actions:
  description: What was done (or would be done in check mode), among V(pull), V(load), V(tag) and V(remove).
  returned: always
  type: list
  elements: str
  sample: ["pull", "tag"]
progress:
  description: Summary of the pull's progress stream, the layer IDs seen and the last status.
  returned: when an image was pulled
  type: dict
  sample: {"events": 4, "layers": ["layer-sha256:aaf4c0e8aab7"], "status": "done"}
load:
  description: How the archive was (or would be) loaded, the C(?name=) sent, and the name and image ID it
    yields.
  returned: when an archive was loaded or a load was predicted
  type: dict
  sample: {"archive": "/var/tmp/app.tar", "format": "oci-archive", "name_parameter": "app",
           "stored_as": "app:1.0", "image_id": "sha256:166a7c62ca2f"}
tagged:
  description: The reference O(repository) resolved to.
  returned: when O(repository) is set
  type: str
  sample: busybox:stable
"""

from ansible.module_utils.pouch_image_engine import run_module


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
