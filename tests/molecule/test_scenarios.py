"""Every molecule scenario (molecule/*/molecule.yml, except shared) run for real on lab VMs.

A scenario may declare what it needs beyond the lab in ``molecule/<name>/requires.txt``, one
requirement per line (``#`` starts a comment)::

    pouch_archive        # a pouch archive to install (POUCH_ARCHIVE, else ../shared/artifacts' build
                         # of lab/artifacts.py's LAB_DEFAULT_BUILD); pouch_archive:release or
                         # pouch_archive:master asks for that build
    dragonfly_archive    # a Dragonfly 1.x archive (DRAGONFLY_ARCHIVE, else ../shared/artifacts)
    env:SOME_VARIABLE    # that variable is set

Where the user set no POUCH_ARCHIVE / DRAGONFLY_ARCHIVE, the scenario gets the archives
lab/artifacts.py finds, and its log starts with the pouch build it installs (version, build commit).

A missing requirement, or a missing piece of the lab itself (qemu, debootstrap, the Debian mirror
when the image is not cached yet), skips the scenario with a reason naming exactly what is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env
from lab.artifacts import LAB_DEFAULT_BUILD, archive_environment, describe_archive, pouch_archive
from lab.paths import LabPaths, default_state_dir
from lab.prereqs import lab_missing, requirement_missing
from lab.procs import pids_with_marker

ROOT = Path(__file__).resolve().parents[2]
MOLECULE_DIR = ROOT / "molecule"
# The lab's own proof first, then the release on a node (and site.yml switching a GRUB-booted node
# for it), then the whole site.yml on master, then the per-role scenarios: when CI's time budget
# (tests/conftest.py) runs short, what is skipped is the narrowest.
FIRST = ("smoke", "release", "cgroup_switch", "default", "pouchd")
# About how long each scenario takes on the 2-core machine with the rest of the suite beside it
# (minutes; image build not included). tests/conftest.py starts a scenario under a time budget only
# when this much is left, and names the figure when it skips one. Unlisted: DEFAULT_MINUTES.
ESTIMATED_MINUTES = {
    "smoke": 6,
    "release": 18,
    "default": 30,
    "pouchd": 22,
    "containerd": 8,
    "kernel_compat": 8,
    "lxcfs": 10,
    "preflight": 6,
    "runtimes": 10,
    "bundle": 12,
    "dragonfly2": 15,
    "audit": 22,
    "quota": 22,
    "reset": 25,
    "bundle_site": 30,
    "faults": 30,
    "upgrade": 35,
    "cgroup_switch": 32,
    "cluster": 50,
}
DEFAULT_MINUTES = 20
SCENARIOS = sorted(
    (d.name for d in MOLECULE_DIR.iterdir() if d.name != "shared" and (d / "molecule.yml").exists()),
    key=lambda name: (FIRST.index(name) if name in FIRST else len(FIRST), name),
)
# One scenario's limit: scenarios beside each other on the 2-core machine took up to 40 min (upgrade
# 37, default stopped at 40 in its verify). Under a CI budget, tests/conftest.py lowers it further.
TIMEOUT = int(os.environ.get("MOLECULE_SCENARIO_TIMEOUT", "3600"))


def scenario_requirements(name: str) -> list[str]:
    spec = MOLECULE_DIR / name / "requires.txt"
    if not spec.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in spec.read_text().splitlines())
    return [line for line in lines if line]


def scenario_build(name: str) -> str:
    """The pouch build kind a scenario installs: pouch_archive:KIND in its requires.txt, else the lab's."""
    kinds = [r.split(":", 1)[1] for r in scenario_requirements(name) if r.startswith("pouch_archive:")]
    return kinds[0] if kinds else LAB_DEFAULT_BUILD


@pytest.mark.lab
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str) -> None:
    paths = LabPaths(default_state_dir())
    missing = lab_missing(paths)
    missing += [r for r in map(requirement_missing, scenario_requirements(scenario)) if r]
    if missing:
        pytest.skip(f"molecule scenario {scenario} needs: {'; '.join(missing)}")
    paths.ensure()
    log = paths.logs / f"molecule-{scenario}.log"
    start = time.monotonic()
    with log.open("w") as out:
        kind = scenario_build(scenario)
        found = pouch_archive(kind)
        if found is not None and any(r.startswith("pouch_archive") for r in scenario_requirements(scenario)):
            build = describe_archive(*found)
            print(f"molecule scenario {scenario} installs {build}")
            out.write(f"# installs {build}\n")
            out.flush()
        try:
            result = subprocess.run(
                [ansible_command("molecule"), "test", "-s", scenario],
                cwd=ROOT,
                env=ansible_env(**archive_environment(kind)),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT,
            )
            rc = result.returncode
        except subprocess.TimeoutExpired:
            rc = -1
    elapsed = time.monotonic() - start
    if rc != 0:
        # Never leave the scenario's VMs behind a failed or timed-out run.
        subprocess.run(
            [sys.executable, "-m", "lab", "down", "--group", f"molecule-{scenario}"],
            cwd=ROOT,
            capture_output=True,
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
    assert rc == 0, (
        f"molecule test -s {scenario} failed (exit {rc}, {elapsed:.0f}s); full log: {log}\n"
        f"--- last lines ---\n{tail}"
    )
    # destroy must leave nothing of the scenario's group running (qemu, its relays, the hub).
    group_dir = f"{paths.group_dir(scenario)}/"
    assert not pids_with_marker(group_dir), f"processes of {group_dir} outlived molecule's destroy"
    print(f"molecule scenario {scenario} passed in {elapsed:.0f}s; log: {log}")
