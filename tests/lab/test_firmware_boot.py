"""VMs booted through the firmware: OVMF, the ESP's GRUB, then the VM's own /boot/grub/grub.cfg.

The qemu command lines and the refusals need no VM. One test boots a VM and changes its kernel
command line the way an operator does on a real server (GRUB_CMDLINE_LINUX in /etc/default/grub,
update-grub, reboot): cgroup v2 before, the v1 hierarchy after. It skips, naming what is absent,
without qemu, debootstrap, OVMF, GRUB's EFI build or mtools; it builds the base image if needed, but
never under another group's running VMs (the image is their overlays' backing file).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lab.cli import stop_everything
from lab.errors import LabError
from lab.image import FW_CFG_NAME, OVMF_CODE, BaseImage, build_esp, build_image, image_is_current
from lab.paths import LabPaths, default_state_dir, state_lock
from lab.prereqs import firmware_missing, lab_missing
from lab.procs import pids_with_marker
from lab.services import SharedServices
from lab.vms import SSH_TIMEOUT, Group, VmSpec, list_groups, qemu_argv, ssh_argv, up_group

GROUP = "fwboot"
CGROUP_V1 = "systemd.unified_cgroup_hierarchy=0"
# The test VM talks only SSH: its apt and registry forwards may point nowhere.
NO_SERVICES = SharedServices(1, 1, 1, 1, 1)


def option(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` in a qemu command line."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@pytest.fixture
def paths(tmp_path: Path) -> LabPaths:
    lab_paths = LabPaths(tmp_path / "state")
    lab_paths.ensure()
    return lab_paths


def test_firmware_qemu_argv_boots_the_esp_and_passes_settings_in_fw_cfg(paths: LabPaths) -> None:
    group = Group("g", paths)
    image = BaseImage.in_dir(paths.image_dir)
    vm = VmSpec("g", "vm1", 0, 2222, 3333, "", boot="firmware")
    argv = qemu_argv(group, vm, image, SharedServices(1, 2, 3, 5, 6), 4444)
    assert not {"-kernel", "-initrd", "-append", "-no-reboot"} & set(argv)
    drives = option(argv, "-drive")
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}" in drives
    assert f"if=pflash,format=raw,unit=1,file={group.efi_vars('vm1')}" in drives
    assert f"file={image.esp},if=none,id=esp,format=raw,readonly=on" in drives
    assert f"file={group.vm_dir('vm1') / 'overlay.qcow2'},if=none,id=root,format=qcow2,cache=unsafe" in drives
    devices = option(argv, "-device")
    # The ESP boots first and sits in the last PCI slot, so the root disk stays /dev/vda.
    assert "virtio-blk-pci,drive=esp,bootindex=0,addr=0x1f" in devices
    assert "virtio-blk-pci,drive=root,bootindex=1" in devices
    settings = "lab.hostname=vm1 lab.private_ip=10.77.0.11/24 lab.private_mac=52:54:00:77:00:0b"
    assert option(argv, "-fw_cfg") == [f"name={FW_CFG_NAME},string={settings}"]
    assert "," not in settings  # qemu would split the option there


def test_direct_qemu_argv_is_unchanged(paths: LabPaths) -> None:
    group = Group("g", paths)
    image = BaseImage.in_dir(paths.image_dir)
    vm = VmSpec("g", "vm2", 1, 2222, 3333, "abc", kernel_args=CGROUP_V1)
    argv = qemu_argv(group, vm, image, SharedServices(1, 2, 3, 5, 6), 4444)
    assert option(argv, "-kernel") == [str(image.kernel)]
    assert option(argv, "-append") == [
        "root=/dev/vda rw console=ttyS0 systemd.machine_id=abc lab.hostname=vm2 "
        f"lab.private_ip=10.77.0.12/24 lab.private_mac=52:54:00:77:00:0c {CGROUP_V1}"
    ]
    assert option(argv, "-drive") == [
        f"file={group.vm_dir('vm2') / 'overlay.qcow2'},if=virtio,format=qcow2,cache=unsafe"
    ]
    assert not {"-fw_cfg", "-no-reboot"} & set(argv)


@pytest.mark.parametrize(
    ("boot", "kernel_args", "message"),
    [
        ("firmware", CGROUP_V1, "apply to direct boot only.*/etc/default/grub"),
        ("bios", "", "boot mode 'bios': use one of direct, firmware"),
    ],
)
def test_bad_boot_requests_are_refused_before_anything_starts(
    paths: LabPaths, boot: str, kernel_args: str, message: str
) -> None:
    image = BaseImage.in_dir(paths.image_dir)
    with pytest.raises(LabError, match=message):
        up_group(paths, "refused", ["vm1"], image, NO_SERVICES, kernel_args=kernel_args, boot=boot)
    assert not Group("refused", paths).dir.exists()
    assert not pids_with_marker(str(paths.root))


def test_esp_image_holds_grub_and_is_cached(paths: LabPaths) -> None:
    missing = firmware_missing()
    if missing:
        pytest.skip(f"the ESP build needs: {', '.join(missing)}")
    image = BaseImage.in_dir(paths.image_dir)
    esp = build_esp(image, paths.logs / "esp-build.log")
    listing = subprocess.run(
        ["mdir", "-i", str(esp), "-b", "::/EFI/BOOT"], capture_output=True, text=True, check=True
    )
    assert "::/EFI/BOOT/BOOTX64.EFI" in listing.stdout
    built = esp.stat().st_mtime_ns
    assert build_esp(image, paths.logs / "esp-build.log") == esp
    assert esp.stat().st_mtime_ns == built, "an unchanged ESP was rebuilt"
    assert {p.name for p in paths.image_dir.iterdir()} == {"esp.img", "esp.stamp"}  # no work dir left


class Vm:
    """SSH to one VM of the test group; a failed command fails the test with its output."""

    def __init__(self, paths: LabPaths, vm: VmSpec) -> None:
        self.paths, self.vm, self.group = paths, vm, Group(vm.group, paths)

    def run(self, script: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ssh_argv(self.paths, self.vm.ssh_port, script), capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, (
            f"{script!r} on {self.vm.name} failed ({result.returncode}): {result.stdout}{result.stderr}"
            f"; console: {self.group.console_log(self.vm.name)}"
        )
        return result.stdout.strip()

    def boot_id(self) -> str | None:
        try:
            result = subprocess.run(
                ssh_argv(
                    self.paths, self.vm.ssh_port, "cat /proc/sys/kernel/random/boot_id", connect_timeout=5
                ),
                capture_output=True,
                text=True,
                timeout=30,
            )
        except subprocess.TimeoutExpired:
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    def reboot(self) -> float:
        """Reboot from inside; seconds until SSH answers from the new boot."""
        before = self.boot_id()
        assert before, f"{self.vm.name} does not answer SSH before the reboot"
        self.run("systemctl --no-block reboot")
        start = time.monotonic()
        while time.monotonic() - start < SSH_TIMEOUT:
            assert self.group.qemu_pid(self.vm.name), (
                f"qemu of {self.vm.name} exited on reboot; console: {self.group.console_log(self.vm.name)}"
            )
            after = self.boot_id()
            if after and after != before:
                return time.monotonic() - start
            time.sleep(3)
        pytest.fail(
            f"{self.vm.name} did not come back within {SSH_TIMEOUT:.0f}s of its reboot; "
            f"console: {self.group.console_log(self.vm.name)}"
        )


@pytest.mark.lab
def test_update_grub_and_reboot_change_the_kernel_command_line() -> None:
    paths = LabPaths(default_state_dir())
    missing = lab_missing(paths) + firmware_missing()
    if shutil.which("ssh") is None:
        missing.append("ssh (Debian package openssh-client)")
    if missing:
        pytest.skip(f"a firmware-booted lab VM needs: {'; '.join(missing)}")
    others = [g.name for g in list_groups(paths) if g.name != GROUP]
    if others and not image_is_current(paths):
        pytest.skip(
            f"the base image in {paths.image_dir} must be rebuilt, but groups {', '.join(others)} run on "
            "it; rebuild it when they are down (`python -m lab image`)"
        )
    with state_lock(paths):
        image = build_image(paths)
    stop_everything(paths, GROUP)  # a group left over from an interrupted run
    try:
        vms, boot_seconds = up_group(paths, GROUP, ["vm1"], image, NO_SERVICES, boot="firmware")
        vm = Vm(paths, vms[0])
        assert vm.run("test -d /sys/firmware/efi && findmnt -n -o SOURCE /") == "/dev/vda"
        assert CGROUP_V1.split("=")[0] not in vm.run("cat /proc/cmdline")
        assert vm.run("stat -f -c %T /sys/fs/cgroup && test -e /sys/fs/cgroup/cgroup.controllers") == (
            "cgroup2fs"
        )

        # What the kernel_compat role will do: append to GRUB_CMDLINE_LINUX, update-grub, reboot.
        vm.run(
            f'sed -i \'s/^GRUB_CMDLINE_LINUX="\\(.*\\)"$/GRUB_CMDLINE_LINUX="\\1 {CGROUP_V1}"/\' '
            f"/etc/default/grub && grep -q '^GRUB_CMDLINE_LINUX=\".* {CGROUP_V1}\"$' /etc/default/grub "
            "&& update-grub"
        )
        reboot_seconds = vm.reboot()
        print(f"firmware boot: SSH after {boot_seconds['vm1']:.0f}s; after the reboot {reboot_seconds:.0f}s")

        assert CGROUP_V1 in vm.run("cat /proc/cmdline").split()
        assert vm.run("stat -f -c %T /sys/fs/cgroup && test -d /sys/fs/cgroup/memory") == "tmpfs"
        assert vm.run("hostname") == "vm1"
        assert "10.77.0.11/24" in vm.run("ip -4 -o addr show")
    finally:
        stop_everything(paths, GROUP)
    assert not pids_with_marker(f"{paths.group_dir(GROUP)}/")
