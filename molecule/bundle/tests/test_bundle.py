"""The guest installed everything from the offline bundle, its only (signed) package source.

Shared by the scenarios `bundle` (runc, lxcfs, fuse3) and `bundle_site` (site.yml, pouchd from the
bundle's archive); each bundle is served at http://10.0.2.100/<scenario>/.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "bundle")
BUNDLE = f"http://10.0.2.100/{SCENARIO}/debian"
SITE = SCENARIO == "bundle_site"
PACKAGES = ("runc", "lxcfs", "fuse3") + (("containerd", "iptables") if SITE else ())


def test_packages_installed(host) -> None:
    for name in PACKAGES:
        assert host.package(name).is_installed, name


def test_bundle_is_the_only_source(host) -> None:
    assert not host.file("/etc/apt/sources.list").exists
    source = host.file("/etc/apt/sources.list.d/pouch-bundle.sources")
    assert source.exists
    assert f"URIs: {BUNDLE}/" in source.content_string
    assert "Signed-By: /etc/apt/keyrings/pouch-bundle.asc" in source.content_string
    assert "[trusted=yes]" not in source.content_string
    policy = host.check_output("apt-cache policy " + " ".join(PACKAGES))  # fixed names, no quoting
    assert f"{BUNDLE} ./ Packages" in policy
    assert "10.0.2.100/ ./" not in policy.replace(f"{BUNDLE} ./", "")


def test_signature_is_checked(host) -> None:
    key = host.file("/etc/apt/keyrings/pouch-bundle.asc")
    assert key.exists and key.mode == 0o644
    assert "BEGIN PGP PUBLIC KEY BLOCK" in key.content_string
    update = host.run("apt-get update --error-on=any")
    assert update.rc == 0, update.stderr
    assert "InRelease" in update.stdout
    # apt names its list files after the URI: "/" becomes "_", and "_" itself "%5f".
    lists_name = SCENARIO.replace("_", "%5f")
    assert host.file(f"/var/lib/apt/lists/10.0.2.100_{lists_name}_debian_._InRelease").exists


def test_lxcfs_runs(host) -> None:
    assert host.service("lxcfs").is_running


@pytest.mark.skipif(not SITE, reason="the bundle scenario's bundle carries packages only, no pouch archive")
def test_pouchd_came_from_the_bundle(host) -> None:
    """The pouch archive on the node is the bundle's copy (the role downloaded it from the bundle's
    URL, checked against the manifest's sha256), and the pouchd it installed runs."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    lab_state = Path(os.environ.get("LAB_STATE_DIR") or project / ".lab")
    bundled = sorted((lab_state / "repo/www" / SCENARIO / "artifacts/pouchd").glob("*"))
    assert len(bundled) == 1, bundled
    digest = hashlib.sha256(bundled[0].read_bytes()).hexdigest()
    cached = host.check_output("sha256sum /var/cache/pouch-ansible/pouchd/*.tar.gz | cut -d' ' -f1").split()
    assert digest in cached, (digest, cached)
    assert host.service("pouch").is_running
    version = host.run("pouch version")
    assert version.rc == 0 and "1.3" in version.stdout, version.stdout + version.stderr
