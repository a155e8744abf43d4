"""Kernel feature probing and Pouch compatibility decisions (used by library/pouch_kernel_facts.py).

Two halves, both free of Ansible imports so tests/unit can load this file directly:

* ``probe()`` reads what the node's kernel offers (/proc, /sys, /dev, a few read-only commands) and
  returns a plain dict of JSON-able facts. Recorded fact sets for unit tests have the same shape.
* ``decide()`` turns such a dict plus the role's settings into the ``pouch_kernel`` decisions:
  snapshotter, default runtime, features to leave off, sysctls and boot modules, blockers.

Runs on the managed node's Python (3.8+), hence ``typing`` names instead of newer syntax at runtime.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only for type checkers: annotations stay unevaluated strings on the node's Python 3.8.
    from collections.abc import Callable

    RunCommand = Callable[[list[str]], tuple[int, str, str]]
    Facts = dict[str, Any]

PROBE_SCHEMA_VERSION = 1

# --------------------------------------------------------------------------------------------------
# Kernel release parsing
# --------------------------------------------------------------------------------------------------

# pouchd (pkg/kernel/kernel.go) does Sscanf(uname -r, "%d.%d.%d-%s") and exits at startup when fewer
# than three numbers parse, so "4.19" or "5.4-rc1" stop it while "6.1.0" (no flavor) is fine.
_POUCHD_PARSEABLE_RE = re.compile(r"^[+-]?\d+\.[+-]?\d+\.[+-]?\d+")
_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(.*)$")
_ENTERPRISE_TAG_RE = re.compile(r"(?:^|[.\-_])(el|al|an|ael|uek)(\d+)", re.IGNORECASE)


def parse_kernel_release(release: str) -> Facts:
    """Split a ``uname -r`` string into numbers and the distribution's build info.

    ``build`` is the first number of the suffix: the RHEL/CentOS z-stream build (754, 693), the
    Alibaba Cloud Linux build (26) or the Debian/Ubuntu ABI number (50, 210).
    """
    text = (release or "").strip()
    parsed: Facts = {
        "release": text,
        "major": None,
        "minor": None,
        "patch": None,
        "suffix": "",
        "build": None,
        "vendor_tag": None,
        "el_version": None,
        "parsed": False,
        "pouchd_parseable": bool(_POUCHD_PARSEABLE_RE.match(text)),
    }
    match = _RELEASE_RE.match(text)
    if not match:
        return parsed
    major, minor, patch, rest = match.groups()
    suffix = rest[1:] if rest[:1] in ("-", ".", "_", "+", "~") else rest
    build_match = re.match(r"(\d+)", suffix)
    tag_match = _ENTERPRISE_TAG_RE.search(suffix)
    parsed.update(
        major=int(major),
        minor=int(minor),
        patch=int(patch) if patch is not None else None,
        suffix=suffix,
        build=int(build_match.group(1)) if build_match else None,
        parsed=True,
    )
    if tag_match:
        parsed["vendor_tag"] = (tag_match.group(1) + tag_match.group(2)).lower()
        if tag_match.group(1).lower() == "el":
            parsed["el_version"] = int(tag_match.group(2))
    return parsed


def version_tuple(kernel: Facts) -> tuple[int, int, int] | None:
    if not kernel.get("parsed"):
        return None
    return (kernel["major"], kernel["minor"], kernel.get("patch") or 0)


def overlay_multi_lower_supported(kernel: Facts) -> bool:
    """containerd's overlay snapshotter stacks several lowerdirs in one mount.

    Mainline has that from 4.0; Red Hat backported it to 3.10.0-693 (RHEL/CentOS 7.4).
    """
    version = version_tuple(kernel)
    if version is None:
        return False
    if version >= (4, 0, 0):
        return True
    if kernel.get("el_version") == 7 and version[:2] == (3, 10):
        return (kernel.get("build") or 0) >= 693
    return False


# --------------------------------------------------------------------------------------------------
# Probing helpers (all paths are resolved under ``root`` so a recorded /proc tree can stand in)
# --------------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, root: str = "/") -> None:
        self.root = root

    def path(self, absolute: str) -> str:
        return os.path.join(self.root, absolute.lstrip("/"))

    def read(self, absolute: str) -> str | None:
        try:
            with open(self.path(absolute), encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def exists(self, absolute: str) -> bool:
        return os.path.exists(self.path(absolute))

    def listdir(self, absolute: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(absolute)))
        except OSError:
            return []


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("\"'")
    return values


def probe_distribution(reader: _Reader) -> Facts:
    os_release = reader.read("/etc/os-release") or reader.read("/usr/lib/os-release")
    if os_release:
        values = parse_os_release(os_release)
        return {
            "id": values.get("ID", "").lower(),
            "version_id": values.get("VERSION_ID", ""),
            "name": values.get("PRETTY_NAME") or values.get("NAME", ""),
            "like": values.get("ID_LIKE", "").split(),
        }
    # RHEL/CentOS 6 have no os-release, only "CentOS release 6.10 (Final)".
    redhat = reader.read("/etc/redhat-release") or reader.read("/etc/system-release")
    if redhat:
        match = re.match(r"\s*(.*?)\s+(?:Linux\s+)?release\s+([\d.]+)", redhat)
        name = match.group(1) if match else redhat.strip()
        lowered = name.lower()
        dist_id = "centos" if "centos" in lowered else "rhel" if "red hat" in lowered else lowered.split()[0]
        return {
            "id": dist_id,
            "version_id": match.group(2) if match else "",
            "name": redhat.strip(),
            "like": ["rhel", "fedora"],
        }
    return {"id": "", "version_id": "", "name": "", "like": []}


def parse_proc_filesystems(text: str) -> list[str]:
    return sorted({line.split()[-1] for line in text.splitlines() if line.strip()})


def _unescape_mount_field(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 style octal.
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Facts]:
    mounts: list[Facts] = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        fields = before.split()
        tail = after.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        mounts.append(
            {
                "root": _unescape_mount_field(fields[3]),
                "mount_point": _unescape_mount_field(fields[4]),
                "options": fields[5].split(","),
                "fstype": tail[0],
                "source": _unescape_mount_field(tail[1]),
                "super_options": tail[2].split(",") if len(tail) > 2 else [],
            }
        )
    return mounts


def find_mount(mounts: list[Facts], path: str) -> Facts | None:
    """The mount that holds ``path``: the longest mount point prefix, the last one mounted wins."""
    best: Facts | None = None
    for mount in mounts:
        point = mount["mount_point"].rstrip("/") or "/"
        if (path == point or path.startswith(point.rstrip("/") + "/")) and (
            best is None or len(point) >= len(best["mount_point"].rstrip("/") or "/")
        ):
            best = mount
    return best


def nearest_existing_dir(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return os.path.realpath(current)


def probe_d_type(directory: str) -> tuple[bool | None, str | None]:
    """Ask the filesystem itself whether readdir() fills in d_type.

    Method: create a file in a scratch dir, list the dir with os.scandir (readdir(3) underneath),
    delete the file, then ask the cached entry ``is_file(follow_symlinks=False)``. CPython answers
    from d_type when the filesystem supplied one; on DT_UNKNOWN it has to lstat() the path, which
    now fails, so the answer is False. True therefore means d_type was really reported.
    """
    try:
        scratch = tempfile.mkdtemp(prefix=".pouch-dtype-probe-", dir=directory)
    except OSError as error:
        return None, f"cannot create a scratch dir in {directory}: {error.strerror}"
    try:
        probe_file = os.path.join(scratch, "f")
        with open(probe_file, "w", encoding="utf-8"):
            pass
        with os.scandir(scratch) as iterator:
            entries = list(iterator)
        os.unlink(probe_file)
        if len(entries) != 1:
            return None, f"scratch dir listing returned {len(entries)} entries, expected 1"
        return entries[0].is_file(follow_symlinks=False), None
    except OSError as error:
        return None, f"d_type probe failed in {scratch}: {error.strerror}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def parse_xfs_ftype(xfs_info_output: str) -> int | None:
    match = re.search(r"ftype=(\d)", xfs_info_output)
    return int(match.group(1)) if match else None


def probe_backing_fs(
    reader: _Reader, mounts: list[Facts], home_dir: str, run_command: RunCommand | None, live: bool
) -> Facts:
    # pouch's home dir usually does not exist yet: judge the filesystem it will be created on.
    probe_dir = nearest_existing_dir(home_dir) if live else home_dir
    mount = find_mount(mounts, probe_dir) or {}
    facts: Facts = {
        "home_dir": home_dir,
        "probe_dir": probe_dir,
        "mount_point": mount.get("mount_point"),
        "fstype": mount.get("fstype"),
        "source": mount.get("source"),
        "mount_options": sorted(set(mount.get("options", []) + mount.get("super_options", []))),
        "d_type": None,
        "d_type_method": None,
        "d_type_error": None,
        "xfs_ftype": None,
    }
    if mount.get("fstype") == "xfs" and run_command is not None:
        rc, out, _err = run_command(["xfs_info", mount["mount_point"]])
        if rc == 0:
            facts["xfs_ftype"] = parse_xfs_ftype(out)
    if live:
        d_type, error = probe_d_type(probe_dir)
        facts.update(d_type=d_type, d_type_error=error)
        facts["d_type_method"] = "readdir via os.scandir, file unlinked before the type check"
    return facts


_V1_KNOBS: dict[str, tuple[str, str]] = {
    # knob name: (controller, file at the controller's mount root); pouchd checks the same files.
    "memory_limit": ("memory", "memory.limit_in_bytes"),
    "memory_reservation": ("memory", "memory.soft_limit_in_bytes"),
    "memory_swap": ("memory", "memory.memsw.limit_in_bytes"),
    "memory_swappiness": ("memory", "memory.swappiness"),
    "memory_kmem": ("memory", "memory.kmem.limit_in_bytes"),
    "oom_kill_disable": ("memory", "memory.oom_control"),
    "cpu_shares": ("cpu", "cpu.shares"),
    "cpu_cfs_quota": ("cpu", "cpu.cfs_quota_us"),
    "cpu_cfs_period": ("cpu", "cpu.cfs_period_us"),
    "cpuset": ("cpuset", "cpuset.cpus"),
    "blkio_weight": ("blkio", "blkio.weight"),
    "blkio_throttle": ("blkio", "blkio.throttle.read_bps_device"),
    "pids": ("pids", "pids.max"),
}
_V2_KNOBS: dict[str, str] = {
    # knob name: controller in cgroup.controllers (runc translates the v1-style limits pouchd sends).
    "memory_limit": "memory",
    "memory_reservation": "memory",
    "memory_swappiness": "",
    "memory_kmem": "",
    "oom_kill_disable": "",
    "cpu_shares": "cpu",
    "cpu_cfs_quota": "cpu",
    "cpu_cfs_period": "cpu",
    "cpuset": "cpuset",
    "blkio_weight": "io",
    "blkio_throttle": "io",
    "pids": "pids",
}
_V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls")


def parse_proc_cgroups(text: str) -> list[str]:
    enabled = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not line.startswith("#") and fields[3] == "1":
            enabled.append(fields[0])
    return sorted(enabled)


def probe_cgroups(reader: _Reader, mounts: list[Facts]) -> Facts:
    v1_mounts: dict[str, str] = {}
    v2_mount: str | None = None
    for mount in mounts:
        if mount["fstype"] == "cgroup":
            for controller in mount["super_options"]:
                if controller in _V1_CONTROLLERS and controller not in v1_mounts:
                    v1_mounts[controller] = mount["mount_point"]
        elif mount["fstype"] == "cgroup2" and v2_mount is None:
            v2_mount = mount["mount_point"]
    if v2_mount is not None and not v1_mounts:
        version = "v2"
    elif v1_mounts:
        version = "hybrid" if v2_mount is not None else "v1"
    else:
        version = "none"

    v2_controllers: list[str] = []
    if v2_mount is not None:
        v2_controllers = sorted((reader.read(v2_mount + "/cgroup.controllers") or "").split())

    knobs: dict[str, bool] = {}
    if version in ("v1", "hybrid"):
        # pouchd and runc use the v1 hierarchy whenever one is mounted.
        for knob, (controller, filename) in _V1_KNOBS.items():
            mount_point = v1_mounts.get(controller)
            if knob == "pids":
                knobs[knob] = mount_point is not None
            else:
                knobs[knob] = mount_point is not None and reader.exists(mount_point + "/" + filename)
    elif version == "v2":
        for knob, controller in _V2_KNOBS.items():
            knobs[knob] = bool(controller) and controller in v2_controllers
        # memory.swap.max exists only below the root cgroup, and only with swap accounting.
        candidates = [v2_mount] + [v2_mount + "/" + name for name in reader.listdir(v2_mount)[:64]]
        knobs["memory_swap"] = "memory" in v2_controllers and any(
            reader.exists(candidate + "/memory.swap.max") for candidate in candidates
        )
    return {
        "version": version,
        "v1_mounts": v1_mounts,
        "v2_mount": v2_mount,
        "v2_controllers": v2_controllers,
        "kernel_controllers": parse_proc_cgroups(reader.read("/proc/cgroups") or ""),
        "knobs": knobs,
    }


def _prctl_seccomp_probe() -> tuple[bool | None, bool | None]:
    """The check pouchd/runc use: PR_GET_SECCOMP, then PR_SET_SECCOMP(FILTER, NULL) which fails with
    EFAULT when filters are supported (EINVAL otherwise) without installing anything."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None, None
    pr_get_seccomp, pr_set_seccomp, seccomp_mode_filter = 21, 22, 2
    if prctl(pr_get_seccomp, 0, 0, 0, 0) < 0 and ctypes.get_errno() == errno.EINVAL:
        return False, False
    result = prctl(pr_set_seccomp, seccomp_mode_filter, None, 0, 0)
    return True, not (result < 0 and ctypes.get_errno() == errno.EINVAL)


