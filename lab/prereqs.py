"""What the lab needs on this machine, as plain reasons a test can skip with."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from lab.aptsources import debian_sources, host_codename
from lab.artifacts import (
    ArtifactError,
    artifacts_dir,
    checksum_file,
    dragonfly_archive,
    pouch_archive,
    pouch_builds,
    pouch_missing_reason,
    upgrade_from_archive,
)
from lab.errors import LabError
from lab.image import GRUB_EFI_DIR, OVMF_CODE, OVMF_VARS, BaseImage
from lab.paths import LabPaths

# program -> Debian package that provides it
LAB_PROGRAMS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "socat": "socat",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "dpkg-scanpackages": "dpkg-dev",
    "apt-ftparchive": "apt-utils",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
}


# What booting through the firmware (`lab up --boot firmware`) needs besides LAB_PROGRAMS.
FIRMWARE_PROGRAMS = {
    "grub-mkstandalone": "grub-common",
    "mformat": "mtools",
    "mmd": "mtools",
    "mcopy": "mtools",
}
FIRMWARE_FILES = {
    OVMF_CODE: "ovmf",
    OVMF_VARS: "ovmf",
    GRUB_EFI_DIR / "modinfo.sh": "grub-efi-amd64-bin",
}


def missing_programs() -> list[str]:
    return [
        f"{prog} (Debian package {pkg})" for prog, pkg in LAB_PROGRAMS.items() if shutil.which(prog) is None
    ]


def firmware_missing() -> list[str]:
    """What a firmware-booted VM needs (OVMF, GRUB's EFI build, mtools) and this machine lacks."""
    missing = [
        f"{prog} (Debian package {pkg})"
        for prog, pkg in FIRMWARE_PROGRAMS.items()
        if shutil.which(prog) is None
    ]
    missing += [f"{path} (Debian package {pkg})" for path, pkg in FIRMWARE_FILES.items() if not path.exists()]
    return missing


def mirror_problem(timeout: float = 10.0) -> str | None:
    """Why the host's Debian mirror cannot serve the image/repo build, or None if it answers."""
    try:
        codename = host_codename()
        source = next(s for s in debian_sources(codename) if codename in s.suites)
    except LabError as exc:
        return str(exc)
    url = f"{source.uri}/dists/{codename}/InRelease"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except (urllib.error.URLError, OSError) as exc:
        return f"the Debian mirror is unreachable ({url}: {exc})"


def lab_missing(paths: LabPaths) -> list[str]:
    """Everything that keeps the lab from booting VMs here; empty when it can."""
    missing = missing_programs()
    cached = BaseImage.in_dir(paths.image_dir).exists() and (paths.repo_dir / "www/Packages.gz").exists()
    if not cached:  # the mirror is needed only to build what is not cached yet
        problem = mirror_problem()
        if problem:
            missing.append(f"{problem} (needed to build the base image and apt repository)")
    return missing


def pouch_build_missing() -> str | None:
    """Why no pouch build can run on this machine (lab/artifacts.py's search), or None."""
    try:
        return None if pouch_builds() else pouch_missing_reason()
    except ArtifactError as exc:
        return str(exc)


def archive_missing(found: tuple[Path, str] | None, variable: str, what: str) -> str | None:
    """Why the archive a scenario installs is unusable: none found (naming ``variable``), no such file,
    no ``.sha256`` beside it."""
    if found is None:
        return (
            f"no {what}: set {variable} (and put its .sha256 beside it), or provide the test artifacts "
            f"in {artifacts_dir()}"
        )
    archive, source = found
    if not archive.is_file():
        return f"{what} {archive} ({source}) does not exist"
    checksum = checksum_file(archive)
    if not checksum.is_file():
        return f"{what} {archive} ({source}) has no checksum file {checksum}"
    return None


POUCH_ARCHIVE_WHAT = "pouch binary archive (bin/pouch, bin/pouchd)"

# Requirement names a scenario can list in its molecule/<name>/requires.txt.
REQUIREMENTS = {
    "pouch_bin_dir": pouch_build_missing,
    "pouch_archive": lambda: archive_missing(pouch_archive(), "POUCH_ARCHIVE", POUCH_ARCHIVE_WHAT),
    "pouch_archive:release": lambda: archive_missing(
        pouch_archive("release"), "POUCH_ARCHIVE", "released " + POUCH_ARCHIVE_WHAT
    ),
    "pouch_archive:master": lambda: archive_missing(
        pouch_archive("master"), "POUCH_ARCHIVE", "master " + POUCH_ARCHIVE_WHAT
    ),
    "dragonfly_archive": lambda: archive_missing(
        dragonfly_archive(), "DRAGONFLY_ARCHIVE", "Dragonfly 1.x binary archive (supernode, dfget, dfdaemon)"
    ),
    # A scenario whose platforms set `boot: firmware` (OVMF, GRUB's EFI build, mtools on this machine).
    "lab_firmware_boot": lambda: "; ".join(firmware_missing()) or None,
    # The archive molecule/upgrade starts from (the release by default); POUCH_ARCHIVE is the new one.
    "pouch_upgrade_from_archive": lambda: archive_missing(
        upgrade_from_archive(),
        "POUCH_UPGRADE_FROM_ARCHIVE",
        "pouch binary archive to upgrade from (another build than POUCH_ARCHIVE)",
    ),
}


def requirement_missing(name: str) -> str | None:
    """Why a named requirement is not met; ``env:VAR`` needs an environment variable set."""
    if name.startswith("env:"):
        var = name[4:]
        return None if os.environ.get(var) else f"environment variable {var} is not set"
    check = REQUIREMENTS.get(name)
    if check is None:
        return f"unknown requirement {name!r} (known: {', '.join(sorted(REQUIREMENTS))}, env:VAR)"
    return check()
