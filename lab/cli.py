"""``python -m lab COMMAND`` (up, down, status, clean, report, image, repo, artifacts, site): the lab CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from lab.ansible_env import ROOT, ansible_command, ansible_env
from lab.aptrepo import build_repo
from lab.artifacts import archive_environment, describe_archive, dragonfly_archive, pouch_archive
from lab.errors import LabError
from lab.image import build_image
from lab.inventory import INVENTORY_FILE, instance_records, write_inventory
from lab.paths import DEFAULT_GROUP, LabPaths, default_state_dir, state_lock
from lab.prereqs import missing_programs
from lab.procs import pids_with_marker, stop_pid
from lab.services import BLOB_STORE_GUEST_ADDRESS, running_services, start_services, stop_services
from lab.vms import (
    BOOT_MODES,
    REGISTRY_GUEST_ADDRESS,
    REGISTRY_REDIRECT_GUEST_ADDRESS,
    REGISTRY_TLS_GUEST_ADDRESS,
    Group,
    VmSpec,
    check_boot_mode,
    check_private_network,
    down_group,
    list_groups,
    reusable_group,
    ssh_argv,
    up_group,
)

GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# What `report` looks for on a node: units the roles install, and binaries they put on PATH.
REPORT_UNITS = (
    "pouch",
    "containerd",
    "lxcfs",
    "dfdaemon",
    "dragonfly-supernode",
    "dragonfly-dfget-server",
)
REPORT_BINARIES = ("pouch", "pouchd", "ctr", "runc", "crun", "lxcfs", "dfget")
REPORT_SCRIPT = (
    'echo "hostname: $(hostname)"; echo "kernel: $(uname -r)"; '
    "echo \"private address: $(ip -4 -o addr show | awk '/10\\.77\\./ {print $4}')\"; "
    f"for u in {' '.join(REPORT_UNITS)}; do "
    'load=$(systemctl show -P LoadState "$u.service"); '
    'case "$load" in not-found) state="not installed yet" ;; masked) state=masked ;; '
    '*) state=$(systemctl is-active "$u.service") ;; esac; echo "unit $u: $state"; done; '
    f"for b in {' '.join(REPORT_BINARIES)}; do "
    'if command -v "$b" >/dev/null; then echo "binary $b: $(command -v $b)"; '
    'else echo "binary $b: not installed yet"; fi; done'
)


def log(message: str) -> None:
    print(f"lab: {message}", flush=True)


def cmd_image(paths: LabPaths, args: argparse.Namespace) -> int:
    start = time.monotonic()
    with state_lock(paths):
        image = build_image(paths, rebuild=args.rebuild)
    log(f"base image {image.disk} ready ({time.monotonic() - start:.0f}s)")
    return 0


def cmd_repo(paths: LabPaths, args: argparse.Namespace) -> int:
    start = time.monotonic()
    with state_lock(paths):
        repo = build_repo(paths, rebuild=args.rebuild)
    log(f"apt repository {repo.root}: {len(repo.package_names())} packages ({time.monotonic() - start:.0f}s)")
    return 0


def cmd_up(paths: LabPaths, args: argparse.Namespace) -> int:
    group = args.group
    if not GROUP_NAME.match(group):
        raise LabError(f"group name {group!r}: use lower-case letters, digits, '-' and '_'")
    names = (
        [n for n in args.names.split(",") if n]
        if args.names
        else [f"node{i}" for i in range(1, args.nodes + 1)]
    )
    if not names or len(set(names)) != len(names) or not all(GROUP_NAME.match(n) for n in names):
        raise LabError(f"VM names {names!r}: give distinct names of lower-case letters, digits, '-' and '_'")
    missing = missing_programs()
    if missing:
        raise LabError(f"the lab cannot start, missing: {', '.join(missing)}; install them with `make deps`")
    check_boot_mode(args.boot, args.kernel_args)
    paths.ensure()
    started = time.monotonic()
    with state_lock(paths):
        image = build_image(paths)
        services, services_started = start_services(paths)
        reusable = (
            None
            if (args.fresh or services_started)
            else reusable_group(paths, group, names, args.kernel_args, args.boot)
        )
        if reusable is None:
            # Register the group while holding the lock, so a concurrent `down` of another group
            # does not see "no groups left" and stop the services this one is about to use.
            down_group(paths, group)
            Group(group, paths).save(0, [])
    if reusable is not None:
        log(f"group {group} is already running ({', '.join(names)}); `down` first or --fresh for new VMs")
        return _report_up(paths, group, reusable, {}, started, args.json)
    log(f"booting {len(names)} VM(s) in group {group}: {', '.join(names)} (logs: {paths.logs})")
    try:
        vms, boot_seconds = up_group(
            paths, group, names, image, services, kernel_args=args.kernel_args, boot=args.boot
        )
        try:
            check_private_network(paths, vms)
        except BaseException:
            down_group(paths, group)
            raise
    except BaseException:
        with state_lock(paths):
            if services_started and not list_groups(paths):
                stop_services(paths)
        raise
    return _report_up(paths, group, vms, boot_seconds, started, args.json)


def _report_up(
    paths: LabPaths,
    group: str,
    vms: list[VmSpec],
    boot_seconds: dict[str, float],
    started: float,
    as_json: bool,
) -> int:
    for vm in vms:
        boot = f", SSH after {boot_seconds[vm.name]:.0f}s" if vm.name in boot_seconds else ""
        log(f"{group}/{vm.name}: ssh -p {vm.ssh_port} root@127.0.0.1, private {vm.private_ip}{boot}")
    if group == DEFAULT_GROUP:
        log(f"inventory: {write_inventory(paths, vms)}")
    log(f"up in {time.monotonic() - started:.0f}s")
    if as_json:
        print(json.dumps(instance_records(paths, vms)))
    return 0


def _verify_nothing_left(paths: LabPaths, relay_ports: list[int]) -> list[str]:
    """Kill and name anything the lab started that survived the orderly stop."""
    leftovers = []
    markers = [str(paths.groups_dir), str(paths.repo_dir), str(paths.registry_dir)]
    markers += [f"TCP:127.0.0.1:{port}" for port in relay_ports]
    for marker in markers:
        for pid in pids_with_marker(marker):
            stop_pid(pid)
            leftovers.append(f"pid {pid} ({marker})")
    return leftovers


def stop_everything(paths: LabPaths, group: str | None) -> list[str]:
    services = running_services(paths)
    relay_ports = list(dataclasses.astuple(services)) if services else []
    stopped = []
    groups = [Group(group, paths)] if group else list_groups(paths)
    if group is None and paths.groups_dir.exists():  # half-created groups too
        groups = [Group(d.name, paths) for d in paths.groups_dir.iterdir()]
    for g in groups:
        stopped += down_group(paths, g.name)
        if g.name == DEFAULT_GROUP:
            INVENTORY_FILE.unlink(missing_ok=True)
    with state_lock(paths):
        if list_groups(paths):
            return stopped
        stop_services(paths)
        stopped.append("shared services (apt repository HTTP, registry)")
        leftovers = _verify_nothing_left(paths, relay_ports)
        if leftovers:
            stopped.append(f"killed leftovers: {', '.join(leftovers)}")
    return stopped


def cmd_down(paths: LabPaths, args: argparse.Namespace) -> int:
    if not paths.root.exists():
        log(f"nothing to stop: {paths.root} does not exist")
        return 0
    for item in stop_everything(paths, args.group):
        log(f"stopped {item}")
    remaining = list_groups(paths)
    log("down" + (f"; still running: {', '.join(g.name for g in remaining)}" if remaining else ""))
    return 0


def cmd_clean(paths: LabPaths, args: argparse.Namespace) -> int:
    if paths.root.exists():
        stop_everything(paths, None)
        shutil.rmtree(paths.root)
    INVENTORY_FILE.unlink(missing_ok=True)
    log(f"removed {paths.root}")
    return 0


def cmd_status(paths: LabPaths, args: argparse.Namespace) -> int:
    services = running_services(paths)
    print(f"state dir: {paths.root}")
    print(f"logs: {paths.logs}")
    if services:
        print(f"apt repository: {services.repo_url} (guests: http://10.0.2.100/)")
        print(f"registry: {services.registry_address} (guests: {REGISTRY_GUEST_ADDRESS})")
        tls_guests = f"guests: {REGISTRY_TLS_GUEST_ADDRESS}, CA {paths.ca_dir / 'ca.crt'}"
        print(f"registry over TLS: 127.0.0.1:{services.registry_tls_port} ({tls_guests})")
        redirect_guests = f"guests: {REGISTRY_REDIRECT_GUEST_ADDRESS}, same CA"
        print(
            f"registry over TLS, blobs from the blob store: 127.0.0.1:{services.registry_redirect_port} "
            f"({redirect_guests})"
        )
        blob_guests = f"guests: {BLOB_STORE_GUEST_ADDRESS}"
        print(f"blob store (plain HTTP): 127.0.0.1:{services.blob_store_port} ({blob_guests})")
    else:
        print("shared services: not running")
    groups = list_groups(paths)
    if not groups:
        print("VMs: none (start them with `make lab-up`)")
    for g in groups:
        _, vms = g.load()
        for vm in vms:
            pid = g.qemu_pid(vm.name)
            state = f"running (pid {pid})" if pid else "stopped"
            print(f"{g.name}/{vm.name}: {state}, ssh 127.0.0.1:{vm.ssh_port}, private {vm.private_ip}, "
                  f"console {g.console_log(vm.name)}")  # fmt: skip
    return 0


def cmd_report(paths: LabPaths, args: argparse.Namespace) -> int:
    group = Group(args.group, paths)
    _, vms = group.load()
    running = [vm for vm in vms if group.qemu_pid(vm.name)]
    if not running:
        print(f"lab report: no VM of group {args.group} is running; start the lab with `make lab-up`")
        return 1
    print(f"lab report: what is provisioned on the {len(running)} node(s) of group {args.group}")
    failed = 0
    with ThreadPoolExecutor(max_workers=len(running)) as pool:
        results = pool.map(
            lambda vm: subprocess.run(
                ssh_argv(paths, vm.ssh_port, REPORT_SCRIPT), capture_output=True, text=True
            ),
            running,
        )
    for vm, result in zip(running, results, strict=True):
        print(f"== {vm.name} (ssh -p {vm.ssh_port} root@127.0.0.1)")
        if result.returncode != 0:
            failed += 1
            print(f"   unreachable: {result.stderr.strip()} (console: {group.console_log(vm.name)})")
            continue
        for line in result.stdout.splitlines():
            print(f"   {line}")
    print("('not installed yet' means no role has provisioned that piece on the node so far)")
    return 1 if failed else 0


def print_archives() -> None:
    """Name the pouch (and Dragonfly) archive a run installs: path, where it was found, version, build."""
    found = pouch_archive()
    if found is None:
        log(
            "pouch archive: none (set POUCH_ARCHIVE to a pouch-<version>-linux-amd64.tar.gz with its .sha256)"
        )
    else:
        log(f"pouch archive: {describe_archive(*found)}")
    dragonfly = dragonfly_archive()
    if dragonfly is not None:
        log(f"Dragonfly archive: {dragonfly[0]} ({dragonfly[1]})")


def cmd_artifacts(paths: LabPaths, args: argparse.Namespace) -> int:
    print_archives()
    return 0


def cmd_site(paths: LabPaths, args: argparse.Namespace) -> int:
    """playbooks/site.yml on the default group with the archives print_archives names, then the report."""
    print_archives()
    playbook = [
        ansible_command("ansible-playbook"),
        "-i",
        str(ROOT / "inventories/lab"),
        str(ROOT / "playbooks/site.yml"),
    ]
    result = subprocess.run(
        [*playbook, *args.ansible_args], cwd=ROOT, env=ansible_env(**archive_environment())
    )
    if result.returncode != 0:
        return result.returncode
    return cmd_report(paths, argparse.Namespace(group=DEFAULT_GROUP))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description="The local VM lab (see README).")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build what is missing, start the services, boot a group of VMs")
    up.add_argument("--nodes", type=int, default=3, help="number of VMs (node1..nodeN), default 3")
    up.add_argument("--names", help="comma-separated VM names (instead of --nodes)")
    up.add_argument(
        "--group", default=DEFAULT_GROUP, help="independent group of VMs, e.g. a molecule scenario"
    )
    up.add_argument("--json", action="store_true", help="print the VMs as JSON (molecule instance config)")
    up.add_argument("--fresh", action="store_true", help="reboot the group on new disks even if it runs")
    up.add_argument(
        "--kernel-args",
        default="",
        help="more kernel command line for the group's VMs, e.g. systemd.unified_cgroup_hierarchy=0 "
        "(direct boot only)",
    )
    up.add_argument(
        "--boot",
        choices=BOOT_MODES,
        default="direct",
        help="direct: qemu loads the kernel (default, fastest); firmware: UEFI firmware and GRUB boot "
        "what the VM's /boot/grub/grub.cfg says (update-grub in the VM changes the command line)",
    )
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop VMs and services (all groups unless --group)")
    down.add_argument("--group", help="stop only this group; the services stop with the last group")
    down.set_defaults(func=cmd_down)
    sub.add_parser("status", help="show services, VMs and logs").set_defaults(func=cmd_status)
    sub.add_parser("clean", help="down, then delete the state dir").set_defaults(func=cmd_clean)
    report = sub.add_parser("report", help="show what is provisioned on each node")
    report.add_argument("--group", default=DEFAULT_GROUP)
    report.set_defaults(func=cmd_report)
    image = sub.add_parser("image", help="build the base image if its inputs changed")
    image.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    image.set_defaults(func=cmd_image)
    repo = sub.add_parser("repo", help="build the apt repository if the package list changed")
    repo.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    repo.set_defaults(func=cmd_repo)
    sub.add_parser(
        "artifacts",
        help="name the pouch and Dragonfly archives runs use (POUCH_ARCHIVE, ../shared/artifacts, ...)",
    ).set_defaults(func=cmd_artifacts)
    site = sub.add_parser("site", help="run playbooks/site.yml on the default group, then report")
    site.add_argument("ansible_args", nargs="*", help="more ansible-playbook arguments (after --)")
    site.set_defaults(func=cmd_site)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = LabPaths(default_state_dir())
    try:
        return int(args.func(paths, args))
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
