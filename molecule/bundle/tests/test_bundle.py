"""The guest installed runc and lxcfs from the offline bundle, its only (signed) package source."""

from __future__ import annotations

BUNDLE = "http://10.0.2.100/bundle/debian"


def test_packages_installed(host) -> None:
    for name in ("runc", "lxcfs", "fuse3"):
        assert host.package(name).is_installed, name


def test_bundle_is_the_only_source(host) -> None:
    assert not host.file("/etc/apt/sources.list").exists
    source = host.file("/etc/apt/sources.list.d/pouch-bundle.sources")
    assert source.exists
    assert f"URIs: {BUNDLE}/" in source.content_string
    assert "Signed-By: /etc/apt/keyrings/pouch-bundle.asc" in source.content_string
    assert "[trusted=yes]" not in source.content_string
    policy = host.check_output("apt-cache policy runc lxcfs")
    assert f"{BUNDLE} ./ Packages" in policy
    assert "10.0.2.100/ ./" not in policy.replace(f"{BUNDLE} ./", "")


def test_signature_is_checked(host) -> None:
    key = host.file("/etc/apt/keyrings/pouch-bundle.asc")
    assert key.exists and key.mode == 0o644
    assert "BEGIN PGP PUBLIC KEY BLOCK" in key.content_string
    update = host.run("apt-get update --error-on=any")
    assert update.rc == 0, update.stderr
    assert "InRelease" in update.stdout
    assert host.file("/var/lib/apt/lists/10.0.2.100_bundle_debian_._InRelease").exists


def test_lxcfs_runs(host) -> None:
    assert host.service("lxcfs").is_running
