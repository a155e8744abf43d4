#!/usr/bin/env python3
"""site.yml wall time on fresh lab VMs: 1 VM and 3 at once, first run and no-op rerun, per role.

For each size N (default 1 and 3) it boots a fresh lab group of N VMs (`bench-site<N>`), runs
site.yml (first run), site.yml again (must report changed=0: the no-op rerun) and a bare
fact-gathering play, all against that group, and prints wall times, the per-role times from the
task_timings callback and the ratio no-op rerun / fact gathering (developers' guide target: at most
4x). Results also go to bench/results/site_bench.json. The group is torn down afterwards.

Needs the pouch archive like `make site` (POUCH_ARCHIVE or the lab inventory's fallback). Not part
of the test suite: under emulation a first run takes tens of minutes.

    .venv/bin/python bench/site_bench.py [--sizes 1,3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.ansible_env import ansible_command, ansible_env  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
ROLE_LINE = re.compile(r"^\s*([\d.]+)s\s+(\S+)\s*$")
FACTS_ONLY = """
- name: Gather facts only (the floor)
  hosts: pouch_nodes
  gather_facts: true
  tasks: []
"""


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True)


def playbook(inventory: Path, play: Path) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run(
        [ansible_command("ansible-playbook"), "-i", str(inventory), str(play)],
        cwd=ROOT,
        env=ansible_env(TASK_TIMINGS_TOP="5"),
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{play.name} failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )
    return elapsed, result.stdout


def role_times(output: str) -> dict[str, float]:
    """The ROLE TIMINGS block printed by plugins/callback/task_timings.py."""
    block = output.split("ROLE TIMINGS", 1)[-1] if "ROLE TIMINGS" in output else ""
    return {m.group(2): float(m.group(1)) for line in block.splitlines() if (m := ROLE_LINE.match(line))}


def changed_hosts(output: str) -> dict[str, int]:
    return {host: int(changed) for host, changed, _, _ in RECAP.findall(output) if int(changed)}


def bench_size(size: int, rounds: int, workdir: Path) -> dict:
    group = f"bench-site{size}"
    names = ",".join(f"site{i}" for i in range(1, size + 1))
    # The lab's default build is the 1.3.0 release, which has only the v1 shim: the VMs boot with
    # the cgroup v1 hierarchy, so site.yml needs no GRUB switch and reboot (not what is measured).
    up = lab(
        "up",
        "--group",
        group,
        "--names",
        names,
        "--fresh",
        "--json",
        "--kernel-args",
        "systemd.unified_cgroup_hierarchy=0",
    )
    if up.returncode != 0:
        raise SystemExit(f"lab up failed:\n{up.stderr[-3000:]}")
    try:
        records = json.loads(up.stdout.strip().splitlines()[-1])
        hosts = {
            r["instance"]: {
                "ansible_host": r["address"],
                "ansible_port": r["port"],
                "ansible_user": r["user"],
                "ansible_ssh_private_key_file": r["identity_file"],
                "lab_private_ip": r["lab_private_ip"],
            }
            for r in records
        }
        inventory = workdir / f"inventory-{size}"
        inventory.mkdir()
        # JSON is valid YAML; group_vars are the lab inventory's own.
        (inventory / "hosts.yml").write_text(json.dumps({"pouch_nodes": {"hosts": hosts}}))
        (inventory / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
        facts_play = workdir / "facts.yml"
        facts_play.write_text(FACTS_ONLY)
        site = ROOT / "playbooks" / "site.yml"

        first_s, first_out = playbook(inventory, site)
        print(f"{size} VM(s): first site.yml run {first_s:.0f}s")
        noop_s: list[float] = []
        facts_s: list[float] = []
        noop_out = ""
        for _ in range(rounds):
            elapsed, noop_out = playbook(inventory, site)
            if changed_hosts(noop_out):
                raise SystemExit(f"the site.yml rerun changed something: {changed_hosts(noop_out)}")
            noop_s.append(elapsed)
            facts_s.append(playbook(inventory, facts_play)[0])
        noop, facts = statistics.median(noop_s), statistics.median(facts_s)
        result = {
            "vms": size,
            "first_run_s": round(first_s, 1),
            "first_run_roles_s": role_times(first_out),
            "noop_rerun_median_s": round(noop, 1),
            "noop_rerun_roles_s": role_times(noop_out),
            "facts_only_median_s": round(facts, 1),
            "noop_over_facts": round(noop / facts, 2),
        }
        print(
            f"{size} VM(s): no-op rerun {noop:.1f}s, facts only {facts:.1f}s, ratio {noop / facts:.2f}x "
            "(target at most 4x)"
        )
        return result
    finally:
        lab("down", "--group", group)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,3", help="comma-separated group sizes (default 1,3)")
    parser.add_argument("--rounds", type=int, default=3, help="no-op reruns and fact runs per size")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "site_bench.json", help="results file"
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="site-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",") if s):
            results.append(bench_size(size, args.rounds, Path(tmp)))
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
