#!/usr/bin/python
"""Ansible module: audit a Pouch node's daemon settings and files against the hardening checks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pouch_audit
short_description: Check a Pouch node against CIS Docker Benchmark daemon checks adapted to pouchd
description:
  - Reads pouchd's config.json, the unix sockets it listens on and the TLS files it names, and
    reports one result per check (passed or not, with the reason). Changes nothing.
  - Checks are C(tcp-tls), C(socket), C(config-file), C(tls-files), C(log-rotation) and
    C(insecure-registries); their logic lives in module_utils/pouch_audit.py.
options:
  config_file:
    description: pouchd's configuration file.
    type: path
    default: /etc/pouch/config.json
  socket_group:
    description: The group that must own pouchd's unix socket.
    type: str
    default: pouch
  p2p_mirrors:
    description: Local P2P mirrors (the Dragonfly dfdaemon) allowed as insecure (plain HTTP) registries.
    type: list
    elements: str
    default: ["127.0.0.1:65001"]
  allowed_insecure_registries:
    description: Further insecure registries the inventory allows (exact host:port).
    type: list
    elements: str
    default: []
author: pouch-ansible
"""

EXAMPLES = r"""
- name: Audit the node
  pouch_audit:
    allowed_insecure_registries: [10.0.2.101:5000]
  register: audit
"""

RETURN = r"""
checks:
  description: One item per check, in report order.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: Check id., type: str}
    title: {description: What is checked., type: str}
    reference: {description: The CIS Docker Benchmark recommendation it adapts., type: str}
    passed: {description: Whether the node passes., type: bool}
    detail: {description: What was found., type: str}
failed_checks:
  description: Ids of the checks that did not pass.
  returned: always
  type: list
  elements: str
observations:
  description: What was read (config.json stat and content, sockets, TLS files).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pouch_audit import collect, evaluate


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config_file": {"type": "path", "default": "/etc/pouch/config.json"},
            "socket_group": {"type": "str", "default": "pouch"},
            "p2p_mirrors": {"type": "list", "elements": "str", "default": ["127.0.0.1:65001"]},
            "allowed_insecure_registries": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    observations = collect(params["config_file"])
    checks = evaluate(
        observations,
        {
            "socket_group": params["socket_group"],
            "p2p_mirrors": params["p2p_mirrors"],
            "allowed_insecure_registries": params["allowed_insecure_registries"],
        },
    )
    module.exit_json(
        changed=False,
        checks=checks,
        failed_checks=[check["id"] for check in checks if not check["passed"]],
        observations=observations,
    )


if __name__ == "__main__":
    main()
