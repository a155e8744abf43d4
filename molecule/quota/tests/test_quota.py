"""A container with a disk quota on a prjquota home: the quota is enforced inside the container,
raised in place by pouch_container (an update, not a recreate), and converge reruns change nothing."""

from __future__ import annotations

import json

SIDE_EFFECT_RECORD = "/root/quota-side-effect.json"
NAME = "quota-check"
MIB = 1024 * 1024


def inspect(host) -> dict:
    return json.loads(host.check_output(f"pouch inspect {NAME}"))[0]


def write_mib(host, path: str, mib: int):
    return host.run(f"pouch exec {NAME} dd if=/dev/zero of={path} bs=1M count={mib}")


def test_home_is_on_a_prjquota_filesystem(host) -> None:
    out = host.check_output("findmnt -n -o FSTYPE,OPTIONS /var/lib/pouch")
    assert out.startswith("ext4") and "prjquota" in out, out


def test_quota_tools_installed_by_the_role(host) -> None:
    for package in ("quota", "e2fsprogs", "attr"):
        assert host.package(package).is_installed, package


def test_raised_in_place_not_recreated(host) -> None:
    record = json.loads(host.file(SIDE_EFFECT_RECORD).content_string)
    assert record["predicted"] == ["update"], record
    assert record["raised"] == ["update"], record
    assert record["before_id"] == record["after_id"], record
    assert record["diff"]["before"]["disk_quota"] == {"/": "32m"}, record["diff"]
    assert record["diff"]["after"]["disk_quota"] == {"/": "64m"}, record["diff"]


def project_id(host) -> int:
    """The project ID pouchd put on the container's writable layer (quota_id -1: allocated)."""
    upper = inspect(host)["GraphDriver"]["Data"]["UpperDir"]
    return int(host.check_output(f"lsattr -pd {upper}").split()[0])


def test_daemon_holds_the_quota(host) -> None:
    config = inspect(host)["Config"]
    assert config["DiskQuota"] == {"/": "64m"}, config
    # pouchd allocates project IDs from 16777216 up (and does not report it in inspect).
    assert project_id(host) >= 16777216


def test_container_sees_its_quota_as_its_disk_size(host) -> None:
    # overlayfs reports the upper directory's project quota as the filesystem size
    total_kib = int(host.check_output(f"pouch exec {NAME} df -k /").splitlines()[-1].split()[1])
    assert 60 * 1024 <= total_kib <= 64 * 1024, total_kib


def test_quota_is_enforced_inside_the_container(host) -> None:
    try:
        # 48 MiB fits under the raised quota (and would not have under the first, 32 MiB)
        fits = write_mib(host, "/fits", 48)
        assert fits.rc == 0, fits.stderr
        over = write_mib(host, "/over", 32)
        assert over.rc != 0, over.stdout
        assert "Disk quota exceeded" in over.stderr, over.stderr
    finally:
        host.run(f"pouch exec {NAME} rm -f /fits /over")


def test_quota_shows_in_the_project_report(host) -> None:
    quota_id = project_id(host)
    report = host.check_output("repquota -P -n /var/lib/pouch")
    line = next((row for row in report.splitlines() if row.strip().startswith(f"#{quota_id} ")), None)
    assert line is not None, report
    # columns: id, flags, used, soft, hard (KiB)
    hard_kib = int(line.split()[4])
    assert hard_kib == 64 * 1024, line
