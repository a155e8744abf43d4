#!/usr/bin/python
"""What one pouchd binary supports, and its config.json for that build."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouchd_capabilities
short_description: Learn what a pouchd build supports and fit config.json to it
description:
  - Runs C(pouchd --version) and C(pouchd --help) and reads the runtime type names compiled into the
    binary, and returns them as the fact C(pouchd_capabilities): version, build commit, flags,
    runtime types, and whether the build has insecure-registries, registry-mirrors, image-proxy and
    shim v2. The released pouch 1.3.0 and unreleased master both print version 1.3.0; the build
    commit and the flags tell them apart.
  - With O(config), returns it as C(config) for this build. The release ignores unknown config.json
    keys without a word, so a build-dependent key it lacks is left out when it asks for nothing and
    makes the task fail when it asks for something, naming the setting, the build and what to use
    instead. A runtime whose C(type) the build cannot drive fails the same way.
  - Changes nothing.
options:
  pouchd:
    description: Path of the pouchd binary to ask (installed, or still in a download cache).
    type: path
    default: /usr/local/bin/pouchd
  config:
    description: The config.json content to fit to this build.
    type: dict
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: pouch-ansible
"""

EXAMPLES = r"""
- name: Learn what the installed pouchd supports
  pouchd_capabilities:
    pouchd: /usr/local/bin/pouchd
    config: "{{ wanted_config }}"
  register: build
"""

RETURN = r"""
ansible_facts:
  description: C(pouchd_capabilities)
  returned: always
  type: dict
  sample: {"pouchd_capabilities": {"version": "1.3.0", "build": "37051654", "insecure_registries": false,
           "registry_mirrors": false, "image_proxy": true, "shim_v2": false,
           "runtime_types": ["io.containerd.runtime.v1.linux"], "flags": ["add-runtime", "..."]}}
config:
  description: O(config) without the build-dependent keys this build lacks (they asked for nothing).
  returned: when O(config) is given and the build honours it
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pouchd_capabilities import (
    build_name,
    capabilities,
    config_for_build,
    runtime_types_in,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "pouchd": {"type": "path", "default": "/usr/local/bin/pouchd"},
            "config": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    pouchd = module.params["pouchd"]
    outputs = []
    for flag in ("--version", "--help"):
        rc, out, err = module.run_command([pouchd, flag])
        if rc != 0:
            module.fail_json(msg=f"{pouchd} {flag} failed (exit {rc}): {(err or out).strip()[:500]}")
        outputs.append(out + err)
    try:
        with open(pouchd, "rb") as handle:
            types = runtime_types_in(handle.read())
        caps = capabilities(outputs[0], outputs[1], types)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"{pouchd}: {exc}")
    result = {"changed": False, "ansible_facts": {"pouchd_capabilities": caps}}
    if module.params["config"] is not None:
        config, errors = config_for_build(module.params["config"], caps)
        if errors:
            module.fail_json(
                msg=f"{build_name(caps)} at {pouchd} cannot honour these settings: " + " | ".join(errors),
                unsupported=errors,
                **result,
            )
        result["config"] = config
    module.exit_json(**result)


if __name__ == "__main__":
    main()
