"""kernel_compat probing (module_utils/pouch_kernel.py): the real probe on this machine, a fake /proc tree,
and the d_type check."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_pouch_kernel() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pouch_kernel", ROOT / "module_utils" / "pouch_kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pk = _load_pouch_kernel()


def run_command(argv: list[str]) -> tuple[int, str, str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return 127, "", f"{argv[0]} not found"
    return result.returncode, result.stdout, result.stderr


# --- the real probe on this machine ----------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> dict:
    return pk.probe(run_command=run_command)


def test_live_probe_is_json(live: dict) -> None:
    assert json.loads(json.dumps(live)) == live
    assert live["schema"] == pk.PROBE_SCHEMA_VERSION


def test_live_kernel_matches_uname(live: dict) -> None:
    assert live["kernel"]["release"] == os.uname().release
    assert live["kernel"]["parsed"] is True
    assert live["kernel"]["major"] >= 3
    assert live["arch"] == os.uname().machine


def test_live_distribution(live: dict) -> None:
    os_release = pk.parse_os_release(Path("/etc/os-release").read_text())
    assert live["distribution"]["id"] == os_release["ID"]
    assert live["distribution"]["version_id"] == os_release.get("VERSION_ID", "")


def test_live_filesystems_and_modules(live: dict) -> None:
    registered = Path("/proc/filesystems").read_text().split()
    assert ("overlay" in live["filesystems"]) == ("overlay" in registered)
    assert live["modules"]["supported"] == os.path.exists("/proc/modules")
    for name in ("overlay", "br_netfilter", "fuse"):
        assert live["modules"][name] in ("loaded", "builtin", "loadable", "absent", "unknown")
    if "overlay" in registered:
        assert live["modules"]["overlay"] in ("loaded", "builtin")


def test_live_backing_fs_and_d_type(live: dict) -> None:
    backing = live["backing_fs"]
    assert backing["home_dir"] == "/var/lib/pouch"
    assert os.path.isdir(backing["probe_dir"])
    assert backing["mount_point"] and backing["probe_dir"].startswith(backing["mount_point"])
    assert backing["fstype"]
    assert backing["d_type_error"] is None
    assert isinstance(backing["d_type"], bool)
    if backing["fstype"] in ("ext4", "btrfs", "tmpfs") or backing["xfs_ftype"] == 1:
        assert backing["d_type"] is True
    # The scratch dir is gone again.
    assert not [name for name in os.listdir(backing["probe_dir"]) if name.startswith(".pouch-dtype-probe-")]


def test_live_cgroups(live: dict) -> None:
    cgroup = live["cgroup"]
    assert cgroup["version"] in ("v1", "v2", "hybrid")
    mounts = Path("/proc/self/mountinfo").read_text()
    assert (" - cgroup2 " in mounts) == (cgroup["v2_mount"] is not None)
    for controller, mount_point in cgroup["v1_mounts"].items():
        assert os.path.isdir(mount_point), controller
    if cgroup["version"] != "v2":
        memory = cgroup["v1_mounts"].get("memory")
        expected = memory is not None and os.path.exists(f"{memory}/memory.memsw.limit_in_bytes")
        assert cgroup["knobs"]["memory_swap"] is expected
        assert cgroup["knobs"]["pids"] is ("pids" in cgroup["v1_mounts"])


def test_live_seccomp_namespaces_virtualization_fuse(live: dict) -> None:
    status = Path("/proc/self/status").read_text()
    field = re.search(r"^Seccomp:\s*(\d+)", status, re.MULTILINE)
    assert live["seccomp"]["status_field"] == (int(field.group(1)) if field else None)
    assert live["seccomp"]["method"] == "prctl"
    if field:
        assert live["seccomp"]["supported"] is True
    assert live["namespaces"]["cgroup"] == os.path.exists("/proc/self/ns/cgroup")
    assert live["virtualization"]["kvm_device"] == os.path.exists("/dev/kvm")
    flags = set(re.findall(r"\b(vmx|svm)\b", Path("/proc/cpuinfo").read_text()))
    assert set(live["virtualization"]["cpu_flags"]) == flags
    assert live["fuse"]["device"] == os.path.exists("/dev/fuse")


def test_live_sysctls_are_the_kernels(live: dict) -> None:
    for name, value in live["sysctls"].items():
        path = Path("/proc/sys") / name.replace(".", "/")
        assert value == (" ".join(path.read_text().split()) if path.exists() else None), name
    assert live["sysctls"]["net.ipv4.ip_forward"] in ("0", "1")


def test_live_decision(live: dict) -> None:
    decision = pk.decide(live)
    assert decision["version"] == os.uname().release
    assert decision["supported"] is True, decision["blockers"]
    assert decision["default_runtime"] == "runc"
    if live["backing_fs"]["d_type"] and decision["overlay_multi_lower"]:
        assert decision["snapshotter"] == "overlayfs"


# --- d_type -------------------------------------------------------------------------------------------


def test_d_type_probe_on_a_real_directory(tmp_path: Path) -> None:
    assert pk.probe_d_type(str(tmp_path)) == (True, None)
    assert list(tmp_path.iterdir()) == []


def test_d_type_probe_sees_dt_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem without d_type makes DirEntry fall back to lstat(); the file is gone by then."""

    class UnknownTypeEntry:
        def __init__(self, path: str) -> None:
            self.path = path

        def is_file(self, follow_symlinks: bool = True) -> bool:
            return os.path.isfile(self.path)  # what CPython does for DT_UNKNOWN

    class Listing:
        def __init__(self, directory: str) -> None:
            self.entries = [UnknownTypeEntry(os.path.join(directory, name)) for name in os.listdir(directory)]

        def __enter__(self) -> list[UnknownTypeEntry]:
            return self.entries

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(pk.os, "scandir", Listing)
    assert pk.probe_d_type(str(tmp_path)) == (False, None)


