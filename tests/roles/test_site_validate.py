"""site.yml checks every node's inputs in its first play, before any role changes anything.

Runs site.yml against this machine (connection local) with bad inputs, in check mode as a guard:
the run must stop in the first play with a message naming the cause, having run no other task.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]
GOOD_SHA = "a" * 64
FIRST_PLAY = "Check every node's inputs and the pouchd build before anything is installed"


def run_site(tmp_path: Path, extra: dict) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "pouch_nodes:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    argv = [ansible_command("ansible-playbook"), "--check", "-i", str(inventory), "playbooks/site.yml"]
    argv += ["-e", json.dumps({"pouchd_remove_docker": False, **extra})]
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


def failure(result: subprocess.CompletedProcess[str]) -> tuple[str, str, list[str]]:
    """(play name, failure message, every task that ran) of a run that failed, from its output."""
    assert result.returncode != 0, result.stdout[-2000:]
    play, tasks = "", []
    for line in result.stdout.splitlines():
        if line.startswith("PLAY [") and "RECAP" not in line:
            play = line[len("PLAY [") : line.index("]")]
        elif line.startswith("TASK ["):
            tasks.append(line[len("TASK [") : line.rindex("]")])
        elif line.startswith("fatal: [localhost]: FAILED! => "):
            return play, json.loads(line.split(" => ", 1)[1])["msg"], tasks
    raise AssertionError(f"no failed task in:\n{result.stdout[-3000:]}")


BAD_INPUTS = [
    pytest.param(
        {"pouchd_archive_src": "", "pouchd_archive_url": ""}, "pouchd_archive_src or", id="no-archive"
    ),
    pytest.param(
        {"pouchd_archive_src": "/nonexistent.tar.gz", "pouchd_archive_sha256": "abc"},
        "64 hex digits",
        id="short-sha256",
    ),
    pytest.param(
        {
            "pouchd_archive_src": "/x.tar.gz",
            "pouchd_archive_sha256": GOOD_SHA,
            "pouchd_tcp_listen": ["tcp://0.0.0.0:2375"],
        },
        "client-certificate verification",
        id="tcp-without-tls",
    ),
    pytest.param(
        {
            "pouchd_archive_src": "/x.tar.gz",
            "pouchd_archive_sha256": GOOD_SHA,
            "pouchd_insecure_registries": ["http://10.0.2.101:5000"],
        },
        "without a scheme",
        id="registry-with-scheme",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), BAD_INPUTS)
def test_bad_input_stops_site_in_its_first_play(tmp_path: Path, extra: dict, expected: str) -> None:
    play, message, ran = failure(run_site(tmp_path, extra))
    assert play == FIRST_PLAY
    assert expected in message, message
    # Nothing but fact gathering and the read-only checks ran (the offline bundle's read-only
    # include is listed, skipped: no pouch_bundle_url here).
    assert ran[0] == "Gathering Facts", ran
    read_only = ("Check pouchd", "pouchd : ", "Point the artifact variables at the offline bundle")
    assert all(name.startswith(read_only) for name in ran[1:]), ran


def test_a_setting_the_build_lacks_stops_site_in_its_first_play(tmp_path: Path) -> None:
    """The release archive's pouchd, unpacked in a download cache here, is asked what it supports:
    insecure-registries stops the run in the first play, naming the setting, the build and the way out."""
    from pouch_builds import archive_without_insecure_registries

    archive, build = archive_without_insecure_registries()
    sha256 = (archive.parent / (archive.name + ".sha256")).read_text().split()[0]
    cache = tmp_path / "cache"
    play, message, ran = failure(
        run_site(
            tmp_path,
            {
                "pouchd_archive_src": str(archive),
                "pouchd_archive_sha256": sha256,
                "pouchd_cache_dir": str(cache),
                "pouchd_insecure_registries": ["10.0.2.101:5000"],
                # This machine has dockerd for the module tests; the run is in check mode and stops
                # in its first play, before the removal would be planned.
                "pouchd_remove_docker": True,
            },
        )
    )
    assert play == FIRST_PLAY
    for part in (
        "insecure-registries",
        f"build {build.capabilities()['build']}",
        "10.0.2.101:5000",
        "over TLS",
    ):
        assert part in message, message
    assert ran[-1] == "pouchd : Learn what this pouchd build supports and fit config.json to it", ran
    # Only the download cache was written: the archive and its unpacked binaries.
    assert sorted(p.name for p in cache.iterdir()) == [f"pouch-{sha256[:16]}", f"pouch-{sha256[:16]}.tar.gz"]