def probe_seccomp(reader: _Reader, live: bool) -> Facts:
    status = reader.read("/proc/self/status") or ""
    match = re.search(r"^Seccomp:\s*(\d+)", status, re.MULTILINE)
    facts: Facts = {
        # The Seccomp line exists from 3.8 on; older kernels may still have seccomp.
        "status_field": int(match.group(1)) if match else None,
        "supported": None,
        "filter_supported": None,
        "method": "/proc/self/status",
    }
    if live:
        supported, filter_supported = _prctl_seccomp_probe()
        if supported is not None:
            facts.update(supported=supported, filter_supported=filter_supported, method="prctl")
    if facts["supported"] is None and match:
        facts["supported"] = True
        facts["filter_supported"] = "Seccomp_filters" in status or None
    return facts


def read_sysctl(reader: _Reader, name: str) -> str | None:
    value = reader.read("/proc/sys/" + name.replace(".", "/"))
    return " ".join(value.split()) if value is not None else None


def _module_names(listing: str) -> list[str]:
    names = set()
    for line in listing.splitlines():
        path = line.split(":", 1)[0].strip()
        if path:
            base = os.path.basename(path).split(".ko", 1)[0]
            names.add(base.replace("-", "_"))
    return sorted(names)


def probe_kernel_module(
    reader: _Reader,
    release: str,
    name: str,
    present_without_module: bool,
    run_command: RunCommand | None,
) -> str:
    """loaded | builtin | loadable | absent | unknown.

    ``present_without_module``: the feature is visible already (fs registered, sysctl present).
    """
    wanted = name.replace("-", "_")
    proc_modules = reader.read("/proc/modules")
    if proc_modules is None:
        # CONFIG_MODULES=n: whatever the kernel has is built in.
        return "builtin" if present_without_module else "absent"
    if wanted in {line.split()[0] for line in proc_modules.splitlines() if line.strip()}:
        return "loaded"
    modules_dir = "/lib/modules/" + release
    builtin = reader.read(modules_dir + "/modules.builtin")
    if (builtin and wanted in _module_names(builtin)) or present_without_module:
        return "builtin"
    if run_command is not None:
        rc, _out, _err = run_command(["modprobe", "-n", "-q", name])
        if rc in (0, 1):
            return "loadable" if rc == 0 else "absent"
    modules_dep = reader.read(modules_dir + "/modules.dep")
    if modules_dep is not None:
        return "loadable" if wanted in _module_names(modules_dep) else "absent"
    return "unknown"


