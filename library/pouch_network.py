#!/usr/bin/python
"""pouch_network: networks on pouchd (or dockerd) and the containers attached to them (logic in
module_utils)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouch_network
short_description: Manage networks on pouchd (or dockerd) and connect containers to them
description:
  - Creates, recreates and removes networks, and connects and disconnects containers, like community.docker's
    docker_network, on pouchd (API 1.24) and dockerd.
  - Only the properties you set are compared (O(driver) always, with its default). Networks cannot be changed
    in place, so a difference recreates the network (remove, create, reconnect).
  - A network that any container references, running or stopped, is never removed or recreated unless
    O(force=true); then those containers are disconnected first. (pouchd itself would delete a network a
    stopped
    container still references, and that container could not start again.)
  - A create that fails leaves no network behind; containers that could not be connected to a network the task
    just created make the task remove that network again.
version_added: "0.1.0"
author:
  - pouch-ansible contributors
extends_documentation_fragment:
  - pouch
  - pouch.attributes
options:
  name:
    description: Network name (letters, digits, C(_), C(.) and C(-)).
    type: str
    required: true
    aliases: [network_name]
  state:
    description: V(present) creates or recreates the network as needed; V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  driver:
    description: Network driver (V(bridge) on both daemons; others need the matching plugin).
    type: str
    default: bridge
  driver_options:
    description:
      - Driver options (string values), e.g. C(com.docker.network.bridge.name). Only the keys given are
        compared;
        options the daemon adds are not differences.
    type: dict
    default: {}
  ipam_driver:
    description: IPAM driver. Compared only when set; the daemons' default is V(default).
    type: str
  ipam_config:
    description:
      - Address pools. Each entry needs a subnet; the gateway, range and auxiliary addresses must lie
        inside it.
        Compared when set, entry by entry matched by subnet, on the keys given (a gateway the daemon picked is
        not a difference).
    type: list
    elements: dict
    suboptions:
      subnet:
        description: Subnet in CIDR form, e.g. C(10.214.1.0/24) (no host bits).
        type: str
      gateway:
        description: Gateway address inside O(ipam_config[].subnet).
        type: str
      iprange:
        description: Range in CIDR form inside O(ipam_config[].subnet) that container addresses come from.
        type: str
        aliases: [ip_range]
      aux_addresses:
        description: Host names to addresses the IPAM driver must not hand out.
        type: dict
  internal:
    description: Restrict external access to the network. Compared when set.
    type: bool
  enable_ipv6:
    description: Enable IPv6 on the network. Compared when set.
    type: bool
  labels:
    description: Labels (string values). Only the keys given are compared.
    type: dict
    default: {}
  connected:
    description:
      - Containers (names or IDs) that must be attached; they must exist. Unless O(appends=true), containers
        attached but not listed are disconnected (V([]) disconnects every container).
      - When not set, attachments are not managed at all, and a recreate reconnects the containers that were
        attached. (community.docker's docker_network disconnects every container when its C(connected) is
        unset.)
    type: list
    elements: str
    aliases: [containers]
  appends:
    description:
      - Only add the containers of O(connected); never disconnect others (they are also reconnected after a
        recreate).
    type: bool
    default: false
    aliases: [incremental]
  force:
    description:
      - Allow removing or recreating a network that containers reference; they are disconnected first (a
        recreate
        reconnects those in O(connected), and with O(appends=true) also the others).
    type: bool
    default: false
seealso:
  - module: pouch_container
  - module: pouch_info
"""

EXAMPLES = r"""
- name: A bridge network with a fixed address plan
  pouch_network:
    name: backend
    ipam_config:
      - subnet: 10.214.1.0/24
        gateway: 10.214.1.1
        iprange: 10.214.1.128/25
    labels:
      app: shop

- name: Attach the app containers, keep whatever else is attached
  pouch_network:
    name: backend
    connected: [web, worker]
    appends: true

- name: Change the subnet even though containers use the network
  pouch_network:
    name: backend
    ipam_config:
      - subnet: 10.214.2.0/24
    connected: [web, worker]
    force: true

- name: Remove it
  pouch_network:
    name: backend
    state: absent
"""

RETURN = r"""
network:
  description: The network's inspect output after the task (empty when absent; in check mode the current
    network).
  returned: success
  type: dict
  sample: {"Name": "backend", "Id": "236b7745721e", "Driver": "bridge", "IPAM": {"Config": [{"Subnet":
    "10.214.1.0/24"}]}}
connected:
  description: Names of the containers attached to the network after the task.
  returned: when state is present
  type: list
  elements: str
  sample: [web, worker]
actions:
  description:
    - What was done (or would be done in check mode), in order, among V(create), V(remove), C(connect:NAME)
      and C(disconnect:NAME). A recreate shows as the disconnects, V(remove), V(create) and the connects.
  returned: always
  type: list
  elements: str
  sample: ["disconnect:web", "remove", "create", "connect:web"]
differences:
  description: The compared properties that differed (and made the network be recreated).
  returned: when state is present
  type: list
  elements: str
  sample: [ipam_config]
rolled_back:
  description: Whether a network this task created was removed again after a later step failed.
  returned: on failure
  type: bool
"""

from ansible.module_utils.pouch_network_engine import run_module


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
