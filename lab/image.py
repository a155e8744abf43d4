"""The lab's base image: Debian built with debootstrap into a directory, packed with ``mkfs.ext4 -d``.

No loop mounts: the root filesystem is filled from a directory. The kernel and an initrd (built
once here, on the host, inside the chroot) are copied out and booted directly by qemu, so
``update_initramfs=no`` inside the image keeps package installs in a guest from rebuilding it under
software emulation. The result is cached; a stamp hashes every input, and a change rebuilds it.

The image also boots through a boot loader (``lab up --boot firmware``): OVMF runs the standalone
GRUB of the EFI system partition image (``build_esp``, an mtools-made FAT image beside the base
image), which reads ``/boot/grub/grub.cfg`` from the root disk. The image carries grub2-common, so
``update-grub`` inside a VM rewrites that file from /etc/default/grub as on a real server; a
directly booted VM ignores both files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bundle.debrepo import run_logged as bundle_run_logged
from lab.aptsources import debootstrap_mirror, host_codename
from lab.errors import LabError
from lab.paths import LabPaths

# Bump when the build steps below change, so cached images are rebuilt.
BUILD_VERSION = "7"
IMAGE_SIZE = "4G"
# What a lab node needs before any role runs: boot (systemd, udev, kernel), remote access
# (ssh, python3 and python3-apt for Ansible's apt module), and network checks.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "linux-image-amd64",
    "initramfs-tools",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "iputils-ping",
    "procps",
    "less",
    # update-grub (grub-mkconfig) for VMs booted through the firmware; no grub-install or EFI binaries:
    # the boot loader itself is on the EFI system partition image the host builds (build_esp).
    "grub2-common",
)
# Booted directly: the initrd must carry the virtio drivers for the root disk.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4")
ROOT_LABEL = "labroot"  # the root filesystem's label; the ESP's GRUB finds the root disk by it
USER_NIC_MAC = "52:54:00:12:34:56"  # every VM has its own user network, so one MAC serves all
GUEST_APT_SOURCE = "deb [trusted=yes] http://10.0.2.100/ ./\n"

# The qemu fw_cfg item that carries a firmware-booted VM's settings (no -append there).
FW_CFG_NAME = "opt/pouch-ansible/lab"

GUEST_SETUP = """\
#!/bin/sh
# Per-VM settings, applied at every boot (idempotent):
# lab.hostname=NAME lab.private_ip=ADDR/PREFIX lab.private_mac=MAC
# from the kernel command line (direct boot), else from qemu's fw_cfg item @FW_CFG_NAME@ (a VM
# booted through the firmware and GRUB, whose command line comes from the VM's own grub.cfg).
set -eu
settings=$(cat /proc/cmdline)
case " $settings " in
  *" lab.hostname="*) ;;
  *)
    fwcfg=/sys/firmware/qemu_fw_cfg/by_name/@FW_CFG_NAME@/raw
    [ -e "$fwcfg" ] || modprobe -q qemu_fw_cfg || true
    if [ -r "$fwcfg" ]; then settings=$(cat "$fwcfg"); fi
    ;;
esac
host="" ip="" mac=""
for arg in $settings; do
  case "$arg" in
    lab.hostname=*) host="${arg#lab.hostname=}" ;;
    lab.private_ip=*) ip="${arg#lab.private_ip=}" ;;
    lab.private_mac=*) mac="${arg#lab.private_mac=}" ;;
  esac
done
if [ -n "$host" ]; then
  echo "$host" > /etc/hostname
  echo "$host" > /proc/sys/kernel/hostname
  printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n::1 localhost ip6-localhost\\n' "$host" > /etc/hosts
fi
if [ -n "$ip" ] && [ -n "$mac" ]; then
  cat > /etc/systemd/network/20-lab-private.network <<NETWORK
[Match]
MACAddress=$mac

[Link]
RequiredForOnline=no

[Network]
Address=$ip
LinkLocalAddressing=no
IPv6AcceptRA=no
NETWORK
fi
# Host keys are made here, at first boot, so every VM has its own (no RSA: slow under emulation).
for type in ed25519 ecdsa; do
  [ -e "/etc/ssh/ssh_host_${type}_key" ] || ssh-keygen -q -t "$type" -N "" -f "/etc/ssh/ssh_host_${type}_key"
done
""".replace("@FW_CFG_NAME@", FW_CFG_NAME)

GUEST_SETUP_UNIT = """\
[Unit]
Description=Lab per-VM settings (hostname, private address, SSH host keys)
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=systemd-networkd.service ssh.service network-pre.target sysinit.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-guest-setup

[Install]
WantedBy=sysinit.target
"""

USER_NIC_NETWORK = f"""\
[Match]
MACAddress={USER_NIC_MAC}

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

