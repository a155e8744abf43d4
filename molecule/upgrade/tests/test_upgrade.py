"""A lab VM after playbooks/upgrade.yml took it from one pouch archive (the 1.3.0 release by default)
to another (master). Both print version 1.3.0: the builds tell them apart.

side_effect.yml recorded pouchd, lxcfs and the upgrade-survivor container (record_state.py) before
anything, after an upgrade refused for a wrong checksum, and after the upgrade; here the live node
is compared with those records.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from functools import cache
from pathlib import Path

sys.path.insert(0, os.environ["MOLECULE_PROJECT_DIRECTORY"])
from lab.artifacts import build_from_archive

SOCKET = "/var/run/pouchd.sock"
RECORD = "/root/upgrade-check.json"
CONTAINER = "upgrade-survivor"

API_GET = (
    "import http.client,socket,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
    "c=http.client.HTTPConnection('d'); c.sock=s; c.request('GET', sys.argv[2])\n"
    "r=c.getresponse(); sys.stdout.write(r.read().decode()); sys.exit(0 if r.status==200 else 1)\n"
)


@cache
def archive_build(variable: str) -> dict:
    """The version and build commit of the pouchd in the archive ``$variable`` (asked of the binary)."""
    return build_from_archive(Path(os.environ[variable]), variable).capabilities()


def api_get(host, path: str):
    return json.loads(host.check_output(f"python3 -c {shlex.quote(API_GET)} {SOCKET} {shlex.quote(path)}"))


def record(host) -> dict:
    return json.loads(host.file(RECORD).content_string)


def main_pid(host, unit: str) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}").strip())


def test_the_two_archives_hold_different_builds() -> None:
    assert archive_build("POUCH_UPGRADE_FROM_ARCHIVE")["build"] != archive_build("POUCH_ARCHIVE")["build"]


def test_the_node_started_from_the_old_build(host) -> None:
    old = archive_build("POUCH_UPGRADE_FROM_ARCHIVE")
    before = record(host)["before"]
    assert (before["pouchd_version"], before["pouchd_build"]) == (old["version"], old["build"])


def test_a_wrong_checksum_left_the_node_untouched(host) -> None:
    rec = record(host)
    assert rec["after_bad_checksum"] == rec["before"]


def test_pouchd_runs_the_new_build(host) -> None:
    new = archive_build("POUCH_ARCHIVE")
    version = api_get(host, "/version")
    assert (version["Version"], version["GitCommit"].lower()) == (new["version"], new["build"])
    assert f"build: {new['build']}" in host.check_output("/usr/local/bin/pouchd --version")
    assert host.service("pouch").is_running


def test_pouchd_was_restarted_once(host) -> None:
    rec = record(host)
    assert rec["after"]["pouchd_pid"] != rec["before"]["pouchd_pid"]
    # the second run of upgrade.yml (side_effect) did not restart it again
    assert main_pid(host, "pouch.service") == rec["after"]["pouchd_pid"]


def test_the_container_kept_running_with_the_same_pid_and_start_time(host) -> None:
    before = record(host)["before"]["container"]
    assert before["running"] is True and before["pid"] > 0
    state = api_get(host, f"/containers/{CONTAINER}/json")["State"]
    assert state["Running"] is True, state
    assert (state["Pid"], state["StartedAt"]) == (before["pid"], before["started_at"])
    assert host.file(f"/proc/{before['pid']}").exists


def test_lxcfs_kept_its_pid_and_still_serves_the_container(host) -> None:
    rec = record(host)
    assert rec["before"]["lxcfs_pid"] > 0
    assert main_pid(host, "lxcfs.service") == rec["before"]["lxcfs_pid"] == rec["after"]["lxcfs_pid"]
    meminfo = host.check_output(f"pouch exec {CONTAINER} head -n 1 /proc/meminfo")
    assert meminfo.split()[1:3] == ["65536", "kB"], meminfo
