"""The lab's base image: Debian built with debootstrap into a directory, packed with ``mkfs.ext4 -d``.

No loop mounts: the root filesystem is filled from a directory. The kernel and an initrd (built
once here, on the host, inside the chroot) are copied out and booted directly by qemu, so
``update_initramfs=no`` inside the image keeps package installs in a guest from rebuilding it under
software emulation. The result is cached; a stamp hashes every input, and a change rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bundle.debrepo import run_logged as bundle_run_logged
from lab.aptsources import debootstrap_mirror, host_codename
from lab.errors import LabError
from lab.paths import LabPaths

# Bump when the build steps below change, so cached images are rebuilt.
BUILD_VERSION = "6"
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
)
# Booted directly: the initrd must carry the virtio drivers for the root disk.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4")
USER_NIC_MAC = "52:54:00:12:34:56"  # every VM has its own user network, so one MAC serves all
GUEST_APT_SOURCE = "deb [trusted=yes] http://10.0.2.100/ ./\n"

GUEST_SETUP = """\
#!/bin/sh
# Per-VM settings from the kernel command line, applied at every boot (idempotent):
# lab.hostname=NAME lab.private_ip=ADDR/PREFIX lab.private_mac=MAC
set -eu
host="" ip="" mac=""
for arg in $(cat /proc/cmdline); do
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
"""

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
    _in_chroot(
        "systemctl enable", rootfs, ["systemctl", "enable", "systemd-networkd", "lab-guest-setup"], log
    )
    _in_chroot("systemctl mask", rootfs, ["systemctl", "mask", *MASKED_UNITS], log)


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
        run_logged(
            "mkfs.ext4",
            ["mkfs.ext4", "-q", "-F", "-L", "labroot", "-d", str(rootfs), str(work / "base.raw"), IMAGE_SIZE],
            log,
            "base image build",
        )
        for part in (image.disk, image.kernel, image.initrd):
            (work / part.name).replace(part)
        stamp.write_text(digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image
