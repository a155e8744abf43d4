"""What an inventory needs from a bundle: the ONE list of the roles' package and artifact variables.

Every Debian package a role installs is named here by the role variable that holds it (or, where
a task names the package literally, by that literal and the task file), with the condition under
which the role installs it. ``resolve()`` asks Ansible itself for the values per host (role
defaults, then the inventory, templates and lookups evaluated), so a bundle follows the inventory
exactly as site.yml would.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundle.errors import BundleError
from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[1]
RESOLVE_PLAYBOOK = Path(__file__).with_name("resolve.yml")
HOST_PATTERN = "pouch_nodes:dragonfly_supernodes:dragonfly_managers:dragonfly_schedulers:dragonfly_seed_peers"

Vars = dict[str, Any]


def _true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _dragonfly(generation: int, v: Vars) -> bool:
    return _true(v["dragonfly_enabled"]) and int(v["dragonfly_generation"]) == generation


def _dragonfly_v2_local(v: Vars, host_variable: str) -> bool:
    """Generation 2 installs MariaDB/Redis on the manager host when their host is not given."""
    return _dragonfly(2, v) and _true(v["dragonfly_v2_manager_enabled"]) and not v[host_variable]


def _runlxc_supplied(v: Vars) -> bool:
    return bool(v["runtimes_runlxc_artifact"]) or bool(v["runtimes_runlxc_binary"])


@dataclass(frozen=True)
class PackageSource:
    """Package names a role installs: the value of ``variable`` (a name or a list), or ``literal``."""

    role: str
    where: str  # the task file that installs them
    when: Callable[[Vars], bool]
    variable: str = ""
    literal: tuple[str, ...] = ()

    def names(self, values: Vars) -> list[str]:
        if not self.when(values):
            return []
        if not self.variable:
            return list(self.literal)
        value = values[self.variable]
        names = [value] if isinstance(value, str) else list(value)
        return [n.strip() for n in names if isinstance(n, str) and n.strip()]


# The one list. A role that starts installing another package adds a line here (tests check that
# every `ansible.builtin.apt` name in roles/*/tasks is covered by one of these).
PACKAGE_SOURCES: tuple[PackageSource, ...] = (
    PackageSource("containerd", "tasks/install.yml", lambda v: v["containerd_install_method"] == "package",
                  variable="containerd_package_name"),
    PackageSource("runtimes", "tasks/install.yml", lambda v: v["runtimes_runc_install_method"] == "package",
                  variable="runtimes_runc_package_name"),
    PackageSource("runtimes", "tasks/install.yml", lambda v: _true(v["runtimes_crun_enabled"]),
                  variable="runtimes_crun_package_name"),
    PackageSource("runtimes", "tasks/install.yml", _runlxc_supplied, variable="runtimes_lxc_package_name"),
    PackageSource("lxcfs", "tasks/install.yml", lambda v: True, variable="lxcfs_fuse_package_name"),
    PackageSource("lxcfs", "tasks/install.yml", lambda v: True, variable="lxcfs_package_name"),
    PackageSource("pouchd", "tasks/install.yml", lambda v: True, variable="pouchd_dependency_packages"),
    PackageSource("pouchd", "tasks/install.yml", lambda v: _true(v["pouchd_disk_quota"]),
                  variable="pouchd_disk_quota_packages"),
    PackageSource("pouchd", "tasks/configure.yml", lambda v: bool(v["pouchd_registry_ca_certs"]),
                  literal=("ca-certificates",)),
    PackageSource("dragonfly", "tasks/supernode.yml",
                  lambda v: _dragonfly(1, v) and _true(v["dragonfly_supernode_enabled"]),
                  literal=("nginx",)),
    PackageSource("dragonfly", "tasks/peer.yml",
                  lambda v: _dragonfly(1, v) and _true(v["dragonfly_dfdaemon_loopback_only"]),
                  literal=("iptables",)),
    PackageSource("dragonfly", "tasks/v2_datastores.yml",
                  lambda v: _dragonfly_v2_local(v, "dragonfly_v2_database_host"),
                  variable="dragonfly_v2_database_package"),
    PackageSource("dragonfly", "tasks/v2_datastores.yml",
                  lambda v: _dragonfly_v2_local(v, "dragonfly_v2_redis_host"),
                  variable="dragonfly_v2_redis_package"),
)  # fmt: skip

# Package variables a bundle does not carry, and why (the tests check every apt task is in one list).
NOT_BUNDLED: dict[str, str] = {
    "pouchd_package_name": "pouchd_install_method 'repository' installs it from pouchd_repo_apt_url",
}

# Needed on every node whatever the roles install: Ansible's apt module runs on python3-apt.
BASE_PACKAGES: tuple[str, ...] = ("python3-apt",)


@dataclass(frozen=True)
class ArtifactSource:
    """A file a role takes from outside Debian: where it comes from, and its pinned sha256."""

    kind: str  # directory under artifacts/ and the name roles/bundle_source looks it up by
    when: Callable[[Vars], bool]
    location: Callable[[Vars], str]  # controller path or URL
    sha256: Callable[[Vars], str]  # hex, or "sha256:<hex>"
    sha256_variable: str  # named in error messages


def _artifact(name: str) -> tuple[Callable[[Vars], str], Callable[[Vars], str]]:
    def location(v: Vars) -> str:
        art = v[name] or {}
        return str(art.get("url") or art.get("src") or "")

    def checksum(v: Vars) -> str:
        return str((v[name] or {}).get("checksum", ""))

    return location, checksum


_containerd = _artifact("containerd_archive")
_runc = _artifact("runtimes_runc_artifact")
_runlxc = _artifact("runtimes_runlxc_artifact")
_kata = _artifact("runtimes_kata_artifact")

ARTIFACT_SOURCES: tuple[ArtifactSource, ...] = (
    ArtifactSource("pouchd", lambda v: v["pouchd_install_method"] == "archive",
                   lambda v: v["pouchd_archive_src"] or v["pouchd_archive_url"],
                   lambda v: v["pouchd_archive_sha256"], "pouchd_archive_sha256"),
    ArtifactSource("pouchd", lambda v: v["pouchd_install_method"] == "package_file",
                   lambda v: v["pouchd_package_src"] or v["pouchd_package_url"],
                   lambda v: v["pouchd_package_sha256"], "pouchd_package_sha256"),
    ArtifactSource("dragonfly", lambda v: _dragonfly(1, v),
                   lambda v: v["dragonfly_archive_src"] or v["dragonfly_archive_url"],
                   lambda v: v["dragonfly_archive_sha256"],
                   "dragonfly_archive_sha256"),
    ArtifactSource("dragonfly2-server",
                   lambda v: _dragonfly(2, v) and (_true(v["dragonfly_v2_manager_enabled"])
                                                   or _true(v["dragonfly_v2_scheduler_enabled"])),
                   lambda v: v["dragonfly_v2_server_archive_src"] or v["dragonfly_v2_server_archive_url"],
                   lambda v: v["dragonfly_v2_server_archive_sha256"],
                   "dragonfly_v2_server_archive_sha256"),
    ArtifactSource("dragonfly2-client", lambda v: _dragonfly(2, v),
                   lambda v: v["dragonfly_v2_client_archive_src"] or v["dragonfly_v2_client_archive_url"],
                   lambda v: v["dragonfly_v2_client_archive_sha256"],
                   "dragonfly_v2_client_archive_sha256"),
    ArtifactSource("containerd", lambda v: v["containerd_install_method"] == "archive", *_containerd,
                   "containerd_archive.checksum"),
    ArtifactSource("runc", lambda v: v["runtimes_runc_install_method"] == "artifact", *_runc,
                   "runtimes_runc_artifact.checksum"),
    ArtifactSource("runlxc", lambda v: bool(v["runtimes_runlxc_artifact"]), *_runlxc,
                   "kernel_compat_runlxc_checksum"),
    ArtifactSource("kata", lambda v: bool(v["runtimes_kata_artifact"]), *_kata,
                   "runtimes_kata_artifact.checksum"),
)  # fmt: skip

# Every variable the conditions and sources above read (what resolve() asks Ansible for).
VARIABLES: tuple[str, ...] = (
    "containerd_install_method", "containerd_package_name", "containerd_archive",
    "runtimes_runc_install_method", "runtimes_runc_package_name", "runtimes_runc_artifact",
    "runtimes_crun_enabled", "runtimes_crun_package_name", "runtimes_lxc_package_name",
    "runtimes_runlxc_artifact", "runtimes_runlxc_binary", "runtimes_kata_artifact",
    "lxcfs_package_name", "lxcfs_fuse_package_name", "pouchd_dependency_packages",
    "pouchd_disk_quota", "pouchd_disk_quota_packages", "pouchd_registry_ca_certs",
    "pouchd_install_method", "pouchd_archive_src", "pouchd_archive_url", "pouchd_archive_sha256",
    "pouchd_package_src", "pouchd_package_url", "pouchd_package_sha256",
    "dragonfly_enabled", "dragonfly_supernode_enabled", "dragonfly_dfdaemon_loopback_only",
    "dragonfly_archive_src", "dragonfly_archive_url", "dragonfly_archive_sha256",
    "dragonfly_generation", "dragonfly_v2_manager_enabled", "dragonfly_v2_scheduler_enabled",
    "dragonfly_v2_database_host", "dragonfly_v2_redis_host",
    "dragonfly_v2_database_package", "dragonfly_v2_redis_package",
    "dragonfly_v2_server_archive_src", "dragonfly_v2_server_archive_url",
    "dragonfly_v2_server_archive_sha256", "dragonfly_v2_client_archive_src",
    "dragonfly_v2_client_archive_url", "dragonfly_v2_client_archive_sha256",
)  # fmt: skip


@dataclass(frozen=True)
class WantedArtifact:
    kind: str
    location: str
    sha256: str  # lower-case hex
    hosts: tuple[str, ...]


def normalise_sha256(value: object) -> str:
    value = str(value).strip().lower().removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        return ""
    return value


def packages_for(hostvars: dict[str, Vars]) -> list[str]:
    """The closure roots: every package any host's roles install, plus BASE_PACKAGES."""
    names = set(BASE_PACKAGES)
    for values in hostvars.values():
        for source in PACKAGE_SOURCES:
            names.update(source.names(values))
    return sorted(names)


