"""pouch_info against real daemons (facts normalized for both, lists, never a change), bad inputs, and
ansible-doc for the four issue #4 modules."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, VENV_BIN, Daemon, ansible_env
from resource_harness import (
    closed_unix_socket,
    ensure_image,
    failed,
    image_snapshot,
    network_names,
    ok,
    remove_networks,
    remove_volumes,
    run_module_tasks,
    start_container,
    uniq,
    volume_names,
)

MODULE = "pouch_info"


def run(daemon: Daemon | None, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return run_module_tasks(daemon, MODULE, list(tasks))


def test_engine_facts_match_the_daemon(daemon: Daemon) -> None:
    info = daemon.sdk.info()
    version = daemon.sdk.version()
    (result,) = run(daemon, {})
    ok(result, False)
    engine = result["engine"]
    assert engine["kind"] == daemon.kind
    assert engine["version"] == version["Version"]
    assert engine["api_version"] == version["ApiVersion"]
    assert engine["root_dir"] == (info.get("PouchRootDir") or info.get("DockerRootDir"))
    assert engine["storage_family"] == "overlay"
    assert "runc" in engine["runtimes"] and "runc2" in engine["runtimes"]
    assert engine["default_runtime"] == "runc"
    assert engine["cgroup_driver"] == "cgroupfs"
    # Counters and clocks move between two reads; the configuration does not.
    for key in ("Driver", "DefaultRuntime", "Runtimes", "RegistryConfig", "CgroupDriver", "KernelVersion"):
        assert result["host_info"].get(key) == info.get(key), key
    assert result["version"]["Version"] == version["Version"]
    if daemon.kind == "pouch":
        assert engine["api_version"] == "1.24"
        assert engine["snapshotter"] == "overlayfs" and engine["storage_driver"] == "overlayfs"
        assert engine["lxcfs_enabled"] is True  # the private pouchd runs with enable-lxcfs
        assert engine["cri_enabled"] is False
        # Configured only on builds that have the setting (conftest); the release has none.
        assert engine["insecure_registries"] == daemon.extra["insecure_registries"]
        assert engine["live_restore_enabled"] is True
        assert not engine["operating_system"].startswith('"')
    else:
        assert engine["snapshotter"] is None and engine["storage_driver"] == "overlay2"
        assert engine["lxcfs_enabled"] is False and engine["cri_enabled"] is False
        assert engine["default_registry"] == "docker.io"
    for key in ("containers", "images", "networks", "volumes"):
        assert key not in result


def test_lists_summaries_and_verbose(daemon: Daemon) -> None:
    ensure_image(daemon)
    container, stopped, net, vol = uniq("i4info"), uniq("i4infost"), uniq("i4infonet"), uniq("i4infovol")
    try:
        start_container(daemon, container)
        start_container(daemon, stopped, start=False)
        daemon.sdk.create_network(net, driver="bridge", labels={"i4": "info"})
        daemon.sdk.create_volume(vol, labels={"i4": "info"})
        summary, running_only, verbose = run(
            daemon,
            {"containers_all": True, "images": True, "networks": True, "volumes": True},
            {"containers": True},
            {"containers_all": True, "networks": True, "verbose_output": True},
        )
        ok(summary, False)
        names = {item["Name"] for item in summary["containers"]}
        assert {container, stopped} <= names
        assert all(
            set(item) == {"Id", "Name", "Image", "ImageID", "Status", "Created", "Labels"}
            for item in summary["containers"]
        )
        assert {item["Name"] for item in summary["networks"]} == set(network_names(daemon))
        assert next(item for item in summary["networks"] if item["Name"] == net)["Labels"] == {"i4": "info"}
        assert {item["Name"] for item in summary["volumes"]} == set(volume_names(daemon))
        assert any(daemon.images["latest"] in item["RepoTags"] for item in summary["images"])
        running = {item["Name"] for item in running_only["containers"]}
        assert container in running and stopped not in running
        ok(verbose, False)
        full = next(item for item in verbose["networks"] if item["Name"] == net)
        assert "IPAM" in full  # the daemon's own entry, not the summary
    finally:
        daemon.remove(container, stopped)
        remove_networks(daemon, net)
        remove_volumes(daemon, vol)


def test_check_mode_and_no_change(daemon: Daemon) -> None:
    state = (image_snapshot(daemon), network_names(daemon), volume_names(daemon), daemon.container_snapshot())
    checked, real = run(
        daemon,
        {"containers_all": True, "images": True, "networks": True, "volumes": True, "_check": True},
        {"containers_all": True, "images": True, "networks": True, "volumes": True},
    )
    ok(checked, False)
    ok(real, False)
    assert checked["engine"] == real["engine"]
    assert (
        image_snapshot(daemon),
        network_names(daemon),
        volume_names(daemon),
        daemon.container_snapshot(),
    ) == state


def test_bad_inputs(daemon: Daemon, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-ca.pem")
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"containers": "perhaps"}, ("containers",)),
        ({"images": "many"}, ("images",)),
        ({"verbose_output": "x"}, ("verbose_output",)),
        ({"bogus_option": True}, ("Unsupported parameters", "bogus_option")),
        ({"timeout": "soon"}, ("timeout",)),
        ({"pouch_host": closed_unix_socket(tmp_path)}, ("cannot talk to the daemon",)),
        ({"pouch_host": "ftp://127.0.0.1:21"}, ("unsupported host 'ftp://127.0.0.1:21'",)),
        ({"pouch_host": "tcp://127.0.0.1:1"}, ("cannot talk to the daemon at tcp://127.0.0.1:1",)),
        ({"tls": True}, ("TLS options need a tcp:// pouch_host",)),
        (
            {"pouch_host": "tcp://127.0.0.1:1", "validate_certs": True, "ca_path": missing},
            ("does not exist",),
        ),
        (
            {"pouch_host": "tcp://127.0.0.1:1", "tls": True, "client_cert": missing.replace("ca", "cert")},
            ("client_cert",),
        ),
    ]
    results = run(daemon, *[args for args, _ in cases])
    for (_args, fragments), result in zip(cases, results, strict=True):
        failed(result, *fragments)
        if "pouch_host" in _args and result.get("can_talk_to_daemon") is not None:
            assert result["can_talk_to_daemon"] is False


@pytest.mark.parametrize("module", ["pouch_image", "pouch_network", "pouch_volume", "pouch_info"])
def test_ansible_doc_renders(module: str) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-M", "library", module],
        cwd=ROOT,
        env=ansible_env(None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    assert f"MODULE {module}" in proc.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in proc.stdout, section
    assert "pouch_host" in proc.stdout  # the shared doc fragment
