"""roles/runtimes on a lab VM: each runtime installed, registered with its type, and runnable."""

from __future__ import annotations

import json
import shlex

import pytest

V1 = "io.containerd.runtime.v1.linux"
BUNDLE = "/root/molecule-bundle"
# Turn `runc spec`'s default into a one-shot, terminal-less busybox echo.
EDIT_SPEC = (
    "import json, sys; p = sys.argv[1]; s = json.load(open(p)); "
    "s['process']['args'] = ['/bin/busybox', 'echo', 'hello from the bundle']; "
    "s['process']['terminal'] = False; json.dump(s, open(p, 'w'))"
)


@pytest.fixture(scope="module")
def exported(host) -> dict:
    return json.loads(host.file("/root/molecule-runtimes.json").content_string)


@pytest.fixture(scope="module")
def bundle(host) -> str:
    # A static busybox from the controller (Debian's busybox-static) is the whole root filesystem.
    host.run(f"rm -rf {BUNDLE} && mkdir -p {BUNDLE}/rootfs/bin")
    result = host.ansible(
        "copy", f"src=/bin/busybox dest={BUNDLE}/rootfs/bin/busybox mode=0755", check=False, become=True
    )
    assert not result.get("failed"), result
    host.check_output(f"cd {BUNDLE} && runc spec && python3 -c {shlex.quote(EDIT_SPEC)} config.json")
    return BUNDLE


def hardware_virtualization(host) -> bool:
    has_flag = host.run("grep -Eqw 'vmx|svm' /proc/cpuinfo").rc == 0
    return host.file("/dev/kvm").exists and has_flag


def test_runc_registered_from_the_package(host, exported) -> None:
    assert exported["pouch_runtimes"]["runc"] == {"path": "/usr/sbin/runc", "type": V1}
    assert host.package("runc").is_installed
    assert "runc version" in host.check_output("/usr/sbin/runc --version")


def test_crun_registered_and_answers(host, exported) -> None:
    assert exported["pouch_runtimes"]["crun"] == {"path": "/usr/bin/crun", "type": V1}
    assert "crun version" in host.check_output("crun --version")


def test_runlxc_installed_with_lxc(host, exported) -> None:
    assert exported["pouch_runtimes"]["runlxc"] == {"path": "/usr/local/bin/runlxc", "type": V1}
    runlxc = host.file("/usr/local/bin/runlxc")
    assert runlxc.mode == 0o755 and runlxc.user == "root"
    assert host.package("lxc").is_installed


def test_kata_only_with_hardware_virtualization(host, exported) -> None:
    shim = host.file("/usr/local/bin/containerd-shim-kata-v2")
    if hardware_virtualization(host):
        assert exported["pouch_runtimes"]["kata"]["type"] == "io.containerd.kata.v2"
        assert shim.is_symlink
    else:
        assert "kata" not in exported["pouch_runtimes"]
        assert not shim.exists


def test_default_runtime_is_runc(exported) -> None:
    assert exported["pouch_default_runtime"] == "runc"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_runtime_runs_a_busybox_bundle(host, bundle, runtime) -> None:
    name = f"molecule-{runtime}"
    result = host.run(f"cd {bundle} && {runtime} run {name}")
    host.run(f"{runtime} delete -f {name}")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "hello from the bundle"