SYSCTLS_OF_INTEREST = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "fs.may_detach_mounts",
    "fs.inotify.max_user_watches",
    "fs.inotify.max_user_instances",
    "user.max_user_namespaces",
)


def probe(
    root: str = "/",
    home_dir: str = "/var/lib/pouch",
    run_command: RunCommand | None = None,
    extra_sysctls: tuple[str, ...] = (),
) -> Facts:
    """Everything ``decide`` needs, read from the node (or from a recorded tree under ``root``).

    Live-only probes (the d_type scratch dir, prctl) run only when ``root`` is "/".
    """
    reader = _Reader(root)
    live = os.path.abspath(root) == "/"
    release = (reader.read("/proc/sys/kernel/osrelease") or "").strip()
    if not release and live:
        release = os.uname().release
    filesystems = parse_proc_filesystems(reader.read("/proc/filesystems") or "")
    mounts = parse_mountinfo(reader.read("/proc/self/mountinfo") or "")
    sysctl_names = list(SYSCTLS_OF_INTEREST) + [
        name for name in extra_sysctls if name not in SYSCTLS_OF_INTEREST
    ]
    sysctls = {name: read_sysctl(reader, name) for name in sysctl_names}
    bridge_nf_present = sysctls["net.bridge.bridge-nf-call-iptables"] is not None

    cpu_flags: set = set()
    for line in (reader.read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("flags") or line.startswith("Features"):
            cpu_flags.update(line.split(":", 1)[-1].split())
    max_userns = sysctls.get("user.max_user_namespaces")

    return {
        "schema": PROBE_SCHEMA_VERSION,
        "kernel": parse_kernel_release(release),
        "arch": os.uname().machine if live else "",
        "distribution": probe_distribution(reader),
        "filesystems": [
            name for name in filesystems if name in ("overlay", "overlayfs", "fuse", "xfs", "ext4")
        ],
        "modules": {
            "supported": reader.exists("/proc/modules"),
            "overlay": probe_kernel_module(reader, release, "overlay", "overlay" in filesystems, run_command),
            "br_netfilter": probe_kernel_module(
                reader, release, "br_netfilter", bridge_nf_present, run_command
            ),
            "fuse": probe_kernel_module(reader, release, "fuse", "fuse" in filesystems, run_command),
        },
        "backing_fs": probe_backing_fs(reader, mounts, home_dir, run_command, live),
        "cgroup": probe_cgroups(reader, mounts),
        "seccomp": probe_seccomp(reader, live),
        "namespaces": {
            "cgroup": reader.exists("/proc/self/ns/cgroup"),
            "user": reader.exists("/proc/self/ns/user") and (max_userns is None or max_userns != "0"),
        },
        "virtualization": {
            "kvm_device": reader.exists("/dev/kvm"),
            "cpu_flags": sorted(cpu_flags & {"vmx", "svm"}),
            "hypervisor_guest": "hypervisor" in cpu_flags,
        },
        "fuse": {"device": reader.exists("/dev/fuse"), "filesystem": "fuse" in filesystems},
        "sysctls": sysctls,
    }


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------

DEFAULT_SETTINGS: Facts = {
    "snapshotter": "auto",
    "runlxc_source": "",  # "archive" or "binary" when the user supplied runlxc, else ""
    "runlxc_binary_present": None,  # for runlxc_source "binary": does the path exist on the node
    "boot_modules": ["overlay", "br_netfilter"],
    "bridge_nf_call": True,
    "may_detach_mounts": True,
    "sysctl_minimums": {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 8192},
    "sysctls": {"net.ipv4.ip_forward": "1"},
}

# Feature name -> what it gates in pouchd / the other roles. The names are a contract.
FEATURES = (
    "memory_limit",
    "memory_swap",
    "kernel_memory",
    "cpu_cfs",
    "cpuset",
    "blkio_weight",
    "blkio_throttle",
    "pids_limit",
    "seccomp",
    "cgroup_namespace",
    "lxcfs",
    "kata",
    "disk_quota",
)


def _feature_table(probe_facts: Facts, version: tuple[int, int, int] | None) -> dict[str, str | None]:
    """feature -> None when usable, else the reason it stays off."""
    cgroup = probe_facts.get("cgroup", {})
    knobs = cgroup.get("knobs", {})
    v1 = cgroup.get("version") in ("v1", "hybrid")
    reasons: dict[str, str | None] = {}

    def knob_reason(knob: str, what: str) -> str | None:
        if knobs.get(knob):
            return None
        where = "cgroup v1 hierarchy" if v1 else "cgroup v2 controllers"
        return f"{what} is missing from the {where}"

    reasons["memory_limit"] = knob_reason("memory_limit", "memory.limit_in_bytes")
    reasons["memory_swap"] = knob_reason(
        "memory_swap",
        "swap accounting (memory.memsw.limit_in_bytes / memory.swap.max; boot with swapaccount=1)",
    )
    if not v1:
        reasons["kernel_memory"] = "cgroup v2 has no kernel memory limit"
    elif not knobs.get("memory_kmem"):
        reasons["kernel_memory"] = "memory.kmem.limit_in_bytes is missing"
    elif version is not None and version < (4, 0, 0):
        reasons["kernel_memory"] = "kmem accounting before kernel 4.0 is unstable (slab leaks, OOM stalls)"
    elif version is not None and version >= (5, 16, 0):
        reasons["kernel_memory"] = "kmem limits are deprecated since 5.16 and rejected by the kernel"
    else:
        reasons["kernel_memory"] = None
    reasons["cpu_cfs"] = knob_reason("cpu_cfs_quota", "cpu.cfs_quota_us (CFS bandwidth)")
    reasons["cpuset"] = knob_reason("cpuset", "the cpuset controller")
    reasons["blkio_weight"] = knob_reason("blkio_weight", "blkio.weight (io controller)")
    reasons["blkio_throttle"] = knob_reason("blkio_throttle", "blkio throttling (io controller)")
    reasons["pids_limit"] = knob_reason("pids", "the pids controller (kernel 4.3+)")

    seccomp = probe_facts.get("seccomp", {})
    if seccomp.get("filter_supported") is False or seccomp.get("supported") is False:
        reasons["seccomp"] = "the kernel has no seccomp filter mode (CONFIG_SECCOMP_FILTER, 3.5+)"
    elif seccomp.get("supported") is None:
        reasons["seccomp"] = "seccomp support could not be detected"
    else:
        reasons["seccomp"] = None

    namespaces = probe_facts.get("namespaces", {})
    reasons["cgroup_namespace"] = (
        None if namespaces.get("cgroup") else "/proc/self/ns/cgroup is missing (cgroup namespaces need 4.6+)"
    )

    fuse = probe_facts.get("fuse", {})
    fuse_module = probe_facts.get("modules", {}).get("fuse")
    if fuse.get("device") and (fuse.get("filesystem") or fuse_module in ("loaded", "builtin", "loadable")):
        reasons["lxcfs"] = None
    else:
        reasons["lxcfs"] = "lxcfs needs FUSE: /dev/fuse and the fuse filesystem are not both present"

    virt = probe_facts.get("virtualization", {})
    if virt.get("kvm_device"):
        reasons["kata"] = None
    elif virt.get("cpu_flags"):
        reasons["kata"] = "/dev/kvm is missing although the CPU has vmx/svm: load kvm_intel/kvm_amd"
    else:
        reasons["kata"] = "no /dev/kvm and no vmx/svm CPU flag (hardware virtualization, nested in a VM)"
    return reasons


def _quota_hint(
    probe_facts: Facts, version: tuple[int, int, int] | None, snapshotter: str
) -> tuple[str, str]:
    """(driver, reason). pouchd's own auto choice is prjquota on kernel 4+, grpquota below."""
    fs = probe_facts.get("backing_fs", {}) or {}
    fstype = fs.get("fstype")
    kernel = probe_facts.get("kernel", {})
    if snapshotter != "overlayfs":
        return "", "disk quota is documented for the overlayfs snapshotter only"
    if version is None:
        return "", "kernel version unknown"
    if fstype == "ext4" and version >= (4, 5, 0):
        return "prjquota", "ext4 project quota (4.5+); mount with prjquota and enable the project feature"
    if fstype == "xfs" and version >= (4, 0, 0):
        return "prjquota", "xfs project quota; mount with prjquota"
    if version < (4, 0, 0) and "ali" in (kernel.get("release") or "").lower():
        return "grpquota", "AliKernel group quota (system.subtree xattr)"
    return "", f"no project/group quota pouchd can use on {fstype or 'this filesystem'} with this kernel"


def _wanted_sysctls(probe_facts: Facts, settings: Facts, warnings: list[str]) -> dict[str, str]:
    live = probe_facts.get("sysctls", {})
    kernel = probe_facts.get("kernel", {})
    modules = probe_facts.get("modules", {})
    wanted: dict[str, str] = {}
    for name, value in sorted(settings.get("sysctls", {}).items()):
        wanted[name] = str(value)
    if settings.get("bridge_nf_call"):
        br_netfilter = modules.get("br_netfilter")
        if live.get("net.bridge.bridge-nf-call-iptables") is not None or br_netfilter in (
            "loaded",
            "builtin",
            "loadable",
        ):
            wanted["net.bridge.bridge-nf-call-iptables"] = "1"
            wanted["net.bridge.bridge-nf-call-ip6tables"] = "1"
        else:
            warnings.append(
                "br_netfilter is neither built in nor loadable: bridged container traffic bypasses iptables"
            )
    if settings.get("may_detach_mounts") and kernel.get("el_version") == 7:
        if live.get("fs.may_detach_mounts") is not None:
            # RHEL 7 only: lets a mount busy in another namespace be detached, avoiding
            # "device or resource busy" when containers are removed.
            wanted["fs.may_detach_mounts"] = "1"
        else:
            warnings.append("RHEL 7 kernel without fs.may_detach_mounts (3.10.0-693+): update the kernel")
    for name, minimum in sorted(settings.get("sysctl_minimums", {}).items()):
        current = live.get(name)
        # Raise only: a node tuned higher by someone else keeps its value.
        if current is not None and current.isdigit() and int(current) >= int(minimum):
            wanted[name] = current
        else:
            wanted[name] = str(minimum)
    return wanted


def decide(probe_facts: Facts, settings: Facts | None = None) -> Facts:
    """The ``pouch_kernel`` fact: what the other roles configure on this node, and whether they may."""
    merged = dict(DEFAULT_SETTINGS)
    merged.update(settings or {})
    kernel = probe_facts.get("kernel", {})
    release = kernel.get("release") or "(unknown)"
    version = version_tuple(kernel)
    blockers: list[str] = []
    warnings: list[str] = []

    # --- kernel release and the runtime it allows
    if not kernel.get("parsed"):
        blockers.append(f"kernel release {release!r} has no major.minor version: cannot judge this kernel")
    elif not kernel.get("pouchd_parseable"):
        blockers.append(
            f"kernel release {release!r} cannot be parsed by pouchd (it reads uname -r as %d.%d.%d-%s and"
            " exits at startup with fewer than three numbers): boot a kernel whose release has three numbers"
        )
    runlxc_source = merged.get("runlxc_source") or ""
    if runlxc_source == "binary" and merged.get("runlxc_binary_present") is False:
        blockers.append("kernel_compat_runlxc_binary does not exist or is not executable on the node")
        runlxc_source = ""
    old_kernel = version is not None and version < (3, 10, 0)
    default_runtime = "runc"
    if old_kernel:
        if runlxc_source:
            default_runtime = "runlxc"
            warnings.append(
                f"kernel {release} is below 3.10: runc cannot run here, containers default to the"
                f" user-supplied runlxc ({runlxc_source}); RHEL 6 has no systemd"
            )
        else:
            blockers.append(
                f"kernel {release} is below 3.10: pouchd needs runlxc for it (runc and containerd need 3.10);"
                " set kernel_compat_runlxc_archive (+ kernel_compat_runlxc_checksum) or"
                " kernel_compat_runlxc_binary, or upgrade the kernel to 3.10 or later"
            )
    elif version is not None and version < (4, 0, 0) and kernel.get("el_version") != 7:
        warnings.append(f"kernel {release} is older than 4.0 and not a RHEL 7 kernel: pouch is tested on 4.x")

    live_sysctls = probe_facts.get("sysctls", {})
    for name, value in sorted(merged.get("sysctls", {}).items()):
        if name in live_sysctls and live_sysctls[name] is None:
            blockers.append(f"kernel_compat_sysctls: {name} does not exist on kernel {release}")
        elif not re.match(r"^[^\s#;][^\n]*$", str(value)):
            blockers.append(f"kernel_compat_sysctls: {name} has an empty or multi-line value {value!r}")

    cgroup = probe_facts.get("cgroup", {})
    if cgroup.get("version") == "none":
        blockers.append(f"kernel {release}: no cgroup filesystem is mounted (neither v1 nor v2)")
    elif cgroup.get("version") == "v2":
        warnings.append(
            "cgroup v2 only: pouchd 1.3 checks limits against cgroup v1 files, so on v2 it skips that check"
            " and runc (1.0+) translates the limits; memory swap and kmem limits behave differently"
        )

    # --- snapshotter
    modules = probe_facts.get("modules", {})
    overlay_present = "overlay" in probe_facts.get("filesystems", []) or modules.get("overlay") in (
        "loaded",
        "builtin",
        "loadable",
    )
    fs = probe_facts.get("backing_fs", {}) or {}
    fstype = fs.get("fstype") or "unknown"
    where = f"{fstype} at {fs.get('mount_point') or fs.get('probe_dir') or '?'}"
    overlay_problem: str | None = None
    if not overlay_present:
        overlay_problem = "overlayfs is not available (not in /proc/filesystems, no loadable module)"
    elif not overlay_multi_lower_supported(kernel):
        overlay_problem = (
            f"overlayfs in kernel {release} lacks multiple lower dirs (needs 4.0+ or RHEL 7 3.10.0-693+)"
        )
    elif fstype in ("overlay", "aufs"):
        overlay_problem = f"pouch's home dir sits on {where}: overlayfs cannot use it as upper layer"
    elif fs.get("d_type") is False or fs.get("xfs_ftype") == 0:
        detail = " (xfs ftype=0: reformat with mkfs.xfs -n ftype=1)" if fs.get("xfs_ftype") == 0 else ""
        overlay_problem = f"the backing filesystem {where} does not report d_type{detail}"
    elif fs.get("d_type") is None:
        warnings.append(f"d_type support of {where} is unverified ({fs.get('d_type_error') or 'not probed'})")

    requested = merged.get("snapshotter", "auto")
    if requested == "native":
        snapshotter, snapshotter_reason = "native", "requested (kernel_compat_snapshotter: native)"
    elif overlay_problem is None:
        snapshotter, snapshotter_reason = "overlayfs", "overlayfs with multiple lower dirs and d_type"
    elif requested == "overlayfs":
        snapshotter, snapshotter_reason = "overlayfs", overlay_problem
        blockers.append(f"kernel_compat_snapshotter is overlayfs but {overlay_problem}")
    else:
        snapshotter, snapshotter_reason = "native", overlay_problem
        warnings.append(f"snapshotter native (full copies, slower, more disk): {overlay_problem}")

    # --- features
    reasons = _feature_table(probe_facts, version)
    quota_driver, quota_reason = _quota_hint(probe_facts, version, snapshotter)
    reasons["disk_quota"] = None if quota_driver else quota_reason
    features = {name: reasons.get(name) is None for name in FEATURES}
    disabled = sorted(name for name in FEATURES if not features[name])

    # --- boot modules and sysctls
    # Only real modules go to modules-load.d: built-in ones cannot be loaded, absent ones would fail.
    wanted_modules = [
        name for name in merged.get("boot_modules", []) if name != "overlay" or snapshotter == "overlayfs"
    ]
    status = {name: modules.get(name.replace("-", "_"), "unknown") for name in wanted_modules}
    boot_modules = [name for name in wanted_modules if status[name] in ("loaded", "loadable")]
    modules_to_load = [name for name in wanted_modules if status[name] == "loadable"]
    sysctls = _wanted_sysctls(probe_facts, merged, warnings)
    live = probe_facts.get("sysctls", {})
    sysctl_drift = sorted(name for name, value in sysctls.items() if live.get(name) != value)

    return {
        "version": release,
        "version_info": {key: kernel.get(key) for key in ("major", "minor", "patch", "build", "vendor_tag")},
        "distribution": probe_facts.get("distribution", {}),
        "supported": not blockers,
        "blockers": blockers,
        "warnings": warnings,
        "snapshotter": snapshotter,
        "snapshotter_reason": snapshotter_reason,
        "overlay_multi_lower": overlay_present and overlay_multi_lower_supported(kernel),
        "d_type": fs.get("d_type"),
        "default_runtime": default_runtime,
        "runlxc_required": old_kernel,
        "runlxc_source": runlxc_source,
        "cgroup_version": cgroup.get("version"),
        "features": features,
        "disabled_features": disabled,
        "disabled_reasons": {name: reasons[name] for name in disabled},
        "quota_driver": quota_driver,
        "quota_driver_reason": quota_reason,
        "kata_capable": features["kata"],
        "lxcfs_capable": features["lxcfs"],
        "user_namespaces": bool(probe_facts.get("namespaces", {}).get("user")),
        "boot_modules": boot_modules,
        "modules_to_load": modules_to_load,
        "sysctls": sysctls,
        "sysctl_drift": sysctl_drift,
    }