def artifacts_for(hostvars: dict[str, Vars]) -> list[WantedArtifact]:
    """The artifacts the hosts need (one entry per distinct file); a missing sha256 is an error."""
    found: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for host, values in sorted(hostvars.items()):
        for source in ARTIFACT_SOURCES:
            if not source.when(values):
                continue
            location = source.location(values)
            sha = normalise_sha256(source.sha256(values))
            if not location:
                raise BundleError(f"{host}: the {source.kind} artifact is enabled but names no file or URL")
            if not sha:
                raise BundleError(
                    f"{host}: {location} has no valid sha256 in {source.sha256_variable} "
                    f"(64 hex digits): every artifact is checked before it goes into the bundle"
                )
            # The same content under another name is the same artifact (the first name is kept).
            key = (source.kind, sha)
            found.setdefault(key, (location, []))[1].append(host)
    return [
        WantedArtifact(kind, location, sha, tuple(hosts))
        for (kind, sha), (location, hosts) in sorted(found.items())
    ]


def resolve(inventory: Path, hosts: str = HOST_PATTERN) -> dict[str, Vars]:
    """VARIABLES for every host of ``hosts`` in ``inventory``, as site.yml's roles would see them."""
    with tempfile.TemporaryDirectory(prefix="bundle-resolve-") as tmp:
        out = Path(tmp) / "values.json"
        extra = {"bundle_hosts": hosts, "bundle_variables": list(VARIABLES), "bundle_resolve_out": str(out)}
        extra_file = Path(tmp) / "extra.json"
        extra_file.write_text(json.dumps(extra))
        argv = [
            ansible_command("ansible-playbook"),
            "-i", str(inventory), str(RESOLVE_PLAYBOOK), "-e", f"@{extra_file}",
            "--tags", "bundle_resolve", "--skip-tags", "always",
        ]  # fmt: skip
        env = ansible_env()
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0 or not out.exists():
            raise BundleError(
                f"reading the inventory {inventory} with {RESOLVE_PLAYBOOK.name} failed "
                f"(exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            )
        values: dict[str, Vars] = json.loads(out.read_text())
    if not values:
        raise BundleError(f"the inventory {inventory} has no host in {hosts}")
    return values
