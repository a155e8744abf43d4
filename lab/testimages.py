"""Test images built offline: Debian's static busybox packed into OCI images with umoci.

Used by the lab's registry (what the VMs pull), the module integration tests and the benchmarks.
Nothing is downloaded: the only input is /bin/busybox from the busybox-static package.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
# Bump when the build steps below change, so cached images are rebuilt.
BUILD_VERSION = "2"
IMAGE_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_LABEL = "org.pouch-ansible.test-image"


class TestImageError(RuntimeError):
    """A test image could not be built; the message names the failing step and its output."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class TestImage:
    __test__ = False  # not a pytest test class

    name: str  # repository path in a registry, e.g. "library/busybox"
    tag: str
    oci_layout: Path  # OCI image layout directory holding every tag
    oci_ref: str  # skopeo/umoci reference, e.g. "oci:/path/layout:latest"
    docker_archive: Path  # docker-archive tarball for `load` (tagged name:tag)

    @property
    def short(self) -> str:
        """Name without the registry namespace, as daemons show it: busybox:latest."""
        return f"{self.name.removeprefix('library/')}:{self.tag}"


# tag -> (label value, extra env, cmd): each variant has its own config, hence its own image ID.
VARIANTS: dict[str, tuple[str, list[str], list[str]]] = {
    "latest": ("busybox", ["IMAGE_VARIANT=latest"], ["sh"]),
    "v2": ("busybox-v2", ["IMAGE_VARIANT=v2"], ["sh"]),
}


def _run(step: str, argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise TestImageError(
            f"test image build failed at {step}: {' '.join(argv)} exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()}"
        )


def _inputs_digest() -> str:
    if not BUSYBOX.exists():
        raise TestImageError(f"{BUSYBOX} is missing: install Debian's busybox-static package")
    digest = hashlib.sha256(BUSYBOX.read_bytes())
    digest.update(BUILD_VERSION.encode())
    digest.update(json.dumps(VARIANTS, sort_keys=True).encode())
    return digest.hexdigest()


def _populate_rootfs(rootfs: Path) -> None:
    for d in ("bin", "sbin", "etc", "tmp", "var/www", "root", "proc", "sys", "dev"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        link = rootfs / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "var/www/index.html").write_text("hello from the pouch-ansible test image\n")


def _build(layout: Path, archives: Path) -> None:
    for tool in ("umoci", "skopeo"):
        if shutil.which(tool) is None:
            raise TestImageError(f"{tool} is missing: install Debian's {tool} package")
    with tempfile.TemporaryDirectory(prefix="testimage-") as tmp:
        bundle = Path(tmp) / "bundle"
        _run("umoci init", ["umoci", "init", "--layout", str(layout)])
        _run("umoci new", ["umoci", "new", "--image", f"{layout}:base"])
        _run("umoci unpack", ["umoci", "unpack", "--image", f"{layout}:base", str(bundle)])
        _populate_rootfs(bundle / "rootfs")
        _run("umoci repack", ["umoci", "repack", "--image", f"{layout}:base", str(bundle)])
    for tag, (label, env, cmd) in VARIANTS.items():
        # `umoci config` must come after the last repack, or the config (CMD) is lost.
        argv = ["umoci", "config", "--image", f"{layout}:base", "--tag", tag, "--config.env", IMAGE_ENV]
        argv += [arg for e in env for arg in ("--config.env", e)]
        argv += [arg for c in cmd for arg in ("--config.cmd", c)]
        argv += ["--config.label", f"{IMAGE_LABEL}={label}", "--config.workingdir", "/"]
        _run(f"umoci config {tag}", argv)
        _run(
            f"skopeo docker-archive {tag}",
            [
                "skopeo",
                "copy",
                "--quiet",
                f"oci:{layout}:{tag}",
                f"docker-archive:{archives / f'busybox-{tag}.tar'}:library/busybox:{tag}",
            ],
        )
    _run("umoci rmtag base", ["umoci", "rm", "--image", f"{layout}:base"])


def _build_unless_cached(layout: Path, archives: Path, stamp: Path, digest: str) -> None:
    if stamp.exists() and stamp.read_text() == digest and layout.exists():
        return
    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(archives, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    archives.mkdir(parents=True)
    try:
        _build(layout, archives)
    except BaseException:
        shutil.rmtree(layout, ignore_errors=True)
        shutil.rmtree(archives, ignore_errors=True)
        raise
    stamp.write_text(digest)


def build_test_images(cache_dir: Path) -> list[TestImage]:
    """Build (or reuse from cache_dir) the test images; returns one TestImage per tag."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    layout = cache_dir / "oci-busybox"
    archives = cache_dir / "archives"
    stamp = cache_dir / "testimages.stamp"
    digest = _inputs_digest()
    # Test workers, benchmarks and `lab up` share one cache: one builds, the others wait and reuse it.
    with (cache_dir / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_unless_cached(layout, archives, stamp, digest)
    return [
        TestImage(
            name="library/busybox",
            tag=tag,
            oci_layout=layout,
            oci_ref=f"oci:{layout}:{tag}",
            docker_archive=archives / f"busybox-{tag}.tar",
        )
        for tag in VARIANTS
    ]
