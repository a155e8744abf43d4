"""The offline bundle's logic without the network: closure parsing, the manifest, the one list of
package/artifact variables (checked against the roles' apt tasks and lab/packages.txt), artifacts."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from bundle.build import artifact_name, place_artifacts
from bundle.debrepo import deb_package_name, parse_depends
from bundle.errors import BundleError
from bundle.inputs import (
    NOT_BUNDLED,
    PACKAGE_SOURCES,
    VARIABLES,
    WantedArtifact,
    artifacts_for,
    normalise_sha256,
    packages_for,
)
from bundle.manifest import MANIFEST, parse_manifest, verify_manifest, write_manifest
from lab.aptrepo import read_package_list

ROOT = Path(__file__).resolve().parents[2]

DEPENDS = """\
jq
  Depends: libjq1
  Depends: libc6
libjq1
  Depends: libonig5
  Depends: libc6
 |Depends: <awk>
<awk>
mawk
  PreDepends: libc6
libonig5
libc6
  Depends: libgcc-s1
libgcc-s1
"""


def test_parse_depends_keeps_real_packages_only() -> None:
    assert parse_depends(DEPENDS) == ["jq", "libc6", "libgcc-s1", "libjq1", "libonig5", "mawk"]


def test_deb_package_name() -> None:
    assert deb_package_name("runc_1.1.5+ds1-1+deb12u1_amd64.deb") == "runc"
    assert deb_package_name("libgcc-s1_12.2.0-14_amd64.deb") == "libgcc-s1"


def make_tree(root: Path) -> None:
    (root / "debian/pool").mkdir(parents=True)
    (root / "debian/Packages").write_text("Package: x\n")
    (root / "debian/pool/x_1_all.deb").write_bytes(b"deb")
    (root / "artifacts/pouchd").mkdir(parents=True)
    (root / "artifacts/pouchd/pouch.tar.gz").write_bytes(b"tar")


def test_manifest_lists_every_file_and_hashes_itself(tmp_path: Path) -> None:
    make_tree(tmp_path)
    own = write_manifest(tmp_path)
    text = (tmp_path / MANIFEST).read_text()
    assert own == hashlib.sha256(text.encode()).hexdigest()
    sums = parse_manifest(text)
    assert sorted(sums) == ["artifacts/pouchd/pouch.tar.gz", "debian/Packages", "debian/pool/x_1_all.deb"]
    assert sums["artifacts/pouchd/pouch.tar.gz"] == hashlib.sha256(b"tar").hexdigest()
    assert verify_manifest(tmp_path) == []


def test_manifest_finds_changed_missing_and_unlisted_files(tmp_path: Path) -> None:
    make_tree(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "artifacts/pouchd/pouch.tar.gz").write_bytes(b"evil")
    (tmp_path / "debian/Packages").unlink()
    (tmp_path / "debian/extra").write_text("x")
    assert sorted(verify_manifest(tmp_path)) == [
        "artifacts/pouchd/pouch.tar.gz: sha256 differs from MANIFEST.sha256",
        "debian/Packages: listed in MANIFEST.sha256 but missing",
        "debian/extra: not listed in MANIFEST.sha256",
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("abc  debian/Packages", "is not '<sha256>  <path>'"),
        (f"{'a' * 64}  ../etc/passwd", "leaves the bundle"),
        (f"{'a' * 64}  /etc/passwd", "leaves the bundle"),
        (f"{'a' * 64}  x\n{'b' * 64}  x", "listed twice"),
    ],
)
def test_manifest_parse_rejects(line: str, error: str) -> None:
    with pytest.raises(BundleError, match=re.escape(error)):
        parse_manifest(line + "\n")


def test_manifest_refuses_white_space_in_names(tmp_path: Path) -> None:
    (tmp_path / "a b").write_text("x")
    with pytest.raises(BundleError, match="white space"):
        write_manifest(tmp_path)


def role_defaults() -> dict:
    values: dict = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        values.update(yaml.safe_load(path.read_text()) or {})
    return values


def all_features_on() -> dict:
    """Role defaults with every package-installing option on (as the lab's repository needs)."""
    values = {name: role_defaults().get(name) for name in VARIABLES}
    values.update(
        runtimes_crun_enabled=True,
        pouchd_disk_quota=True,
        runtimes_runlxc_artifact={"url": "http://x/runlxc", "checksum": "sha256:" + "a" * 64},
        runtimes_runlxc_binary="",  # its default is a template (kernel_compat_runlxc_binary), empty
        dragonfly_enabled=True,
        dragonfly_supernode_enabled=True,
    )
    return values


def test_every_apt_task_of_the_roles_is_in_the_one_list() -> None:
    variables = {s.variable for s in PACKAGE_SOURCES if s.variable} | set(NOT_BUNDLED)
    literals = {name for s in PACKAGE_SOURCES for name in s.literal}
    found = []
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        if path.parts[-3] in ("reset", "bundle_source"):
            continue
        for match in re.finditer(r"ansible\.builtin\.apt:\n\s+(?:name|deb): (.+)", path.read_text()):
            value = match.group(1).strip().strip("\"'")
            found.append(value)
            if "{{" in value:
                first = re.match(r"\{\{\s*(\w+)", value)
                assert first is not None, value
                assert first.group(1) in variables | {"__pouchd_package_file"}, f"{path}: {value}"
            else:
                assert value in literals, f"{path}: {value}"
    assert len(found) >= 9, found  # the scan itself works


def test_every_variable_has_a_role_default() -> None:
    defaults = role_defaults()
    assert [name for name in VARIABLES if name not in defaults] == []


def test_lab_package_list_holds_every_role_package() -> None:
    """lab/packages.txt (the lab's repository roots) covers what the roles install with every option on."""
    wanted = packages_for({"node": all_features_on()})
    assert {"containerd", "runc", "crun", "lxc", "lxcfs", "fuse3", "iptables", "nginx", "python3-apt"} <= set(
        wanted
    )
    assert sorted(set(wanted) - set(read_package_list())) == []


def test_packages_follow_the_inventory() -> None:
    values = all_features_on()
    values.update(
        containerd_install_method="archive",
        runtimes_crun_enabled=False,
        runtimes_runlxc_artifact={},
        dragonfly_enabled=False,
        pouchd_dependency_packages=["iptables", "ebtables"],
        pouchd_disk_quota=False,
    )
    assert packages_for({"a": values}) == ["ebtables", "fuse3", "iptables", "lxcfs", "python3-apt", "runc"]
    values.update(pouchd_disk_quota=True)
    assert {"quota", "attr", "e2fsprogs"} <= set(packages_for({"a": values}))


def test_artifacts_need_a_pinned_sha256_and_are_merged_by_content() -> None:
    base = all_features_on()
    base.update(dragonfly_enabled=False, runtimes_runlxc_artifact={})
    a = dict(base, pouchd_archive_src="/srv/pouch.tar.gz", pouchd_archive_sha256="SHA256:" + "A" * 64)
    b = dict(a, pouchd_archive_src="/other/pouch-copy.tar.gz")
    assert artifacts_for({"n1": a, "n2": b}) == [
        WantedArtifact("pouchd", "/srv/pouch.tar.gz", "a" * 64, ("n1", "n2"))
    ]
    with pytest.raises(BundleError, match="no valid sha256 in pouchd_archive_sha256"):
        artifacts_for({"n1": dict(a, pouchd_archive_sha256="abc")})
    kata = dict(a, runtimes_kata_artifact={"url": "http://x/kata.tar.xz", "checksum": "sha256:" + "b" * 64})
    assert [w.kind for w in artifacts_for({"n1": kata})] == ["kata", "pouchd"]


def test_normalise_sha256() -> None:
    assert normalise_sha256("sha256:" + "AB" * 32) == "ab" * 32
    assert normalise_sha256(0) == ""
    assert normalise_sha256("xyz") == ""


def test_artifacts_checked_before_copy_reused_and_pruned(tmp_path: Path) -> None:
    src = tmp_path / "pouch.tar.gz"
    src.write_bytes(b"pouch")
    good = hashlib.sha256(b"pouch").hexdigest()
    out, state = tmp_path / "out", tmp_path / "state"
    state.mkdir()
    with pytest.raises(BundleError, match=f"has sha256 {good}, the inventory pins {'c' * 64}"):
        place_artifacts(out, [WantedArtifact("pouchd", str(src), "c" * 64, ("n1",))], state)
    assert list((out / "artifacts").rglob("*")) == []
    paths, sums = place_artifacts(out, [WantedArtifact("pouchd", str(src), good, ("n1",))], state)
    assert paths == ["artifacts/pouchd/pouch.tar.gz"] and sums == {paths[0]: good}
    placed = out / paths[0]
    os.utime(placed, ns=(1, 1))
    place_artifacts(out, [WantedArtifact("pouchd", str(src), good, ("n1",))], state)
    assert placed.stat().st_mtime_ns == 1  # unchanged content: not copied again
    place_artifacts(out, [], state)
    assert not placed.exists() and not (out / "artifacts/pouchd").exists()


def test_artifact_name_from_url_or_path() -> None:
    assert (
        artifact_name("https://example.com/dl/kata-static-3.2.0-amd64.tar.xz?x=1")
        == "kata-static-3.2.0-amd64.tar.xz"
    )
    assert artifact_name("/srv/pouch-1.3.0.tar.gz") == "pouch-1.3.0.tar.gz"
    with pytest.raises(BundleError):
        artifact_name("https://example.com/")
