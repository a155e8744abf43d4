"""roles/kernel_compat through ansible-playbook on localhost: fail-early paths and argument validation.

Every run is in check mode and probe-only or failing before any change, so this machine's sysctls and
files are never touched. Converging the role for real is the molecule scenario's job (lab VMs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kernel_facts"
PYTHON = Path(sys.executable).absolute()

PLAY = """\
- name: kernel_compat under test
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role, record its outcome
      block:
        - name: Include kernel_compat
          ansible.builtin.include_role:
            name: kernel_compat
      rescue:
        - name: Record the failure
          ansible.builtin.copy:
            content: "{{ {'task': ansible_failed_task.name, 'result': ansible_failed_result} | to_json }}"
            dest: "{{ kernel_compat_test_out }}/failure.json"
            mode: "0600"
          check_mode: false
          changed_when: false
        - name: Fail again
          ansible.builtin.fail:
            msg: kernel_compat failed
      always:
        - name: Record pouch_kernel
          ansible.builtin.copy:
            content: "{{ ansible_facts['pouch_kernel'] | to_json }}"
            dest: "{{ kernel_compat_test_out }}/pouch_kernel.json"
            mode: "0600"
          check_mode: false
          changed_when: false
          when: "'pouch_kernel' in ansible_facts"
"""


class Outcome:
    def __init__(self, result: subprocess.CompletedProcess[str], out: Path) -> None:
        self.rc = result.returncode
        self.output = result.stdout + result.stderr
        failure = out / "failure.json"
        self.failure: dict[str, Any] | None = json.loads(failure.read_text()) if failure.exists() else None
        facts = out / "pouch_kernel.json"
        self.pouch_kernel: dict[str, Any] | None = json.loads(facts.read_text()) if facts.exists() else None
        recap = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", result.stdout)
        assert recap, self.output
        self.changed = int(recap.group(1))

    def ran(self, task: str) -> bool:
        return f"TASK [kernel_compat : {task}]" in self.output


def run_role(tmp_path: Path, extra_vars: dict[str, Any]) -> Outcome:
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"kernel_compat_test_out": str(out), **extra_vars}))
    env = ansible_env(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    argv = [ansible_command("ansible-playbook"), "-i", "localhost,", "-c", "local", "--check"]
    argv += ["-e", f"ansible_python_interpreter={PYTHON}", "-e", f"@{vars_file}", str(playbook)]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Outcome(result, out)


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_centos6_without_runlxc_fails_before_any_change(tmp_path: Path) -> None:
    outcome = run_role(tmp_path, {"kernel_compat_recorded_facts": recorded("centos6_2.6.32-754.el6.json")})
    assert outcome.rc != 0
    assert outcome.failure is not None, outcome.output
    assert outcome.failure["task"] == "Stop before changing anything if Pouch cannot run on this kernel"
    message = outcome.failure["result"]["msg"]
    assert "kernel 2.6.32-754.el6.x86_64 is below 3.10: pouchd needs runlxc" in message
    assert "kernel_compat_runlxc_archive" in message
    assert "Nothing was changed on this node." in message
    assert not outcome.ran("Write the Pouch sysctl drop-in")
    assert not outcome.ran("Load the kernel modules Pouch needs now")
    assert outcome.changed == 0


def test_unparsable_release_fails_early(tmp_path: Path) -> None:
    outcome = run_role(tmp_path, {"kernel_compat_recorded_facts": recorded("custom_4.19_unparsable.json")})
    assert outcome.rc != 0
    assert outcome.failure is not None, outcome.output
    assert "'4.19' cannot be parsed by pouchd" in outcome.failure["result"]["msg"]
    assert not outcome.ran("Write the Pouch sysctl drop-in")


def test_recorded_debian12_exports_pouch_kernel_and_changes_nothing(tmp_path: Path) -> None:
    outcome = run_role(tmp_path, {"kernel_compat_recorded_facts": recorded("debian12_6.1.0-50-amd64.json")})
    assert outcome.rc == 0, outcome.output
    assert outcome.pouch_kernel is not None
    assert outcome.pouch_kernel["snapshotter"] == "overlayfs"
    assert outcome.pouch_kernel["default_runtime"] == "runc"
    assert outcome.pouch_kernel["probe"]["kernel"]["release"] == "6.1.0-50-amd64"
    assert outcome.changed == 0


def test_live_probe_only_on_this_machine(tmp_path: Path) -> None:
    outcome = run_role(tmp_path, {"kernel_compat_probe_only": True})
    assert outcome.rc == 0, outcome.output
    assert outcome.pouch_kernel is not None
    assert outcome.pouch_kernel["version"] == os.uname().release
    assert outcome.pouch_kernel["supported"] is True
    assert outcome.changed == 0


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"kernel_compat_snapshotter": "zfs"}, "kernel_compat_snapshotter"),
        ({"kernel_compat_boot_modules": {"overlay": 1}}, "kernel_compat_boot_modules"),
        ({"kernel_compat_inotify_max_user_watches": "lots"}, "kernel_compat_inotify_max_user_watches"),
        (
            {"kernel_compat_runlxc_archive": "https://example.invalid/runlxc.tgz"},
            "kernel_compat_runlxc_checksum",
        ),
        ({"kernel_compat_runlxc_binary": "bin/runlxc"}, "absolute path"),
    ],
    ids=["snapshotter-choice", "modules-type", "inotify-int", "archive-without-checksum", "relative-binary"],
)
def test_bad_variables_are_rejected_before_probing(
    tmp_path: Path, extra_vars: dict[str, Any], message: str
) -> None:
    outcome = run_role(tmp_path, {"kernel_compat_probe_only": True, **extra_vars})
    assert outcome.rc != 0
    assert outcome.failure is not None, outcome.output
    assert message in outcome.failure["result"]["msg"]
    assert outcome.pouch_kernel is None  # failed before the probe