def test_d_type_probe_reports_an_unwritable_dir() -> None:
    d_type, error = pk.probe_d_type("/proc")
    assert d_type is None
    assert error and "cannot create a scratch dir" in error


# --- a recorded /proc tree under probe_root ------------------------------------------------------------

# Real CentOS 7 lines, the cgroup mount options shortened.
CENTOS7_MOUNTINFO = """\
18 40 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
21 18 0:18 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
24 21 0:21 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory
25 21 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
26 21 0:23 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,blkio
40 0 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota
41 40 253:2 / /var/lib/my\\040data rw,relatime shared:2 - ext4 /dev/sdb1 rw
"""


@pytest.fixture
def centos7_tree(tmp_path: Path) -> Path:
    files = {
        "proc/sys/kernel/osrelease": "3.10.0-693.el7.x86_64\n",
        "proc/filesystems": "nodev\tsysfs\nnodev\tcgroup\n\txfs\n",
        "proc/self/mountinfo": CENTOS7_MOUNTINFO,
        "proc/self/status": "Name:\tcat\nSeccomp:\t0\n",
        "proc/cgroups": (
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t1\t1\ncpu\t3\t1\t1\npids\t0\t1\t0\n"
        ),
        "proc/modules": "bridge 151336 1 br_netfilter, Live 0x0\nbr_netfilter 22256 0 - Live 0x0\n",
        "proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu vme vmx hypervisor\n",
        "proc/sys/net/ipv4/ip_forward": "1\n",
        "proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
        "proc/sys/fs/may_detach_mounts": "0\n",
        "proc/sys/fs/inotify/max_user_watches": "8192\n",
        "proc/sys/user/max_user_namespaces": "0\n",
        "proc/self/ns/user": "",
        "lib/modules/3.10.0-693.el7.x86_64/modules.dep": (
            "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/fs/fuse/fuse.ko.xz:\n"
            "kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n"
        ),
        "etc/os-release": (
            'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n'
            'PRETTY_NAME="CentOS Linux 7 (Core)"\nID_LIKE="rhel fedora"\n'
        ),
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "",
        "sys/fs/cgroup/memory/memory.kmem.limit_in_bytes": "",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "",
        "sys/fs/cgroup/blkio/blkio.weight": "",
        "dev/fuse": "",
    }
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


