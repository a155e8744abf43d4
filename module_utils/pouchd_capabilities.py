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
