"""What one pouchd binary supports, learnt from the binary itself.

Two builds both print "1.3.0": the release (build 37051654) and unreleased master (bc5839e3). They
differ in flags (insecure-registries, registry-mirrors, cni-runtime-config, enable-builder) and in
the containerd runtime types they can drive (the release hard-codes the v1 shim). The release also
ignores unknown config.json keys without a word. So a build is described by:

- ``pouchd --version``: version and build commit;
- ``pouchd --help``: the flags it has (a config.json key is honoured when the flag of that name is);
- the runtime type names compiled into the binary (the strings pouchd matches a runtime's ``type``
  against: ``io.containerd.runtime.v1.linux`` only in the release).

Standard library only: it runs on nodes (library/pouchd_capabilities.py) and on the controller.
"""

from __future__ import annotations

import re
from typing import Any

# containerd runtime types a pouchd build may know; each is searched for in the binary.
RUNTIME_TYPES = (
    "io.containerd.runtime.v1.linux",
    "io.containerd.runc.v1",
    "io.containerd.runc.v2",
    "io.containerd.runsc.v1",
    "io.containerd.kata.v2",
)
# pouchd compares a runtime's "type" with these; an empty type means the v1 shim on every build.
V1_SHIM = "io.containerd.runtime.v1.linux"

_VERSION = re.compile(r"version:\s*(?P<version>[^\s,]+),\s*build:\s*(?P<commit>[0-9a-fA-F]+)")
_FLAG = re.compile(r"^\s+(?:-\w,\s+)?--(?P<flag>[a-z0-9][a-z0-9-]*)", re.MULTILINE)


def parse_version(text: str) -> tuple[str, str]:
    """(version, build commit) of ``pouchd --version``; ValueError when it names neither."""
    match = _VERSION.search(text)
    if match is None:
        raise ValueError(f"pouchd --version did not name a version and a build: {text.strip()[:200]!r}")
    return match["version"], match["commit"].lower()


def parse_flags(help_text: str) -> list[str]:
    """The long flags ``pouchd --help`` lists, sorted."""
    flags = sorted(set(_FLAG.findall(help_text)))
    if "config-file" not in flags:
        raise ValueError("pouchd --help lists no --config-file flag: not the help of a pouchd")
    return flags


def runtime_types_in(binary: bytes) -> list[str]:
    """The known runtime type names that occur in the binary's bytes."""
    return [name for name in RUNTIME_TYPES if name.encode() in binary]


def capabilities(version_text: str, help_text: str, runtime_types: list[str]) -> dict[str, Any]:
    """The ``pouchd_capabilities`` fact: what this build is and honours."""
    version, commit = parse_version(version_text)
    flags = parse_flags(help_text)
    # Every build drives the v1 shim (a runtime without a type gets it); master names it indirectly.
    runtime_types = sorted({V1_SHIM, *runtime_types})
    return {
        "version": version,
        "build": commit,
        "flags": flags,
        "runtime_types": runtime_types,
        "insecure_registries": "insecure-registries" in flags,
        "registry_mirrors": "registry-mirrors" in flags,
        "image_proxy": "image-proxy" in flags,
        "shim_v2": any(t != V1_SHIM for t in runtime_types),
    }


# config.json keys that only some builds have, each with what to use where the build lacks it. The
# 1.3.0 release ignores unknown keys without a word, so such a key is dropped when it asks for
# nothing (empty, false) and refused when it asks for something.
BUILD_DEPENDENT_SETTINGS = {
    "insecure-registries": (
        "serve the registry over TLS with a certificate the node trusts (the build pulls over HTTPS "
        "only), or install a build that has insecure-registries"
    ),
    "registry-mirrors": (
        "use image-proxy (pouchd_image_proxy: an HTTP proxy such as Dragonfly's dfdaemon), or install "
        "a build that has registry-mirrors"
    ),
    "enable-builder": "leave it false, or install a build that has enable-builder",
    "cni-runtime-config": "leave it unset, or install a build that has cni-runtime-config",
}


def build_name(caps: dict[str, Any]) -> str:
    return f"pouchd {caps['version']} (build {caps['build']})"


def config_for_build(config: dict[str, Any], caps: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(config.json for this build, why it cannot honour the settings): keys the build lacks are left
    out when they ask for nothing; runtimes whose type the build cannot drive, and keys it lacks that
    ask for something, are refused, naming the setting, the build and what to use instead."""
    result = dict(config)
    errors = []
    flags = set(caps["flags"])
    for key, instead in BUILD_DEPENDENT_SETTINGS.items():
        if key not in result or key in flags:
            continue
        value = result.pop(key)
        if value:
            errors.append(
                f"{key}: {build_name(caps)} has no {key} setting and would ignore {value!r}; {instead}"
            )
    for runtime, spec in sorted((result.get("add-runtime") or {}).items()):
        wanted = (spec or {}).get("type") or V1_SHIM
        if wanted not in caps["runtime_types"]:
            errors.append(
                f"add-runtime.{runtime}.type: {build_name(caps)} cannot drive {wanted} (it has "
                f"{', '.join(caps['runtime_types'])}); on a pure cgroup v2 node the v1 shim starts no "
                "container: boot the node with the cgroup v1 hierarchy (kernel command line "
                "systemd.unified_cgroup_hierarchy=0), or install a build with shim v2"
            )
    return result, errors
