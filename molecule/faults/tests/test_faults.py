"""A lab VM that was rebooted in the middle of one site.yml run and had pouchd SIGKILLed during
the next (side_effect.yml), then converged by a plain site.yml run and found idempotent by
molecule: both faults happened, and the node works with nothing repaired by hand."""

from __future__ import annotations

import json

IMAGE = "10.0.2.101:5443/library/busybox:latest"  # the lab registry over TLS (lab inventory)
RECORD = "/root/faults-record.json"


def record(host) -> dict:
    return json.loads(host.file(RECORD).content_string)


def test_the_vm_rebooted_in_the_middle_of_a_run(host) -> None:
    rec = record(host)
    assert rec["boot_before"] != rec["boot_after"], rec
    assert int(rec["reboot_run_rc"]) != 0, "the interrupted site.yml run should have failed"
    assert host.file("/root/faults-rebooted-at").exists
    # the reboot happened before pouchd was ever started: the converge run installed it after
    assert rec["boot_after"] == host.file("/proc/sys/kernel/random/boot_id").content_string.strip()


def test_pouchd_was_killed_during_a_run(host) -> None:
    rec = record(host)
    assert rec["killed_pid"].isdigit(), rec
    assert any("status=9/KILL" in line for line in rec["kill_journal"]), rec["kill_journal"]


def test_pouchd_runs_again_as_a_new_process(host) -> None:
    service = host.service("pouch")
    assert service.is_running and service.is_enabled
    pid = host.check_output("systemctl show -p MainPID --value pouch.service").strip()
    assert pid not in ("", "0", record(host)["killed_pid"]), pid


def test_one_containerd_is_left(host) -> None:
    # the killed pouchd's containerd must not linger beside the new one
    containerds = host.run("pgrep -x containerd").stdout.split()
    assert len(containerds) == 1, host.run("ps -ef").stdout
    parent = host.check_output(f"ps -o ppid= -p {containerds[0]}").strip()
    mainpid = host.check_output("systemctl show -p MainPID --value pouch.service").strip()
    assert parent == mainpid, (parent, mainpid)


def test_lxcfs_serves_meminfo(host) -> None:
    assert host.service("lxcfs").is_running
    assert host.check_output("head -n 1 /var/lib/lxc/lxcfs/proc/meminfo").startswith("MemTotal:")


def test_a_container_runs(host) -> None:
    out = host.check_output(f"pouch run --rm {IMAGE} echo faults-converged")
    assert out.strip().endswith("faults-converged"), out


def test_a_container_with_lxcfs_and_a_limit_runs(host) -> None:
    out = host.check_output(f"pouch run --rm -m 64m --enableLxcfs {IMAGE} grep MemTotal /proc/meminfo")
    assert out.split()[1:3] == ["65536", "kB"], out


def test_the_fault_watchers_are_gone(host) -> None:
    for unit in ("faults-reboot.service", "faults-kill-pouchd.service"):
        assert not host.service(unit).is_running, unit
