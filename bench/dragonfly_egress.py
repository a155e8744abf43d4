#!/usr/bin/env python3
"""Registry egress and pull time on N lab VMs, without and with Dragonfly, side by side.

Boots a lab group of N VMs (default 3; the first is the Dragonfly supernode), runs
playbooks/site.yml on them with Dragonfly enabled, then pulls two images of the same shape
(the lab's busybox layer plus a --fat-mib MiB layer of incompressible bytes, each with a layer of
its own so no node already holds it) on all N nodes at once:

  without Dragonfly  pouch pull 10.0.2.101:5000/<repo>   (qualified: pouchd skips the mirrors)
  with Dragonfly     pouch pull <repo>                   (unqualified: the local dfdaemon first)

and prints, from the lab registry's access log, the bytes the registry wrote per layer and in
total, plus the pull wall time (all N pulls, started together). Target (issue 6): with Dragonfly
the registry sends at most 1.2x the image size; without it, N x. Not part of the test suite.

Needs the pouch archive (POUCH_ARCHIVE or /opt/pouch/pouch-*.tar.gz) and the Dragonfly 1.x archive
(DRAGONFLY_ARCHIVE or /opt/dragonfly/dragonfly-*.tar.gz), each with its .sha256.

    .venv/bin/python bench/dragonfly_egress.py [--nodes 3] [--fat-mib 64] [--keep]
    .venv/bin/python bench/dragonfly_egress.py --group cluster --no-up   # VMs of a converged
                                                                          # molecule cluster scenario
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "molecule" / "cluster"))

from dfimage import FAT_MIB, egress, push  # noqa: E402

from lab.ansible_env import ansible_command, ansible_env  # noqa: E402
from lab.paths import LabPaths, default_state_dir  # noqa: E402
from lab.vms import REGISTRY_GUEST_ADDRESS, Group, ssh_argv  # noqa: E402

GROUP_VARS = ROOT / "molecule" / "cluster" / "inventory" / "group_vars"


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True)


def inventory(paths: LabPaths, group: str, tmp: Path) -> Path:
    _, vms = Group(group, paths).load()
    if not vms:
        raise SystemExit(f"lab group {group} has no VMs (python -m lab up --group {group})")
    hosts = {
        vm.name: {
            "ansible_host": "127.0.0.1",
            "ansible_port": vm.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(paths.ssh_key),
            "lab_private_ip": vm.private_ip,
        }
        for vm in vms
    }
    inv = {
        "all": {
            "children": {
                "pouch_nodes": {"hosts": hosts},
                "dragonfly_supernodes": {"hosts": {vms[0].name: {}}},
            }
        }
    }
    (tmp / "group_vars").symlink_to(GROUP_VARS)
    path = tmp / "hosts.yml"
    path.write_text(json.dumps(inv))
    return path


def converge(inventory_file: Path) -> float:
    start = time.monotonic()
    log = default_state_dir() / "logs" / "bench-dragonfly-converge.log"
    with log.open("w") as out:
        rc = subprocess.run(
            [ansible_command("ansible-playbook"), "-i", str(inventory_file), "playbooks/site.yml"],
            cwd=ROOT,
            env=ansible_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    if rc != 0:
        raise SystemExit(f"site.yml failed (exit {rc}); see {log}")
    return time.monotonic() - start


def pull_everywhere(paths: LabPaths, group: str, ref: str) -> tuple[float, dict[str, float]]:
    """`pouch pull ref` on every VM of the group at once; (wall seconds, seconds per node)."""
    _, vms = Group(group, paths).load()

    def one(vm) -> tuple[str, float]:
        start = time.monotonic()
        result = subprocess.run(
            ssh_argv(paths, vm.ssh_port, "pouch", "pull", ref), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(
                f"{vm.name}: pouch pull {ref} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return vm.name, time.monotonic() - start

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(vms)) as pool:
        per_node = dict(pool.map(one, vms))
    return time.monotonic() - start, per_node


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--fat-mib", type=int, default=FAT_MIB)
    parser.add_argument("--group", default="dfbench", help="lab group to boot (or reuse with --no-up)")
    parser.add_argument("--no-up", action="store_true", help="use the group's running VMs as they are")
    parser.add_argument("--no-converge", action="store_true", help="skip site.yml (VMs already converged)")
    parser.add_argument("--keep", action="store_true", help="leave the VMs running afterwards")
    args = parser.parse_args()
    paths = LabPaths(default_state_dir())
    booted = False
    try:
        if not args.no_up:
            names = ",".join(f"{args.group}{i}" for i in range(1, args.nodes + 1))
            print(f"booting {args.nodes} lab VMs ({names}) ...", flush=True)
            result = lab("up", "--group", args.group, "--names", names)
            booted = True
            if result.returncode != 0:
                raise SystemExit(f"python -m lab up failed: {result.stderr.strip()[-2000:]}")
        with tempfile.TemporaryDirectory(prefix="dfbench-") as tmp:
            inv = inventory(paths, args.group, Path(tmp))
            if not args.no_converge:
                print("running playbooks/site.yml with Dragonfly enabled ...", flush=True)
                print(f"  converged in {converge(inv):.0f}s", flush=True)
        run = f"dragonfly/bench-{int(time.time())}"
        cases = {}
        for case, seed, qualified in (("without", 1001, True), ("with", 1002, False)):
            info = push(paths, f"{run}-{case}", fat_mib=args.fat_mib, seed=seed)
            ref = f"{REGISTRY_GUEST_ADDRESS}/{info['repo']}:latest" if qualified else f"{info['repo']}:latest"
            print(f"pulling {ref} on every node at once ({case} Dragonfly) ...", flush=True)
            wall, per_node = pull_everywhere(paths, args.group, ref)
            figures = egress(Path(info["registry_log"]), info["repo"], info["log_start_line"], info["blobs"])
            cases[case] = (info, figures, wall, per_node)
    finally:
        if booted and not args.keep:
            lab("down", "--group", args.group)
    n = len(cases["with"][3])
    print()
    print(
        f"Registry egress for {n} nodes pulling at once (bytes the lab registry wrote, from its access log)"
    )
    print(f"{'blob':9} {'size':>11} | {'without Dragonfly':>24} | {'with Dragonfly':>24}")
    for i, blob in enumerate(cases["with"][0]["blobs"]):
        row = f"{blob['kind']:9} {blob['size']:>11}"
        for case in ("without", "with"):
            info, figures = cases[case][0], cases[case][1]
            b = info["blobs"][i]
            served = figures["per_blob"].get(b["digest"], 0)
            row += f" | {served:>13} ({served / b['size']:5.2f}x)  "
        print(row)
    for case in ("without", "with"):
        info, figures, wall, per_node = cases[case]
        ratio = figures["blob_bytes"] / info["image_bytes"]
        nodes = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(per_node.items()))
        print(
            f"{case:>7} Dragonfly: total {figures['blob_bytes']:>11} B = {ratio:.2f}x image "
            f"({info['image_bytes']} B); pull wall time {wall:.1f}s ({nodes})"
        )
        partial = sum(figures["partial_bytes"].values())
        if partial:
            print(
                f"{'':>18} of which {partial} B ({partial / info['image_bytes']:.2f}x) in GETs closed early "
                "(supernode 0.4.1 reads a blob's length with a GET, once per registering peer)"
            )
    ratio = cases["with"][1]["blob_bytes"] / cases["with"][0]["image_bytes"]
    print(f"target: with Dragonfly <= 1.2x image size: {'met' if ratio <= 1.2 else 'NOT met'} ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
