"""Groups of lab VMs: qemu under software emulation, one qcow2 overlay each over the shared base image.

Every VM has two NICs. The first is qemu user networking with ``restrict=on`` (nothing leaves this
machine): SSH forwarded from 127.0.0.1, and guest forwards that run a per-connection relay to the
shared services (10.0.2.100:80 the apt repository, 10.0.2.101:5000 the registry, 10.0.2.101:5443
the same registry over TLS). The second NIC is a ``dgram`` socket to the group's UDP hub (lab.hub):
the private VM-to-VM network.
Groups (the default lab, one per molecule scenario) are independent; they share the services.

Two boot modes (``VmSpec.boot``). ``direct``: qemu loads the image's kernel and initrd itself
(``-kernel``/``-initrd``/``-append``), fastest. ``firmware``: OVMF (UEFI) starts GRUB from the
shared EFI system partition image, and GRUB boots what the VM's own /boot/grub/grub.cfg says, so
editing /etc/default/grub, ``update-grub`` and a reboot change the kernel command line as on a real
server. The per-VM settings then travel in a qemu fw_cfg item instead of the command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.errors import LabError
from lab.image import FW_CFG_NAME, OVMF_CODE, OVMF_VARS, USER_NIC_MAC, BaseImage, build_esp
from lab.paths import REPO_ROOT, LabPaths
from lab.prereqs import firmware_missing
from lab.procs import (
    free_tcp_port,
    free_udp_port,
    pids_with_marker,
    spawn_detached,
    stop_pid,
    stop_tracked,
    tracked_pid,
)
from lab.services import BLOB_STORE_GUEST_ADDRESS, SharedServices

QEMU = "qemu-system-x86_64"
REPO_GUEST_ADDRESS = "10.0.2.100"
REGISTRY_GUEST_ADDRESS = "10.0.2.101:5000"
REGISTRY_TLS_GUEST_ADDRESS = "10.0.2.101:5443"  # the same images over TLS (lab/services.py)
REGISTRY_REDIRECT_GUEST_ADDRESS = "10.0.2.101:5444"  # over TLS, blobs redirected to the blob store
PRIVATE_NET = "10.77.0"
PRIVATE_FIRST_HOST = 11
HUB_MARKER = "lab.hub"
MEMORY_MB = int(os.environ.get("LAB_VM_MEMORY_MB", "1536"))
# Generous: on a loaded 2-core machine several VMs booting at once took over 6 minutes.
SSH_TIMEOUT = float(os.environ.get("LAB_SSH_TIMEOUT", "900"))
BOOT_MODES = ("direct", "firmware")
ESP_PCI_SLOT = "0x1f"  # the last slot: the root disk, probed first, stays /dev/vda in the guest


@dataclass(frozen=True)
class VmSpec:
    group: str
    name: str
    index: int
    ssh_port: int
    nic_port: int  # UDP port of the private NIC
    machine_id: str  # given on the command line with direct boot; "" with firmware boot (systemd's own)
    # Extra kernel command line, e.g. "systemd.unified_cgroup_hierarchy=0" for the cgroup v1
    # hierarchy that the pouch 1.3.0 release's v1 shim needs (direct boot only).
    kernel_args: str = ""
    # "direct" (qemu -kernel) or "firmware" (OVMF, GRUB, the VM's own grub.cfg); see BOOT_MODES.
    boot: str = "direct"

    @property
    def private_ip(self) -> str:
        return f"{PRIVATE_NET}.{PRIVATE_FIRST_HOST + self.index}"

    @property
    def private_mac(self) -> str:
        return f"52:54:00:77:00:{PRIVATE_FIRST_HOST + self.index:02x}"

    @property
    def lab_settings(self) -> str:
        """What lab-guest-setup (lab/image.py) applies: on the command line, or in fw_cfg."""
        return (
            f"lab.hostname={self.name} lab.private_ip={self.private_ip}/24 lab.private_mac={self.private_mac}"
        )


@dataclass(frozen=True)
class Group:
    name: str
    paths: LabPaths

    @property
    def dir(self) -> Path:
        return self.paths.group_dir(self.name)

    @property
    def spec_file(self) -> Path:
        return self.dir / "group.json"

    @property
    def hub_pidfile(self) -> Path:
        return self.dir / "hub.pid"

    @property
    def hub_log(self) -> Path:
        return self.paths.logs / f"{self.name}-hub.log"

    def vm_dir(self, vm: str) -> Path:
        return self.dir / "vms" / vm

    def console_log(self, vm: str) -> Path:
        return self.paths.logs / f"{self.name}-{vm}-console.log"

    def qemu_log(self, vm: str) -> Path:
        return self.paths.logs / f"{self.name}-{vm}-qemu.log"

    def qemu_pidfile(self, vm: str) -> Path:
        return self.vm_dir(vm) / "qemu.pid"

    def efi_vars(self, vm: str) -> Path:
        """The VM's own UEFI variable store (firmware boot), a copy of OVMF_VARS."""
        return self.vm_dir(vm) / "OVMF_VARS.fd"

    def load(self) -> tuple[int, list[VmSpec]]:
        """(hub port, VMs) as recorded by ``up``; empty when the group was never started."""
        if not self.spec_file.exists():
            return 0, []
        data = json.loads(self.spec_file.read_text())
        return int(data["hub_port"]), [VmSpec(**vm) for vm in data["vms"]]

    def save(self, hub_port: int, vms: list[VmSpec]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {"hub_port": hub_port, "vms": [asdict(vm) for vm in vms]}
        self.spec_file.write_text(json.dumps(data, indent=2))

    def qemu_pid(self, vm: str) -> int | None:
        return tracked_pid(self.qemu_pidfile(vm), str(self.vm_dir(vm)))


def list_groups(paths: LabPaths) -> list[Group]:
    if not paths.groups_dir.exists():
        return []
    return [Group(d.name, paths) for d in sorted(paths.groups_dir.iterdir()) if (d / "group.json").exists()]


def ssh_argv(paths: LabPaths, port: int, *command: str, connect_timeout: int = 10) -> list[str]:
    return [
        "ssh", "-i", str(paths.ssh_key), "-p", str(port),
        "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "root@127.0.0.1", *command,
    ]  # fmt: skip


def relay(port: int) -> str:
    # Run by qemu once per guest connection, speaking on its stdin/stdout (no commas allowed here).
    return f"cmd:socat - TCP:127.0.0.1:{port}"


def qemu_argv(
    group: Group, vm: VmSpec, image: BaseImage, services: SharedServices, hub_port: int
) -> list[str]:
    overlay = group.vm_dir(vm.name) / "overlay.qcow2"
    if vm.boot == "firmware":
        # No -kernel: OVMF boots the ESP (bootindex 0), whose GRUB reads the root disk's grub.cfg.
        # OVMF connects only the devices in the boot order, so the root disk is listed too.
        boot = [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={group.efi_vars(vm.name)}",
            "-drive", f"file={overlay},if=none,id=root,format=qcow2,cache=unsafe",
            "-device", "virtio-blk-pci,drive=root,bootindex=1",
            "-drive", f"file={image.esp},if=none,id=esp,format=raw,readonly=on",
            "-device", f"virtio-blk-pci,drive=esp,bootindex=0,addr={ESP_PCI_SLOT}",
            "-fw_cfg", f"name={FW_CFG_NAME},string={vm.lab_settings}",
        ]  # fmt: skip
    else:
        cmdline = " ".join(
            [
                "root=/dev/vda rw console=ttyS0",
                f"systemd.machine_id={vm.machine_id}",
                vm.lab_settings,
                vm.kernel_args,
            ]
        ).strip()
        boot = [
            "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", cmdline,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        ]  # fmt: skip
    user_nic = ",".join(
        [
            "user,id=usernet,model=virtio-net-pci,restrict=on",
            f"mac={USER_NIC_MAC}",
            f"hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22",
            f"guestfwd=tcp:{REPO_GUEST_ADDRESS}:80-{relay(services.repo_port)}",
            f"guestfwd=tcp:{REGISTRY_GUEST_ADDRESS}-{relay(services.registry_port)}",
            f"guestfwd=tcp:{REGISTRY_TLS_GUEST_ADDRESS}-{relay(services.registry_tls_port)}",
            f"guestfwd=tcp:{REGISTRY_REDIRECT_GUEST_ADDRESS}-{relay(services.registry_redirect_port)}",
            f"guestfwd=tcp:{BLOB_STORE_GUEST_ADDRESS}-{relay(services.blob_store_port)}",
        ]
    )
    private_nic = ",".join(
        [
            "dgram,id=private",
            f"local.type=inet,local.host=127.0.0.1,local.port={vm.nic_port}",
            f"remote.type=inet,remote.host=127.0.0.1,remote.port={hub_port}",
        ]
    )
    return [
        QEMU,
        "-name", f"lab-{group.name}-{vm.name}",
        "-nodefaults", "-display", "none", "-monitor", "none",
        "-machine", "pc", "-accel", "tcg,tb-size=256", "-cpu", "max", "-smp", "1", "-m", str(MEMORY_MB),
        *boot,
        "-nic", user_nic,
        "-netdev", private_nic, "-device", f"virtio-net-pci,netdev=private,mac={vm.private_mac}",
        "-object", "rng-random,id=rng,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng",
        "-serial", f"file:{group.console_log(vm.name)}",
    ]  # fmt: skip


def _create_overlay(group: Group, vm: VmSpec, image: BaseImage) -> None:
    vm_dir = group.vm_dir(vm.name)
    shutil.rmtree(vm_dir, ignore_errors=True)  # a fresh disk every boot: same state as a new node
    vm_dir.mkdir(parents=True)
    log = group.qemu_log(vm.name)
    result = subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            str(image.disk),
            str(vm_dir / "overlay.qcow2"),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log.write_text(result.stdout + result.stderr)
        raise LabError(f"qemu-img could not create the overlay of VM {vm.name}", log)


def _ssh_answers(paths: LabPaths, port: int, timeout: float) -> bool:
    """One SSH login attempt; a guest that accepts TCP but is too slow to answer counts as not up."""
    try:
        probe = subprocess.run(
            ssh_argv(paths, port, "true", connect_timeout=5), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _wait_ssh(group: Group, vm: VmSpec, timeout: float) -> float:
    """Seconds until the VM answers SSH; raises naming its console log if it never does."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < timeout:
        if group.qemu_pid(vm.name) is None:
            raise LabError(
                f"VM {group.name}/{vm.name}: qemu exited during boot "
                f"(qemu log {group.qemu_log(vm.name)}, console {group.console_log(vm.name)})",
                group.qemu_log(vm.name),
            )
        if _ssh_answers(group.paths, vm.ssh_port, timeout=min(30.0, max(5.0, timeout - elapsed))):
            return time.monotonic() - start
        time.sleep(2)
    raise LabError(
        f"VM {group.name}/{vm.name} did not answer SSH on 127.0.0.1:{vm.ssh_port} within {timeout:.0f}s",
        group.console_log(vm.name),
    )


def _start_hub(group: Group, hub_port: int, vms: list[VmSpec]) -> None:
    peers = ",".join(str(vm.nic_port) for vm in vms)
    argv = [
        sys.executable,
        "-m",
        HUB_MARKER,
        "--listen",
        str(hub_port),
        "--peers",
        peers,
        "--tag",
        f"{group.dir}/",
    ]
    proc = spawn_detached(argv, group.hub_log, group.hub_pidfile, cwd=REPO_ROOT)
    time.sleep(0.3)
    if proc.poll() is not None:
        group.hub_pidfile.unlink(missing_ok=True)
        raise LabError(f"the private network hub of group {group.name} exited at start", group.hub_log)


def up_group(
    paths: LabPaths,
    name: str,
    vm_names: list[str],
    image: BaseImage,
    services: SharedServices,
    ssh_timeout: float = SSH_TIMEOUT,
    kernel_args: str = "",
    boot: str = "direct",
) -> tuple[list[VmSpec], dict[str, float]]:
    """Boot the group's VMs in parallel and wait for SSH; returns the VMs and boot-to-SSH seconds.

    ``boot`` is one of BOOT_MODES; ``kernel_args`` apply to direct boot only. On any failure
    everything this group started is stopped again before the error propagates.
    """
    check_boot_mode(boot, kernel_args)
    if shutil.which(QEMU) is None:
        raise LabError(f"{QEMU} is missing (Debian package qemu-system-x86; `make deps` installs it)")
    if shutil.which("qemu-img") is None:
        raise LabError("qemu-img is missing (Debian package qemu-utils; `make deps` installs it)")
    if boot == "firmware":
        build_esp(image, paths.logs / "esp-build.log")
    group = Group(name, paths)
    vms = [
        VmSpec(
            name,
            vm,
            i,
            free_tcp_port(),
            free_udp_port(),
            uuid.uuid4().hex if boot == "direct" else "",
            kernel_args,
            boot,
        )
        for i, vm in enumerate(vm_names)
    ]
    hub_port = free_udp_port()
    group.save(hub_port, vms)
    try:
        _start_hub(group, hub_port, vms)
        for vm in vms:
            _create_overlay(group, vm, image)
            if vm.boot == "firmware":
                shutil.copyfile(OVMF_VARS, group.efi_vars(vm.name))
            argv = qemu_argv(group, vm, image, services, hub_port)
            group.console_log(vm.name).write_text("")
            group.qemu_log(vm.name).write_text(" ".join(argv) + "\n")
            spawn_detached(
                argv, group.qemu_log(vm.name), group.qemu_pidfile(vm.name), cwd=group.vm_dir(vm.name)
            )
        with ThreadPoolExecutor(max_workers=len(vms)) as pool:
            futures = {vm.name: pool.submit(_wait_ssh, group, vm, ssh_timeout) for vm in vms}
            boot_seconds = {vm: future.result() for vm, future in futures.items()}
    except BaseException:
        down_group(paths, name)
        raise
    return vms, boot_seconds


def check_boot_mode(boot: str, kernel_args: str) -> None:
    """Refuse a boot mode the lab does not know, and kernel arguments a firmware boot cannot take."""
    if boot not in BOOT_MODES:
        raise LabError(f"boot mode {boot!r}: use one of {', '.join(BOOT_MODES)}")
    if boot == "firmware" and kernel_args.strip():
        raise LabError(
            f"kernel arguments {kernel_args!r} apply to direct boot only: a VM booted through the "
            "firmware takes its command line from its own /etc/default/grub (edit GRUB_CMDLINE_LINUX, "
            "run update-grub, reboot)"
        )
    if boot == "firmware":
        missing = firmware_missing()
        if missing:
            raise LabError(
                f"booting through the firmware needs: {', '.join(missing)}; install them with `make deps`"
            )


def reusable_group(
    paths: LabPaths, name: str, vm_names: list[str], kernel_args: str = "", boot: str = "direct"
) -> list[VmSpec] | None:
    """The group's VMs if exactly these are running, booted this way with these kernel arguments, and
    answer SSH now; else None (boot afresh)."""
    group = Group(name, paths)
    _, vms = group.load()
    if [vm.name for vm in vms] != vm_names or not all(group.qemu_pid(vm.name) for vm in vms):
        return None
    if any(vm.kernel_args != kernel_args or vm.boot != boot for vm in vms):
        return None
    for vm in vms:
        if not _ssh_answers(paths, vm.ssh_port, timeout=30):
            return None
    return vms


def check_private_network(paths: LabPaths, vms: list[VmSpec]) -> None:
    """Ping every other VM's private address from the first VM (proves the hub carries frames)."""
    if len(vms) < 2:
        return
    first = vms[0]
    for other in vms[1:]:
        result = subprocess.run(
            ssh_argv(paths, first.ssh_port, "ping", "-c", "3", "-W", "5", other.private_ip),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise LabError(
                f"private network: {first.name} cannot ping {other.name} at {other.private_ip}: "
                f"{(result.stdout + result.stderr).strip()[-400:]}",
                Group(first.group, paths).hub_log,
            )


def down_group(paths: LabPaths, name: str) -> list[str]:
    """Stop the group's VMs (their relays die with them) and hub; returns what was stopped."""
    group = Group(name, paths)
    stopped = []
    _, vms = group.load()
    vm_names = {vm.name for vm in vms}
    if (group.dir / "vms").exists():
        vm_names |= {d.name for d in (group.dir / "vms").iterdir()}
    for vm in sorted(vm_names):
        pid = group.qemu_pid(vm)
        if pid is not None:
            _stop_process_group(pid)
            stopped.append(f"qemu {name}/{vm} (pid {pid})")
        group.qemu_pidfile(vm).unlink(missing_ok=True)
    if stop_tracked(group.hub_pidfile, HUB_MARKER):
        stopped.append(f"hub {name}")
    # Anything still carrying the group's directory in its command line is ours and must go
    # (with the trailing "/", so group "a" never matches group "a2").
    for pid in pids_with_marker(f"{group.dir}/"):
        stop_pid(pid)
        stopped.append(f"leftover pid {pid}")
    shutil.rmtree(group.dir, ignore_errors=True)
    return stopped


def _stop_process_group(pid: int) -> None:
    """Stop qemu and the relays it spawned (they share its process group: it leads its session)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    stop_pid(pid, timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