# /etc/default/grub of the image, read by `update-grub` in a VM. A VM booted through the firmware
# gets its kernel command line from here, as a real server does; GRUB_DISABLE_LINUX_UUID keeps
# root=/dev/vda, the device fstab names.
GRUB_DEFAULTS = """\
# The lab's GRUB settings (lab/image.py). Only VMs booted through the firmware (`lab up --boot
# firmware`) read /boot/grub/grub.cfg: edit this file, run update-grub, reboot.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_LINUX_UUID=true
GRUB_DISABLE_RECOVERY=true
GRUB_DISABLE_OS_PROBER=true
"""

# The image's first /boot/grub/grub.cfg (grub-mkconfig cannot probe the root device in the build
# chroot): the same entry `update-grub` writes from GRUB_DEFAULTS in a booted VM.
INITIAL_GRUB_CFG = """\
# Written by the lab's image build (lab/image.py); `update-grub` in the VM replaces it.
set default=0
set timeout=1
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
menuentry 'Debian GNU/Linux' {
\tinsmod ext2
\tsearch --no-floppy --label --set=root @ROOT_LABEL@
\techo 'Loading Linux @KERNEL_VERSION@ ...'
\tlinux /boot/vmlinuz-@KERNEL_VERSION@ root=/dev/vda ro console=ttyS0
\techo 'Loading initial ramdisk ...'
\tinitrd /boot/initrd.img-@KERNEL_VERSION@
}
"""

# The ESP's GRUB (grub-mkstandalone: every module in a memdisk, this config as its grub.cfg) finds
# the root filesystem by its label and hands over to the grub.cfg there.
ESP_GRUB_CFG = f"""\
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
search --no-floppy --label --set=root {ROOT_LABEL}
if [ -e /boot/grub/grub.cfg ]; then
  configfile /boot/grub/grub.cfg
fi
echo "lab ESP: no /boot/grub/grub.cfg on a filesystem labelled {ROOT_LABEL} (root=$root)"
"""
ESP_VERSION = "1"  # bump when build_esp's steps change
ESP_SIZE_KIB = 16384
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")  # Debian package grub-efi-amd64-bin
# UEFI firmware (Debian package ovmf; the build without Secure Boot or SMM, for `-machine pc`): the
# code read-only, the variable store copied per VM.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")

# Timers and services that would start apt, fsck or wait-for-network work in the middle of a run.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-networkd-wait-online.service",
)


@dataclass(frozen=True)
class BaseImage:
    disk: Path  # raw ext4 filesystem, the backing file of every VM's overlay
    kernel: Path
    initrd: Path

    @classmethod
    def in_dir(cls, image_dir: Path) -> BaseImage:
        return cls(image_dir / "base.raw", image_dir / "vmlinuz", image_dir / "initrd.img")

    @property
    def esp(self) -> Path:
        """The EFI system partition image firmware-booted VMs start from (``build_esp``)."""
        return self.disk.parent / "esp.img"

    def exists(self) -> bool:
        return all(p.exists() for p in (self.disk, self.kernel, self.initrd))


