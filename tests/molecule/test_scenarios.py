"""Every molecule scenario (molecule/*/molecule.yml, except shared) run for real on lab VMs.

A scenario may declare what it needs beyond the lab in ``molecule/<name>/requires.txt``, one
requirement per line (``#`` starts a comment)::

    pouch_bin_dir        # $POUCH_BIN_DIR holds executable pouchd and pouch
    env:SOME_VARIABLE    # that variable is set

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
from lab.paths import LabPaths, default_state_dir
from lab.prereqs import lab_missing, requirement_missing
from lab.procs import pids_with_marker

ROOT = Path(__file__).resolve().parents[2]
MOLECULE_DIR = ROOT / "molecule"
# The lab's own proof first, then the whole site.yml, then the per-role scenarios: when CI's time
# budget (tests/conftest.py) runs short, what is skipped is the narrowest.
FIRST = ("smoke", "default", "pouchd")
SCENARIOS = sorted(
    (d.name for d in MOLECULE_DIR.iterdir() if d.name != "shared" and (d / "molecule.yml").exists()),
    key=lambda name: (FIRST.index(name) if name in FIRST else len(FIRST), name),
)
TIMEOUT = int(os.environ.get("MOLECULE_SCENARIO_TIMEOUT", "2400"))


def scenario_requirements(name: str) -> list[str]:
    spec = MOLECULE_DIR / name / "requires.txt"
    if not spec.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in spec.read_text().splitlines())
    return [line for line in lines if line]


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
        try:
            result = subprocess.run(
                [ansible_command("molecule"), "test", "-s", scenario],
                cwd=ROOT,
                env=ansible_env(),
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
            [sys.executable, "-m", "lab", "down", "--group", scenario], cwd=ROOT, capture_output=True
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
