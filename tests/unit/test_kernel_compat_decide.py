"""kernel_compat decision logic (module_utils/pouch_kernel.py) against recorded kernel fact sets."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kernel_facts"


def _load_pouch_kernel() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pouch_kernel", ROOT / "module_utils" / "pouch_kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pk = _load_pouch_kernel()


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


ALL_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.json"))
CENTOS6 = "centos6_2.6.32-754.el6.json"
CENTOS7_327 = "centos7_3.10.0-327.el7.json"
CENTOS7_693 = "centos7_3.10.0-693.el7.json"
ALINUX2 = "alinux2_4.19.91-26.al7.json"
UBUNTU1604 = "ubuntu1604_4.4.0-210-generic.json"
DEBIAN12 = "debian12_6.1.0-50-amd64.json"
UNPARSABLE = "custom_4.19_unparsable.json"


# --- kernel release parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("2.6.32-754.el6.x86_64", (2, 6, 32, 754, 6, "el6", True)),
        ("3.10.0-327.el7.x86_64", (3, 10, 0, 327, 7, "el7", True)),
        ("3.10.0-693.el7.x86_64", (3, 10, 0, 693, 7, "el7", True)),
        ("3.10.0-1160.119.1.el7.x86_64", (3, 10, 0, 1160, 7, "el7", True)),
        ("4.19.91-26.al7.x86_64", (4, 19, 91, 26, None, "al7", True)),
        ("5.14.0-362.8.1.el9_3.x86_64", (5, 14, 0, 362, 9, "el9", True)),
        ("4.4.0-210-generic", (4, 4, 0, 210, None, None, True)),
        ("6.1.0-50-amd64", (6, 1, 0, 50, None, None, True)),
        ("6.18.44-fc-v595", (6, 18, 44, None, None, None, True)),
        ("6.8.0", (6, 8, 0, None, None, None, True)),
        ("4.19", (4, 19, None, None, None, None, False)),
        ("5.4-rc1", (5, 4, None, None, None, None, False)),
    ],
)
def test_parse_kernel_release(release: str, expected: tuple[Any, ...]) -> None:
    parsed = pk.parse_kernel_release(release + "\n")
    got = tuple(
        parsed[key]
        for key in ("major", "minor", "patch", "build", "el_version", "vendor_tag", "pouchd_parseable")
    )
    assert got == expected
    assert parsed["parsed"] is True
    assert parsed["release"] == release


@pytest.mark.parametrize("release", ["", "linux", "v6.1"])
def test_parse_kernel_release_without_numbers(release: str) -> None:
    parsed = pk.parse_kernel_release(release)
    assert parsed["parsed"] is False
    assert parsed["pouchd_parseable"] is False
    assert pk.version_tuple(parsed) is None


@pytest.mark.parametrize(
    ("release", "multi_lower"),
    [
        ("2.6.32-754.el6.x86_64", False),
        ("3.10.0-327.el7.x86_64", False),
        ("3.10.0-514.el7.x86_64", False),
        ("3.10.0-693.el7.x86_64", True),
        ("3.10.0-1160.119.1.el7.x86_64", True),
        ("3.18.0-generic", False),  # mainline overlayfs (3.18) had a single lowerdir
        ("4.0.0-1-amd64", True),
        ("4.19", True),
        ("6.1.0-50-amd64", True),
    ],
)
def test_overlay_multi_lower(release: str, multi_lower: bool) -> None:
    assert pk.overlay_multi_lower_supported(pk.parse_kernel_release(release)) is multi_lower


# --- recorded fact sets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_kernel_block_matches_the_parser(name: str) -> None:
    facts = fixture(name)
    assert facts["kernel"] == pk.parse_kernel_release(facts["kernel"]["release"])


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_decision_shape(name: str) -> None:
    decision = pk.decide(fixture(name))
    json.dumps(decision)  # facts must survive Ansible's JSON round trip
    assert set(decision["features"]) == set(pk.FEATURES)
    assert decision["disabled_features"] == sorted(k for k, v in decision["features"].items() if not v)
    assert set(decision["disabled_reasons"]) == set(decision["disabled_features"])
    assert all(decision["disabled_reasons"].values())
    assert decision["snapshotter"] in ("overlayfs", "native")
    assert decision["default_runtime"] in ("runc", "runlxc")
    assert decision["supported"] is (not decision["blockers"])
    assert set(decision["modules_to_load"]) <= set(decision["boot_modules"])
    assert decision["sysctls"]["net.ipv4.ip_forward"] == "1"


def test_centos6_without_runlxc_is_a_blocker_naming_kernel_feature_and_options() -> None:
    decision = pk.decide(fixture(CENTOS6))
    assert decision["supported"] is False
    (blocker,) = decision["blockers"]
    assert "kernel 2.6.32-754.el6.x86_64 is below 3.10" in blocker
    assert "pouchd needs runlxc" in blocker
    assert "kernel_compat_runlxc_archive" in blocker and "kernel_compat_runlxc_checksum" in blocker
    assert "upgrade the kernel" in blocker


def test_centos6_with_user_supplied_runlxc() -> None:
    decision = pk.decide(fixture(CENTOS6), {"runlxc_source": "archive"})
    assert decision["supported"] is True
    assert decision["default_runtime"] == "runlxc"
    assert decision["runlxc_required"] is True
    assert decision["snapshotter"] == "native"
    assert "overlayfs is not available" in decision["snapshotter_reason"]
    for feature in ("pids_limit", "kernel_memory", "cgroup_namespace", "seccomp", "disk_quota"):
        assert feature in decision["disabled_features"]
    assert decision["features"]["lxcfs"] is True  # FUSE is there: lxcfs 2.0 runs on 2.6.32
    assert "net.bridge.bridge-nf-call-iptables" not in decision["sysctls"]
    assert decision["boot_modules"] == []


def test_runlxc_binary_that_is_missing_is_a_blocker() -> None:
    decision = pk.decide(fixture(CENTOS6), {"runlxc_source": "binary", "runlxc_binary_present": False})
    assert decision["supported"] is False
    assert any("kernel_compat_runlxc_binary" in blocker for blocker in decision["blockers"])


def test_runlxc_is_never_default_on_3_10_and_later() -> None:
    decision = pk.decide(fixture(CENTOS7_693), {"runlxc_source": "archive"})
    assert decision["default_runtime"] == "runc"
    assert decision["runlxc_required"] is False


def test_centos7_327_falls_back_to_native() -> None:
    decision = pk.decide(fixture(CENTOS7_327))
    assert decision["supported"] is True
    assert decision["default_runtime"] == "runc"
    assert decision["snapshotter"] == "native"
    assert "lacks multiple lower dirs" in decision["snapshotter_reason"]
    assert decision["overlay_multi_lower"] is False
    for feature in ("pids_limit", "kernel_memory", "cgroup_namespace", "lxcfs", "kata", "disk_quota"):
        assert feature in decision["disabled_features"]
    assert decision["features"]["memory_swap"] is True
    # overlay is not needed with native; br_netfilter is a loadable module.
    assert decision["boot_modules"] == ["br_netfilter"]
    assert decision["modules_to_load"] == ["br_netfilter"]
    assert decision["sysctls"]["net.bridge.bridge-nf-call-iptables"] == "1"
    assert "fs.may_detach_mounts" not in decision["sysctls"]
    assert any("fs.may_detach_mounts" in warning for warning in decision["warnings"])


def test_centos7_327_forced_overlayfs_is_a_blocker() -> None:
    decision = pk.decide(fixture(CENTOS7_327), {"snapshotter": "overlayfs"})
    assert decision["supported"] is False
    assert "kernel_compat_snapshotter is overlayfs but" in decision["blockers"][0]


def test_centos7_327_xfs_ftype0_is_named_when_the_kernel_is_not_the_problem() -> None:
    facts = fixture(CENTOS7_327)
    facts["kernel"] = pk.parse_kernel_release("3.10.0-1160.el7.x86_64")
    decision = pk.decide(facts)
    assert decision["snapshotter"] == "native"
    assert "does not report d_type" in decision["snapshotter_reason"]
    assert "ftype=0" in decision["snapshotter_reason"]


def test_centos7_693_overlay_and_may_detach_mounts() -> None:
    decision = pk.decide(fixture(CENTOS7_693))
    assert decision["supported"] is True
    assert decision["snapshotter"] == "overlayfs"
    assert decision["sysctls"]["fs.may_detach_mounts"] == "1"
    assert decision["boot_modules"] == ["overlay", "br_netfilter"]
    assert decision["disabled_reasons"]["kernel_memory"].startswith("kmem accounting before kernel 4.0")
    assert "pids_limit" in decision["disabled_features"]
    assert decision["quota_driver"] == ""
    assert decision["user_namespaces"] is False


def test_may_detach_mounts_can_be_left_alone() -> None:
    decision = pk.decide(fixture(CENTOS7_693), {"may_detach_mounts": False})
    assert "fs.may_detach_mounts" not in decision["sysctls"]


def test_alinux2_has_everything_but_kvm() -> None:
    decision = pk.decide(fixture(ALINUX2))
    assert decision["supported"] is True
    assert decision["snapshotter"] == "overlayfs"
    assert decision["disabled_features"] == ["kata"]
    assert decision["features"]["kernel_memory"] is True
    assert decision["quota_driver"] == "prjquota"
    assert decision["boot_modules"] == ["overlay", "br_netfilter"]
    assert decision["modules_to_load"] == []  # already loaded
    assert decision["sysctl_drift"] == ["fs.inotify.max_user_instances", "fs.inotify.max_user_watches"]


def test_ubuntu1604_without_swap_accounting_and_cgroup_ns() -> None:
    decision = pk.decide(fixture(UBUNTU1604))
    assert decision["supported"] is True
    assert decision["snapshotter"] == "overlayfs"
    assert decision["disabled_features"] == ["cgroup_namespace", "disk_quota", "memory_swap"]
    assert "swapaccount=1" in decision["disabled_reasons"]["memory_swap"]
    assert decision["kata_capable"] is True
    assert decision["modules_to_load"] == ["overlay", "br_netfilter"]


def test_debian12_cgroup_v2() -> None:
    decision = pk.decide(fixture(DEBIAN12))
    assert decision["supported"] is True
    assert decision["cgroup_version"] == "v2"
    assert decision["snapshotter"] == "overlayfs"
    assert decision["disabled_features"] == ["kata", "kernel_memory"]
    assert decision["disabled_reasons"]["kernel_memory"] == "cgroup v2 has no kernel memory limit"
    assert any("cgroup v2 only" in warning for warning in decision["warnings"])
    assert decision["quota_driver"] == "prjquota"
    assert decision["modules_to_load"] == ["overlay", "br_netfilter"]


def test_unparsable_release_is_a_blocker() -> None:
    decision = pk.decide(fixture(UNPARSABLE))
    assert decision["supported"] is False
    (blocker,) = decision["blockers"]
    assert "'4.19' cannot be parsed by pouchd" in blocker
    assert "%d.%d.%d-%s" in blocker
    assert decision["version_info"]["major"] == 4  # the other decisions still hold


def test_release_without_any_number_is_a_blocker() -> None:
    facts = fixture(DEBIAN12)
    facts["kernel"] = pk.parse_kernel_release("")
    decision = pk.decide(facts)
    assert decision["supported"] is False
    assert decision["snapshotter"] == "native"


def test_no_cgroup_filesystem_is_a_blocker() -> None:
    facts = fixture(DEBIAN12)
    facts["cgroup"] = {"version": "none", "knobs": {}}
    decision = pk.decide(facts)
    assert any("no cgroup filesystem" in blocker for blocker in decision["blockers"])


def test_overlay_home_dir_falls_back_to_native() -> None:
    facts = fixture(DEBIAN12)
    facts["backing_fs"]["fstype"] = "overlay"
    decision = pk.decide(facts)
    assert decision["snapshotter"] == "native"
    assert "cannot use it as upper layer" in decision["snapshotter_reason"]
    assert "overlay" not in decision["boot_modules"]


def test_unverified_d_type_keeps_overlay_with_a_warning() -> None:
    facts = fixture(DEBIAN12)
    facts["backing_fs"].update(d_type=None, d_type_error="read-only filesystem")
    decision = pk.decide(facts)
    assert decision["snapshotter"] == "overlayfs"
    assert any("read-only filesystem" in warning for warning in decision["warnings"])


# --- sysctls: idempotence and raise-only limits ------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_second_run_has_no_drift(name: str) -> None:
    """After the drop-in is applied, the probe sees the wanted values and asks for nothing more."""
    facts = fixture(name)
    first = pk.decide(facts)
    applied = copy.deepcopy(facts)
    applied["sysctls"].update(first["sysctls"])
    second = pk.decide(applied)
    assert second["sysctls"] == first["sysctls"]
    assert second["sysctl_drift"] == []


def test_inotify_limits_are_raised_never_lowered() -> None:
    facts = fixture(DEBIAN12)
    facts["sysctls"]["fs.inotify.max_user_watches"] = "1048576"
    decision = pk.decide(facts)
    assert decision["sysctls"]["fs.inotify.max_user_watches"] == "1048576"
    assert decision["sysctls"]["fs.inotify.max_user_instances"] == "8192"
    assert "fs.inotify.max_user_watches" not in decision["sysctl_drift"]


def test_user_sysctl_missing_from_the_kernel_is_a_blocker() -> None:
    facts = fixture(DEBIAN12)
    facts["sysctls"]["net.ipv4.no_such_knob"] = None
    decision = pk.decide(facts, {"sysctls": {"net.ipv4.ip_forward": "1", "net.ipv4.no_such_knob": "1"}})
    assert decision["supported"] is False
    assert "net.ipv4.no_such_knob does not exist" in decision["blockers"][0]


def test_bridge_nf_call_off_leaves_bridge_sysctls_alone() -> None:
    decision = pk.decide(fixture(DEBIAN12), {"bridge_nf_call": False})
    assert not any(name.startswith("net.bridge.") for name in decision["sysctls"])


def test_missing_br_netfilter_is_reported() -> None:
    decision = pk.decide(fixture(CENTOS6), {"runlxc_source": "archive"})
    assert any("br_netfilter" in warning for warning in decision["warnings"])


def test_recorded_lab_vm_after_converge() -> None:
    """Recorded on a lab VM after the role ran: nothing left to load, only the side effect's drift."""
    decision = pk.decide(fixture("recorded_labvm_debian12_6.1.0-50-amd64.json"))
    assert decision["supported"] is True
    assert decision["snapshotter"] == "overlayfs"
    assert decision["cgroup_version"] == "v2"
    assert decision["boot_modules"] == ["overlay", "br_netfilter"]
    assert decision["modules_to_load"] == []
    assert decision["disabled_features"] == ["kernel_memory"]
    # Recorded while molecule's side effect had lowered max_user_instances to 128 by hand.
    assert decision["sysctl_drift"] == ["fs.inotify.max_user_instances"]


def test_hand_written_debian12_matches_the_lab_recording() -> None:
    written = fixture(DEBIAN12)
    recorded = fixture("recorded_labvm_debian12_6.1.0-50-amd64.json")
    for key in ("kernel", "distribution", "cgroup", "namespaces", "seccomp"):
        if key == "cgroup":
            assert written[key]["v2_controllers"] == recorded[key]["v2_controllers"]
            assert written[key]["knobs"] == recorded[key]["knobs"]
        else:
            assert written[key] == recorded[key], key
