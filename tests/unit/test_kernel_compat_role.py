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
    - name: Learn what a (recorded) pouchd build supports, as site.yml's first play does
      pouchd_capabilities:
        pouchd: "{{ kernel_compat_test_pouchd }}"
      when: kernel_compat_test_pouchd is defined

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

    def skipped(self, task: str) -> bool:
        """The task was reached and skipped on localhost."""
        after = self.output.split(f"TASK [kernel_compat : {task}]", 1)
        return len(after) == 2 and after[1].lstrip("* \n").startswith("skipping: [localhost]")


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


def recorded_pouchd(tmp_path: Path, build: str) -> str:
    """A stand-in pouchd that prints a real build's recorded --version and --help
    (tests/unit/fixtures/pouchd) and holds the runtime type names that build's binary holds."""
    fixtures = FIXTURES.parent / "pouchd"
    types = {"1.3.0-37051654": "", "master-bc5839e3": "# io.containerd.runc.v1 io.containerd.runc.v2\n"}[
        build
    ]
    script = tmp_path / f"pouchd-{build}"
    script.write_text(
        "#!/bin/sh\n"
        + types
        + f'case "$1" in --version) cat {fixtures}/version-{build}.txt;;'
        + f" --help) cat {fixtures}/help-{build}.txt;; esac\n"
    )
    script.chmod(0o755)
    return str(script)


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


def test_a_cgroup_v2_node_and_a_build_with_only_the_v1_shim_stop_before_any_change(tmp_path: Path) -> None:
    """The release's recorded pouchd on a recorded Debian 12 node (pure cgroup v2): a blocker, even in
    probe-only mode. This machine has no GRUB settings file, so the switch is refused as impossible,
    with what to do by hand."""
    outcome = run_role(
        tmp_path,
        {
            "kernel_compat_recorded_facts": recorded("debian12_6.1.0-50-amd64.json"),
            "kernel_compat_test_pouchd": recorded_pouchd(tmp_path, "1.3.0-37051654"),
            "kernel_compat_allow_reboot": True,
        },
    )
    assert outcome.rc != 0 and outcome.failure is not None, outcome.output
    message = outcome.failure["result"]["msg"]
    for part in (
        "pure cgroup v2 hierarchy",
        "pouchd 1.3.0 (build 37051654) has only containerd's v1 shim",
        "no /etc/default/grub",
        "systemd.unified_cgroup_hierarchy=0",
        "Nothing was changed",
    ):
        assert part in message, message
    assert outcome.changed == 0


def test_a_build_with_shim_v2_needs_no_switch(tmp_path: Path) -> None:
    outcome = run_role(
        tmp_path,
        {
            "kernel_compat_recorded_facts": recorded("debian12_6.1.0-50-amd64.json"),
            "kernel_compat_test_pouchd": recorded_pouchd(tmp_path, "master-bc5839e3"),
        },
    )
    assert outcome.rc == 0, outcome.output
    assert outcome.skipped("Look for GRUB's settings file"), outcome.output
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
