#!/usr/bin/python
"""Ansible module: probe the node's kernel for Pouch and export the decisions as the pouch_kernel fact."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pouch_kernel_facts
short_description: Probe the kernel features Pouch depends on and decide how to configure the node
description:
  - Reads the kernel release, distribution, overlayfs and its multi-lowerdir support, d_type of the
    filesystem under pouch's home dir, cgroup version and knobs, seccomp, cgroup and user namespaces,
    C(/dev/kvm) and vmx/svm, FUSE, kernel module availability and the live values of the sysctls
    the kernel_compat role manages.
  - Returns the decisions (snapshotter, default runtime, features to leave off, sysctls, boot modules,
    blockers) as the C(pouch_kernel) fact; the raw probe is in C(pouch_kernel.probe).
  - Changes nothing. The d_type probe creates and removes a scratch directory next to the home dir.
  - The logic lives in module_utils/pouch_kernel.py.
extends_documentation_fragment:
  - pouch.attributes_read_only
options:
  home_dir:
    description: pouchd's home dir; its nearest existing parent is probed for d_type.
    type: path
    default: /var/lib/pouch
  snapshotter:
    description:
      - C(auto) picks overlayfs where it works, else native.
      - C(overlayfs) turns an unusable overlay into a blocker.
    type: str
    choices: [auto, overlayfs, native]
    default: auto
  runlxc_archive:
    description: A runlxc archive the user supplies (URL or controller path); only its presence matters here.
    type: str
    default: ""
  runlxc_binary:
    description: Path of a runlxc binary already on the node; it must exist and be executable.
    type: path
  boot_modules:
    description: Kernel modules to load at boot where they are loadable modules (not built in).
    type: list
    elements: str
    default: [overlay, br_netfilter]
  bridge_nf_call:
    description: Set net.bridge.bridge-nf-call-ip(6)tables=1 where br_netfilter exists.
    type: bool
    default: true
  may_detach_mounts:
    description: Set fs.may_detach_mounts=1 on RHEL 7 kernels.
    type: bool
    default: true
  sysctls:
    description: Sysctls to set as given.
    type: dict
    default: {"net.ipv4.ip_forward": "1"}
  sysctl_minimums:
    description: Sysctls to raise to at least this value (a higher live value is kept).
    type: dict
    default: {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 8192}
  probe_root:
    description:
      - Read /proc, /sys, /dev and /etc under this directory (a recorded tree).
      - Live-only probes (d_type, prctl, commands) are skipped then.
    type: path
    default: /
  recorded_facts:
    description: A recorded probe (the C(pouch_kernel.probe) of another node); skips probing. For tests.
    type: dict
author: pouch-ansible
"""

EXAMPLES = r"""
- name: Probe the kernel and decide
  pouch_kernel_facts:
    home_dir: /var/lib/pouch

- name: Fail early on nodes Pouch cannot run on
  ansible.builtin.fail:
    msg: "{{ ansible_facts['pouch_kernel']['blockers'] | join('; ') }}"
  when: not ansible_facts['pouch_kernel']['supported']
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    pouch_kernel:
      description: >-
        Decisions: version, version_info, distribution, supported, blockers, warnings, snapshotter,
        snapshotter_reason, default_runtime, runlxc_required, runlxc_source, cgroup_version, features,
        disabled_features, disabled_reasons, quota_driver, kata_capable, lxcfs_capable, boot_modules,
        modules_to_load, sysctls, sysctl_drift, probe. See roles/kernel_compat/README.md.
      type: dict
      returned: always
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pouch_kernel import decide, probe


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "home_dir": {"type": "path", "default": "/var/lib/pouch"},
            "snapshotter": {"type": "str", "choices": ["auto", "overlayfs", "native"], "default": "auto"},
            "runlxc_archive": {"type": "str", "default": ""},
            "runlxc_binary": {"type": "path"},
            "boot_modules": {"type": "list", "elements": "str", "default": ["overlay", "br_netfilter"]},
            "bridge_nf_call": {"type": "bool", "default": True},
            "may_detach_mounts": {"type": "bool", "default": True},
            "sysctls": {"type": "dict", "default": {"net.ipv4.ip_forward": "1"}},
            "sysctl_minimums": {
                "type": "dict",
                "default": {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 8192},
            },
            "probe_root": {"type": "path", "default": "/"},
            "recorded_facts": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    for name, value in params["sysctl_minimums"].items():
        if not str(value).isdigit():
            module.fail_json(msg=f"sysctl_minimums[{name!r}] must be a non-negative integer, got {value!r}")

    def run_command(argv: list[str]) -> tuple[int, str, str]:
        # modprobe and xfs_info live in sbin dirs that a non-login PATH may lack.
        executable = module.get_bin_path(argv[0], opt_dirs=["/sbin", "/usr/sbin"])
        if executable is None:
            return 127, "", f"{argv[0]} not found"
        return module.run_command([executable, *argv[1:]], environ_update={"LC_ALL": "C"})

    extra_sysctls = tuple(params["sysctls"]) + tuple(params["sysctl_minimums"])
    if params["recorded_facts"] is not None:
        probe_facts: dict[str, Any] = params["recorded_facts"]
    else:
        live = os.path.abspath(params["probe_root"]) == "/"
        probe_facts = probe(
            root=params["probe_root"],
            home_dir=params["home_dir"],
            run_command=run_command if live else None,
            extra_sysctls=extra_sysctls,
        )

    runlxc_binary = params["runlxc_binary"]
    runlxc_source = "binary" if runlxc_binary else "archive" if params["runlxc_archive"] else ""
    settings = {
        "snapshotter": params["snapshotter"],
        "runlxc_source": runlxc_source,
        "runlxc_binary_present": (
            os.path.isfile(runlxc_binary) and os.access(runlxc_binary, os.X_OK) if runlxc_binary else None
        ),
        "boot_modules": params["boot_modules"],
        "bridge_nf_call": params["bridge_nf_call"],
        "may_detach_mounts": params["may_detach_mounts"],
        "sysctls": {name: str(value) for name, value in params["sysctls"].items()},
        "sysctl_minimums": {name: int(value) for name, value in params["sysctl_minimums"].items()},
    }
    decisions = decide(probe_facts, settings)
    decisions["probe"] = probe_facts
    for warning in decisions["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"pouch_kernel": decisions})


if __name__ == "__main__":
    main()
