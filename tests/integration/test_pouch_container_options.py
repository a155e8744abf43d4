"""Every option, on every available daemon: create, idempotent rerun, change (update or recreate),
check mode first (predicts the same actions and changes nothing), diff content, and the daemon's
state read back with the docker SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import BOUNDED_RUNTIME, Daemon, core_actions, run_tasks, unique_name

UPDATE = ["update"]
RECREATE = ["create", "stop", "remove", "rename", "start"]


def host(inspect: dict[str, Any], key: str) -> Any:
    return inspect["HostConfig"].get(key)


def config(inspect: dict[str, Any], key: str) -> Any:
    return inspect["Config"].get(key)


def env_value(inspect: dict[str, Any], key: str) -> str | None:
    for entry in inspect["Config"].get("Env") or []:
        name, _, value = entry.partition("=")
        if name == key:
            return value
    return None


@dataclass
class Case:
    option: str  # the option under test (diff key)
    first: dict[str, Any]
    second: dict[str, Any]
    read: Callable[[dict[str, Any]], Any]  # value on the daemon, via the SDK
    expect_first: Any
    expect_second: Any
    docker_action: list[str] = field(default_factory=lambda: RECREATE)
    pouch_action: list[str] | None = None  # None: same as docker
    pouch_only: bool = False
    docker_only_reason: str = ""  # non-empty: skip on pouchd with this reason


BIND_DIR = "/tmp/pa-bind-src"

CASES: list[Case] = [
    Case(
        "command",
        {"command": "sleep 3600"},
        {"command": ["sleep", "3601"]},
        lambda i: config(i, "Cmd"),
        ["sleep", "3600"],
        ["sleep", "3601"],
    ),
    Case(
        "entrypoint",
        {"entrypoint": ["/bin/sh", "-c"], "command": ["sleep 3600"]},
        {"entrypoint": "/bin/sh -ec", "command": ["sleep 3600"]},
        lambda i: config(i, "Entrypoint"),
        ["/bin/sh", "-c"],
        ["/bin/sh", "-ec"],
    ),
    Case(
        "env",
        {"env": {"APP_MODE": "one", "FLAG": "yes"}},
        {"env": {"APP_MODE": "two", "FLAG": "yes"}},
        lambda i: env_value(i, "APP_MODE"),
        "one",
        "two",
        pouch_action=UPDATE,
    ),
    Case(
        "labels",
        {"labels": {"tier": "one"}},
        {"labels": {"tier": "two"}},
        lambda i: config(i, "Labels").get("tier"),
        "one",
        "two",
        pouch_action=UPDATE,
    ),
    Case(
        "published_ports",
        {"published_ports": ["127.0.0.1:28081:80"]},
        {"published_ports": ["127.0.0.1:28082:80/tcp"]},
        lambda i: host(i, "PortBindings")["80/tcp"][0]["HostPort"],
        "28081",
        "28082",
    ),
    Case(
        "volumes",
        {"volumes": [f"{BIND_DIR}:/data:ro"]},
        {"volumes": [f"{BIND_DIR}:/data:rw"]},
        lambda i: sorted(host(i, "Binds")),
        [f"{BIND_DIR}:/data:ro"],
        [f"{BIND_DIR}:/data"],
    ),
    Case(
        "network_mode",
        {"network_mode": "bridge"},
        {"network_mode": "none"},
        lambda i: host(i, "NetworkMode"),
        "bridge",
        "none",
    ),
    Case(
        "hostname",
        {"hostname": "alpha"},
        {"hostname": "beta"},
        lambda i: config(i, "Hostname"),
        "alpha",
        "beta",
    ),
    Case("user", {"user": "root"}, {"user": "nobody"}, lambda i: config(i, "User"), "root", "nobody"),
    Case(
        "working_dir",
        {"working_dir": "/tmp"},
        {"working_dir": "/var"},
        lambda i: config(i, "WorkingDir"),
        "/tmp",
        "/var",
    ),
    Case(
        "restart_policy",
        {"restart_policy": "no"},
        {"restart_policy": "always"},
        lambda i: (host(i, "RestartPolicy") or {}).get("Name") or "no",
        "no",
        "always",
        UPDATE,
    ),
    Case(
        "restart_retries",
        {"restart_policy": "on-failure", "restart_retries": 2},
        {"restart_policy": "on-failure", "restart_retries": 3},
        lambda i: host(i, "RestartPolicy")["MaximumRetryCount"],
        2,
        3,
        UPDATE,
    ),
    Case(
        "memory",
        {"memory": "64m"},
        {"memory": "96M"},
        lambda i: host(i, "Memory"),
        64 << 20,
        96 << 20,
        UPDATE,
    ),
    Case(
        "memory_swap",
        {"memory": "64m", "memory_swap": "128m"},
        {"memory": "64m", "memory_swap": "256m"},
        lambda i: host(i, "MemorySwap"),
        128 << 20,
        256 << 20,
        UPDATE,
    ),
    Case(
        "cpu_shares",
        {"cpu_shares": 512},
        {"cpu_shares": 1024},
        lambda i: host(i, "CpuShares"),
        512,
        1024,
        UPDATE,
    ),
    Case(
        "cpu_quota",
        {"cpu_period": 100000, "cpu_quota": 50000},
        {"cpu_period": 100000, "cpu_quota": 25000},
        lambda i: host(i, "CpuQuota"),
        50000,
        25000,
        UPDATE,
    ),
    Case(
        "cpu_period",
        {"cpu_quota": 20000, "cpu_period": 100000},
        {"cpu_quota": 20000, "cpu_period": 50000},
        lambda i: host(i, "CpuPeriod"),
        100000,
        50000,
        UPDATE,
    ),
    Case(
        "cpuset_cpus",
        {"cpuset_cpus": "0"},
        {"cpuset_cpus": "0-1"},
        lambda i: host(i, "CpusetCpus"),
        "0",
        "0-1",
        UPDATE,
    ),
    Case("pids_limit", {"pids_limit": 100}, {"pids_limit": 200}, lambda i: host(i, "PidsLimit"), 100, 200),
    # Started, through the bounded runtime (conftest): root here lacks CAP_SYS_RESOURCE, which plain runc
    # would fail to give a privileged container. What the container can do inside: test_privileged_inside.
    Case(
        "privileged",
        {"privileged": False, "runtime": BOUNDED_RUNTIME},
        {"privileged": True, "runtime": BOUNDED_RUNTIME},
        lambda i: bool(host(i, "Privileged")),
        False,
        True,
    ),
    Case(
        "cap_add",
        {"cap_add": ["NET_ADMIN"]},
        {"cap_add": ["CAP_NET_ADMIN", "SYS_TIME"]},
        lambda i: sorted(c.upper().removeprefix("CAP_") for c in host(i, "CapAdd")),
        ["NET_ADMIN"],
        ["NET_ADMIN", "SYS_TIME"],
    ),
    Case(
        "cap_drop",
        {"cap_drop": ["CHOWN"]},
        {"cap_drop": ["CHOWN", "MKNOD"]},
        lambda i: sorted(c.upper().removeprefix("CAP_") for c in host(i, "CapDrop")),
        ["CHOWN"],
        ["CHOWN", "MKNOD"],
    ),
    Case(
        "devices",
        {"devices": ["/dev/null:/dev/mynull"]},
        {"devices": ["/dev/zero:/dev/myzero:rw"]},
        lambda i: [d["PathInContainer"] for d in host(i, "Devices")],
        ["/dev/mynull"],
        ["/dev/myzero"],
    ),
    Case(
        "dns",
        {"dns": ["10.0.0.1"]},
        {"dns": ["10.0.0.2", "10.0.0.3"]},
        lambda i: host(i, "Dns"),
        ["10.0.0.1"],
        ["10.0.0.2", "10.0.0.3"],
    ),
    Case(
        "extra_hosts",
        {"extra_hosts": {"db.example": "10.1.1.1"}},
        {"extra_hosts": {"db.example": "10.1.1.2"}},
        lambda i: host(i, "ExtraHosts"),
        ["db.example:10.1.1.1"],
        ["db.example:10.1.1.2"],
    ),
    Case(
        "log_driver",
        {"log_driver": "json-file"},
        {"log_driver": "none"},
        lambda i: host(i, "LogConfig")["Type"],
        "json-file",
        "none",
    ),
    Case(
        "log_options",
        {"log_driver": "json-file", "log_options": {"max-size": "1m"}},
        {"log_driver": "json-file", "log_options": {"max-size": "2m"}},
        lambda i: host(i, "LogConfig")["Config"]["max-size"],
        "1m",
        "2m",
    ),
    Case(
        "stop_signal",
        {"stop_signal": "SIGTERM"},
        {"stop_signal": "INT"},
        lambda i: config(i, "StopSignal"),
        "SIGTERM",
        "SIGINT",
    ),
    Case(
        "stop_timeout",
        {"stop_timeout": 1, "comparisons": {"stop_timeout": "strict"}},
        {"stop_timeout": 2, "comparisons": {"stop_timeout": "strict"}},
        lambda i: config(i, "StopTimeout"),
        1,
        2,
    ),
    Case("runtime", {"runtime": "runc"}, {"runtime": "runc2"}, lambda i: host(i, "Runtime"), "runc", "runc2"),
    # Pouch's own options.
    Case(
        "enable_lxcfs",
        {"enable_lxcfs": False},
        {"enable_lxcfs": True},
        lambda i: bool(host(i, "EnableLxcfs")),
        False,
        True,
        pouch_only=True,
    ),
    Case(
        "rich",
        {"rich": False},
        {"rich": True},
        lambda i: bool(config(i, "Rich")),
        False,
        True,
        pouch_only=True,
    ),
    Case(
        "rich_mode",
        {"rich": True, "rich_mode": "dumb-init"},
        {"rich": True, "rich_mode": "sbin-init"},
        lambda i: config(i, "RichMode"),
        "dumb-init",
        "sbin-init",
        pouch_only=True,
    ),
    Case(
        "init_script",
        {"rich": True, "init_script": "/bin/true"},
        {"rich": True, "init_script": "/bin/true 2"},
        lambda i: config(i, "InitScript"),
        "/bin/true",
        "/bin/true 2",
        pouch_only=True,
    ),
    Case(
        "spec_annotation",
        {"spec_annotation": {"team": "one"}},
        {"spec_annotation": {"team": "two"}},
        lambda i: config(i, "SpecAnnotation")["team"],
        "one",
        "two",
        UPDATE,
        pouch_only=True,
    ),
]


def base_args(daemon: Daemon, name: str) -> dict[str, Any]:
    # stop_timeout 1: `sleep` as pid 1 ignores SIGTERM, so every stop would otherwise wait 10 s.
    return {"name": name, "image": daemon.images["latest"], "command": "sleep 3600", "stop_timeout": 1}


@pytest.fixture(scope="module", autouse=True)
def bind_source() -> None:
    Path(BIND_DIR).mkdir(exist_ok=True)


def case_steps(daemon: Daemon, case: Case, name: str) -> list[dict[str, Any]]:
    first = {**base_args(daemon, name), **case.first}
    second = {**base_args(daemon, name), **case.second}
    return [
        {**first, "_check": True},  # 0 predicted create
        first,  # 1 create
        first,  # 2 idempotent
        {**second, "_check": True},  # 3 predicted change
        second,  # 4 change
        second,  # 5 idempotent
    ]


@pytest.fixture(scope="module")
def option_runs(daemon: Daemon) -> Iterator[dict[str, tuple[str, list[dict[str, Any]]]]]:
    """All cases of this daemon in one playbook (one ansible startup); each case has its own container."""
    cases = [case for case in CASES if not case.pouch_only or daemon.kind == "pouch"]
    names = {case.option: unique_name(f"opt-{case.option.replace('_', '-')}") for case in cases}
    tasks = [step for case in cases for step in case_steps(daemon, case, names[case.option])]
    try:
        results = run_tasks(daemon, tasks, timeout=1800)
        runs = {case.option: (names[case.option], results[6 * i : 6 * i + 6]) for i, case in enumerate(cases)}
        yield runs
    finally:
        daemon.remove(*names.values())


@pytest.mark.parametrize("case", CASES, ids=[case.option for case in CASES])
def test_option(daemon: Daemon, case: Case, option_runs: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
    if case.pouch_only and daemon.kind != "pouch":
        pytest.skip(f"{case.option} is a pouchd-only option (its refusal on dockerd is in test_bad_inputs)")
    expected_change = (
        case.pouch_action if (daemon.kind == "pouch" and case.pouch_action) else case.docker_action
    )
    name, results = option_runs[case.option]
    for index, result in enumerate(results):
        assert not result.get("failed"), f"step {index} failed: {result.get('msg')}"
    predicted_create, created, rerun, predicted_change, changed, rerun_changed = results

    running = case.first.get("state", "started") == "started"
    create_actions = ["create", "start"] if running else ["create"]
    assert predicted_create["changed"] and core_actions(predicted_create["actions"]) == create_actions
    assert created["changed"] and core_actions(created["actions"]) == create_actions
    assert not rerun["changed"] and rerun["actions"] == [], f"rerun changed: {rerun.get('diff')}"
    created_id = created["container"]["Id"]
    assert case.read(created["container"]) == case.expect_first

    assert predicted_change["changed"] and predicted_change["actions"] == expected_change
    assert case.option in predicted_change["diff"]["after"], predicted_change["diff"]
    assert predicted_change["diff"]["before"][case.option] != predicted_change["diff"]["after"][case.option]

    assert changed["changed"] and changed["actions"] == expected_change, changed.get("diff")
    assert changed["diff"] == predicted_change["diff"]
    assert not rerun_changed["changed"], f"rerun after change changed: {rerun_changed.get('diff')}"

    inspect = daemon.inspect(name)
    assert inspect is not None
    assert case.read(inspect) == case.expect_second
    assert inspect["State"]["Running"] == running
    if expected_change == UPDATE:
        assert inspect["Id"] == created_id, "an in-place update must keep the container"
        assert changed["update_parameters"]
    else:
        assert inspect["Id"] != created_id, "a recreate must replace the container"


def test_option_first_values_on_daemon(daemon: Daemon) -> None:
    """The first values of every case, set together on one container, read back with the SDK."""
    name = unique_name("opt-all")
    args = base_args(daemon, name)
    applicable = [c for c in CASES if not c.pouch_only or daemon.kind == "pouch"]
    # Cases that share an option (rich, cpu_period, restart_policy) join only when they agree.
    for case in applicable:
        if any(k in args and args[k] != v for k, v in case.first.items()):
            continue
        args.update(case.first)
    try:
        created, rerun = run_tasks(daemon, [args, args])
        assert not created.get("failed"), created.get("msg")
        assert not rerun["changed"], rerun.get("diff")
        inspect = daemon.inspect(name)
        assert inspect is not None
        for case in applicable:
            if all(args.get(k) == v for k, v in case.first.items()):
                assert case.read(inspect) == case.expect_first, case.option
    finally:
        daemon.remove(name)


# /dev of an unprivileged container (the OCI default devices and mounts): anything else comes from the host.
DEFAULT_DEV = {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr"}
DEFAULT_DEV |= {"stdin", "stdout", "tty", "urandom", "zero"}


def test_privileged_inside(daemon: Daemon) -> None:
    """privileged: true starts a container that is privileged inside: it sees the host's devices and may
    add a network link. The same probe without privileged sees neither (so the probe can fail)."""
    probe = "ls -1 /dev; if ip link add papriv0 type bridge; then echo LINK-ADDED; fi"
    names = unique_name("opt-unpriv-run"), unique_name("opt-priv-run")
    job = {"command": ["sh", "-c", probe], "runtime": BOUNDED_RUNTIME, "detach": False}
    host_devices = {entry.name for entry in Path("/dev").iterdir()} - DEFAULT_DEV
    assert host_devices, "this host has no device beyond a container's defaults to look for"
    try:
        unprivileged, privileged = run_tasks(
            daemon,
            [
                {**base_args(daemon, names[0]), **job, "privileged": False},
                {**base_args(daemon, names[1]), **job, "privileged": True},
            ],
        )
        for name, result, flag in zip(names, (unprivileged, privileged), (False, True), strict=True):
            assert not result.get("failed"), result.get("msg")
            assert result["status"] == 0 and core_actions(result["actions"]) == ["create", "start", "wait"]
            inspect = daemon.inspect(name)
            assert inspect is not None and bool(inspect["HostConfig"].get("Privileged")) is flag
        seen = set(privileged["stdout"].split())
        assert "LINK-ADDED" in seen, privileged["stdout"] + privileged["stderr"]
        assert seen & host_devices, f"no host device in a privileged container's /dev: {sorted(seen)}"
        seen_unprivileged = set(unprivileged["stdout"].split())
        assert "LINK-ADDED" not in seen_unprivileged and "Operation not permitted" in unprivileged["stderr"]
        assert not seen_unprivileged & host_devices, sorted(seen_unprivileged & host_devices)
    finally:
        daemon.remove(*names)


def test_image_change_recreates(daemon: Daemon) -> None:
    name = unique_name("opt-image")
    first = base_args(daemon, name)
    second = {**first, "image": daemon.images["v2"]}
    try:
        results = run_tasks(daemon, [first, {**second, "_check": True}, second, second])
        assert [r.get("failed") for r in results] == [False] * 4 or not any(r.get("failed") for r in results)
        _created, predicted, changed, rerun = results
        assert core_actions(predicted["actions"]) == RECREATE
        assert core_actions(changed["actions"]) == RECREATE
        assert "image" in changed["diff"]["after"]
        assert not rerun["changed"]
        inspect = daemon.inspect(name)
        assert inspect is not None
        image = daemon.sdk.inspect_image(daemon.images["v2"])
        assert inspect["Image"] == image["Id"]
        assert env_value(inspect, "IMAGE_VARIANT") == "v2"
    finally:
        daemon.remove(name)


def test_image_upgrade_on_pouchd(pouch_daemon: Daemon) -> None:
    daemon = pouch_daemon
    name = unique_name("opt-upgrade")
    first = {**base_args(daemon, name), "image_upgrade": True}
    second = {**first, "image": daemon.images["v2"]}
    try:
        created, predicted, changed, rerun = run_tasks(
            daemon, [first, {**second, "_check": True}, second, second]
        )
        assert not changed.get("failed"), changed.get("msg")
        assert core_actions(predicted["actions"]) == ["upgrade"]
        assert core_actions(changed["actions"]) == ["upgrade"]
        assert not rerun["changed"]
        inspect = daemon.inspect(name)
        assert inspect is not None
        assert inspect["Id"] == created["container"]["Id"], "upgrade keeps the container"
        assert inspect["Image"] == daemon.sdk.inspect_image(daemon.images["v2"])["Id"]
        assert inspect["State"]["Running"]
    finally:
        daemon.remove(name)


def test_image_defaults_are_not_differences(daemon: Daemon) -> None:
    """The image's env and label, daemon-filled defaults: strict env/labels still idempotent."""
    name = unique_name("opt-defaults")
    args = {
        **base_args(daemon, name),
        "env": {"MINE": "1"},
        "labels": {"mine": "1"},
        "comparisons": {"env": "strict", "labels": "strict"},
    }
    try:
        created, rerun = run_tasks(daemon, [args, args])
        assert created["changed"] and not rerun["changed"], rerun.get("diff")
        inspect = daemon.inspect(name)
        assert inspect is not None
        assert env_value(inspect, "IMAGE_VARIANT") == "latest"  # inherited from the image
        assert env_value(inspect, "MINE") == "1"
    finally:
        daemon.remove(name)