def inputs_digest(pubkey: str, mirror: str, codename: str) -> str:
    inputs = {
        "build_version": BUILD_VERSION,
        "packages": BASE_PACKAGES,
        "initrd_modules": INITRD_MODULES,
        "guest_setup": GUEST_SETUP,
        "guest_setup_unit": GUEST_SETUP_UNIT,
        "user_nic": USER_NIC_NETWORK,
        "masked": MASKED_UNITS,
        "apt_source": GUEST_APT_SOURCE,
        "grub_defaults": GRUB_DEFAULTS,
        "initial_grub_cfg": INITIAL_GRUB_CFG,
        "root_label": ROOT_LABEL,
        "size": IMAGE_SIZE,
        "pubkey": pubkey,
        "mirror": mirror,
        "codename": codename,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def ensure_ssh_key(paths: LabPaths) -> str:
    """The lab's root key (ed25519, 0600, in the state dir); returns the public key."""
    key = paths.ssh_key
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pouch-ansible-lab", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    key.chmod(0o600)
    return key.with_suffix(".pub").read_text().strip()


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(
            f"missing program(s) the lab needs: {', '.join(missing)} "
            "(install them with `make deps` or scripts/install-system-deps)"
        )


def run_logged(step: str, argv: list[str], log: Path, what: str, timeout: float = 1800) -> None:
    """Run one build step with its output appended to ``log``; a failure names the step and the log."""
    bundle_run_logged(step, argv, log, what, timeout=timeout, error=LabError)


def _in_chroot(step: str, rootfs: Path, argv: list[str], log: Path) -> None:
    run_logged(step, ["chroot", str(rootfs), *argv], log, "base image build")


def _configure_rootfs(rootfs: Path, pubkey: str, log: Path) -> None:
    etc = rootfs / "etc"
    (etc / "fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    (etc / "hostname").write_text("lab\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    (etc / "resolv.conf").unlink(missing_ok=True)  # no DNS in the lab: restrict=on, local forwards only
    # Empty machine-id: each VM gets its own from systemd.machine_id= on the kernel command line.
    (etc / "machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    (etc / "ssh/sshd_config.d/lab.conf").write_text(
        "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\nUseDNS no\n"
    )
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    # The guests' only package source is the lab's repository (10.0.2.100 is a guestfwd).
    (etc / "apt/sources.list").write_text(GUEST_APT_SOURCE)
    for extra in (etc / "apt/sources.list.d").glob("*"):
        extra.unlink()
    (etc / "apt/apt.conf.d/90lab").write_text(
        'Acquire::Languages "none";\nAPT::Install-Recommends "false";\n'
    )
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    # An old mtime: Ansible's apt module takes the lists dir's mtime as the last update, so a fresh
    # one would make `cache_valid_time` skip the first `apt-get update` on a new VM.
    for d in (rootfs / "var/lib/apt/lists/partial", rootfs / "var/lib/apt/lists"):
        os.utime(d, (0, 0))
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    network = etc / "systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    (network / "10-lab-user.network").write_text(USER_NIC_NETWORK)
    setup = rootfs / "usr/local/sbin/lab-guest-setup"
    setup.write_text(GUEST_SETUP)
    setup.chmod(0o755)
    (etc / "systemd/system/lab-guest-setup.service").write_text(GUEST_SETUP_UNIT)
    with (etc / "initramfs-tools/modules").open("a") as modules:
        modules.write("".join(f"{m}\n" for m in INITRD_MODULES))
    # Only those modules (and their dependencies): the default ("most") initrd is ~36 MB, and
    # unpacking it and probing its drivers under emulation took most of a minute of every boot.
    conf = etc / "initramfs-tools/initramfs.conf"
    conf.write_text(conf.read_text().replace("MODULES=most", "MODULES=list"))
    _in_chroot("update-initramfs", rootfs, ["update-initramfs", "-u", "-k", "all"], log)
    # From now on the initrd is fixed: a rebuild inside a guest under TCG takes minutes.
    conf = etc / "initramfs-tools/update-initramfs.conf"
    conf.write_text(conf.read_text().replace("update_initramfs=yes", "update_initramfs=no"))
    _write_grub_config(rootfs)
    _in_chroot(
        "systemctl enable", rootfs, ["systemctl", "enable", "systemd-networkd", "lab-guest-setup"], log
    )
    _in_chroot("systemctl mask", rootfs, ["systemctl", "mask", *MASKED_UNITS], log)


def _write_grub_config(rootfs: Path) -> None:
    """/etc/default/grub and a first /boot/grub/grub.cfg for the image's (newest) kernel."""
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabError(f"base image build: no kernel in {rootfs / 'boot'}")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    (rootfs / "etc/default/grub").write_text(GRUB_DEFAULTS)
    grub_dir = rootfs / "boot/grub"
    grub_dir.mkdir(parents=True, exist_ok=True)
    (grub_dir / "grub.cfg").write_text(
        INITIAL_GRUB_CFG.replace("@ROOT_LABEL@", ROOT_LABEL).replace("@KERNEL_VERSION@", version)
    )


def image_is_current(paths: LabPaths) -> bool:
    """Whether ``build_image`` would reuse the cached base image (no rebuild under running VMs)."""
    image = BaseImage.in_dir(paths.image_dir)
    stamp = paths.image_dir / "stamp"
    pubkey = paths.ssh_key.with_suffix(".pub")
    if not (image.exists() and stamp.exists() and pubkey.exists()):
        return False
    codename = host_codename()
    digest = inputs_digest(pubkey.read_text().strip(), debootstrap_mirror(codename), codename)
    return stamp.read_text() == digest


def build_image(paths: LabPaths, rebuild: bool = False, mirror: str | None = None) -> BaseImage:
    """Reuse the cached base image when its inputs are unchanged; otherwise build it (minutes).

    ``mirror`` overrides the Debian mirror read from the host's apt configuration.
    """
    require_tools("debootstrap", "mkfs.ext4", "chroot", "ssh-keygen")
    paths.ensure()
    image = BaseImage.in_dir(paths.image_dir)
    stamp = paths.image_dir / "stamp"
    pubkey = ensure_ssh_key(paths)
    codename = host_codename()
    mirror = mirror or debootstrap_mirror(codename)
    digest = inputs_digest(pubkey, mirror, codename)
    if not rebuild and image.exists() and stamp.exists() and stamp.read_text() == digest:
        return image
    log = paths.logs / "image-build.log"
    log.write_text(f"base image build {time.strftime('%Y-%m-%d %H:%M:%S')} from {mirror} {codename}\n")
    stamp.unlink(missing_ok=True)
    work = paths.image_dir / "build"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    print(f"lab: building the base image (debootstrap {codename}, a few minutes); log: {log}", flush=True)
    try:
        include = f"--include={','.join(BASE_PACKAGES)}"
        debootstrap = ["debootstrap", "--variant=minbase", include, codename, str(rootfs), mirror]
        try:
            run_logged("debootstrap", debootstrap, log, "base image build")
        except LabError:  # one retry: a mirror hiccup (a failed Packages download) is common
            shutil.rmtree(rootfs)
            rootfs.mkdir()
            run_logged("debootstrap (retry)", debootstrap, log, "base image build")
        _configure_rootfs(rootfs, pubkey, log)
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise LabError("base image build: no kernel or initrd in the rootfs's /boot", log)
        shutil.copyfile(kernels[-1], work / "vmlinuz")
        shutil.copyfile(initrds[-1], work / "initrd.img")
        mkfs = ["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", str(rootfs), str(work / "base.raw")]
        run_logged("mkfs.ext4", [*mkfs, IMAGE_SIZE], log, "base image build")
        for part in (image.disk, image.kernel, image.initrd):
            (work / part.name).replace(part)
        stamp.write_text(digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image


def esp_inputs_digest() -> str:
    """What the ESP image is made of: its config and steps, and the host's GRUB EFI build."""
    grub = hashlib.sha256()
    for name in ("kernel.img", "modinfo.sh", "moddep.lst"):
        grub.update((GRUB_EFI_DIR / name).read_bytes())
    inputs = {
        "esp_version": ESP_VERSION,
        "config": ESP_GRUB_CFG,
        "size_kib": ESP_SIZE_KIB,
        "grub": grub.hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def build_esp(image: BaseImage, log: Path) -> Path:
    """The EFI system partition image beside the base image (cached; rebuilt when its inputs change).

    A FAT filesystem made with mtools (no loop mount) holding /EFI/BOOT/BOOTX64.EFI: GRUB built by
    grub-mkstandalone with every x86_64-efi module in its memdisk and ESP_GRUB_CFG as its config.
    Firmware-booted VMs share it read-only. Seconds to build.
    """
    require_tools("grub-mkstandalone", "mformat", "mmd", "mcopy")
    if not (GRUB_EFI_DIR / "modinfo.sh").exists():
        raise LabError(
            f"GRUB's EFI modules ({GRUB_EFI_DIR}) are missing: install the Debian package "
            "grub-efi-amd64-bin (`make deps` or scripts/install-system-deps)"
        )
    stamp = image.esp.with_name("esp.stamp")
    digest = esp_inputs_digest()
    if image.esp.exists() and stamp.exists() and stamp.read_text() == digest:
        return image.esp
    image.esp.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"EFI system partition build {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    # A private work dir, renamed into place at the end: concurrent `lab up`s never see half an image.
    work = Path(tempfile.mkdtemp(prefix="esp-build-", dir=image.esp.parent))
    try:
        config = work / "grub.cfg"
        config.write_text(ESP_GRUB_CFG)
        efi = work / "BOOTX64.EFI"
        mkstandalone = ["grub-mkstandalone", "-O", "x86_64-efi", "--directory", str(GRUB_EFI_DIR)]
        # No locales, fonts or themes (serial console only); the config becomes the memdisk's grub.cfg.
        mkstandalone += [
            "--locales=",
            "--fonts=",
            "--themes=",
            "-o",
            str(efi),
            f"boot/grub/grub.cfg={config}",
        ]
        run_logged("grub-mkstandalone", mkstandalone, log, "EFI system partition build")
        esp = work / "esp.img"
        with esp.open("wb") as f:
            f.truncate(ESP_SIZE_KIB * 1024)
        for step, argv in (
            ("mformat", ["mformat", "-i", str(esp), "-v", "LABESP", "::"]),
            ("mmd", ["mmd", "-i", str(esp), "::/EFI", "::/EFI/BOOT"]),
            ("mcopy", ["mcopy", "-i", str(esp), str(efi), "::/EFI/BOOT/BOOTX64.EFI"]),
        ):
            run_logged(step, argv, log, "EFI system partition build")
        esp.replace(image.esp)
        (work / "stamp").write_text(digest)
        (work / "stamp").replace(stamp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image.esp