def test_probe_of_a_recorded_tree(centos7_tree: Path) -> None:
    facts = pk.probe(root=str(centos7_tree), home_dir="/var/lib/pouch")
    assert facts["kernel"]["release"] == "3.10.0-693.el7.x86_64"
    assert facts["distribution"] == {
        "id": "centos",
        "version_id": "7",
        "name": "CentOS Linux 7 (Core)",
        "like": ["rhel", "fedora"],
    }
    assert facts["filesystems"] == ["xfs"]
    # No modprobe for a recorded tree: modules.dep answers.
    assert facts["modules"] == {
        "supported": True,
        "overlay": "loadable",
        "br_netfilter": "loaded",
        "fuse": "loadable",
    }
    backing = facts["backing_fs"]
    assert (backing["mount_point"], backing["fstype"], backing["d_type"]) == ("/", "xfs", None)
    cgroup = facts["cgroup"]
    assert cgroup["version"] == "v1"
    assert cgroup["v1_mounts"]["cpu"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert cgroup["kernel_controllers"] == ["cpu", "memory"]
    knobs = cgroup["knobs"]
    assert knobs["memory_limit"] and knobs["memory_kmem"] and knobs["cpu_cfs_quota"] and knobs["blkio_weight"]
    assert not knobs["memory_swap"] and not knobs["pids"] and not knobs["cpuset"]
    assert facts["seccomp"] == {
        "status_field": 0,
        "supported": True,
        "filter_supported": None,
        "method": "/proc/self/status",
    }
    assert facts["namespaces"] == {"cgroup": False, "user": False}  # max_user_namespaces = 0
    assert facts["virtualization"] == {"kvm_device": False, "cpu_flags": ["vmx"], "hypervisor_guest": True}
    assert facts["fuse"] == {"device": True, "filesystem": False}
    assert facts["sysctls"]["fs.may_detach_mounts"] == "0"
    assert facts["sysctls"]["net.bridge.bridge-nf-call-ip6tables"] is None

    decision = pk.decide(facts)
    assert decision["snapshotter"] == "overlayfs"
    assert decision["sysctls"]["fs.may_detach_mounts"] == "1"
    assert decision["boot_modules"] == ["overlay", "br_netfilter"]
    assert decision["modules_to_load"] == ["overlay"]


def test_probe_of_a_tree_without_module_support(centos7_tree: Path) -> None:
    (centos7_tree / "proc/modules").unlink()
    (centos7_tree / "proc/filesystems").write_text("nodev\tcgroup\n\txfs\nnodev\toverlay\n")
    facts = pk.probe(root=str(centos7_tree))
    assert facts["modules"]["overlay"] == "builtin"
    assert facts["modules"]["br_netfilter"] == "builtin"  # its sysctl is there
    assert facts["modules"]["fuse"] == "absent"
    assert pk.decide(facts)["boot_modules"] == []


def test_mountinfo_escapes_and_longest_prefix() -> None:
    mounts = pk.parse_mountinfo(CENTOS7_MOUNTINFO)
    assert pk.find_mount(mounts, "/var/lib/my data/pouch")["fstype"] == "ext4"
    assert pk.find_mount(mounts, "/var/lib/my")["fstype"] == "xfs"
    assert pk.find_mount(mounts, "/sys/fs/cgroup/memory/x")["mount_point"] == "/sys/fs/cgroup/memory"


def test_redhat_release_without_os_release(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/redhat-release").write_text("CentOS release 6.10 (Final)\n")
    assert pk.probe_distribution(pk._Reader(str(tmp_path))) == {
        "id": "centos",
        "version_id": "6.10",
        "name": "CentOS release 6.10 (Final)",
        "like": ["rhel", "fedora"],
    }


def test_xfs_ftype_parsing() -> None:
    out = "naming   =version 2              bsize=4096   ascii-ci=0, ftype=0\n"
    assert pk.parse_xfs_ftype(out) == 0
    assert pk.parse_xfs_ftype("no such line") is None