def test_comparisons(daemon: Daemon) -> None:
    name = unique_name("opt-cmp")
    first = {**base_args(daemon, name), "env": {"A": "1", "B": "2"}, "labels": {"x": "1"}}
    fewer_env = {**base_args(daemon, name), "env": {"A": "1"}, "labels": {"x": "1"}}
    ignored_cmd = {**fewer_env, "command": "sleep 999", "comparisons": {"command": "ignore"}}
    strict_env = {**fewer_env, "comparisons": {"env": "strict"}}
    wildcard_ignore = {**base_args(daemon, name), "hostname": "other", "comparisons": {"*": "ignore"}}
    try:
        created, fewer, ignored, strict, wildcard = run_tasks(
            daemon, [first, fewer_env, ignored_cmd, strict_env, wildcard_ignore]
        )
        assert created["changed"]
        assert not fewer["changed"], "allow_more_present (default for env) tolerates extra variables"
        assert not ignored["changed"], "comparisons: command: ignore"
        assert strict["changed"] and strict["actions"] == RECREATE, "strict env drops B: a recreate"
        assert not wildcard["changed"], "'*': ignore"
        inspect = daemon.inspect(name)
        assert inspect is not None
        assert env_value(inspect, "B") is None
    finally:
        daemon.remove(name)
