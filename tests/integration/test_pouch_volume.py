"""pouch_volume against real daemons: create, recreate policies for every compared property, the in-use
guard, removal, and bad inputs that must leave no volume behind. State is read back with the docker SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Daemon
from resource_harness import (
    closed_unix_socket,
    ensure_image,
    failed,
    ok,
    remove_volumes,
    run_module_tasks,
    start_container,
    uniq,
    volume,
    volume_names,
)

MODULE = "pouch_volume"


def run(daemon: Daemon, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return run_module_tasks(daemon, MODULE, list(tasks))


@pytest.fixture
def vol(daemon: Daemon) -> Iterator[str]:
    name = uniq("i4vol")
    yield name
    remove_volumes(daemon, name)


def options_of(daemon: Daemon, details: dict[str, Any]) -> dict[str, Any]:
    """Driver options as each daemon keeps them (pouchd: Status, dockerd: Options)."""
    return dict(details.get("Status") or {}) if daemon.kind == "pouch" else dict(details.get("Options") or {})


def test_create_check_idempotent_diff(daemon: Daemon, vol: str) -> None:
    args = {"name": vol, "labels": {"app": "db"}}
    (predicted,) = run(daemon, {**args, "_check": True})
    ok(predicted, True, ["create"])
    assert volume(daemon, vol) is None
    assert predicted["diff"] == {
        "before": {},
        "after": {"driver": "local", "driver_options": {}, "labels": {"app": "db"}},
    }
    created, again = run(daemon, args, args)
    ok(created, True, ["create"])
    details = volume(daemon, vol)
    assert details is not None and details["Labels"] == {"app": "db"} and details["Driver"] == "local"
    assert created["volume"]["Name"] == vol
    ok(again, False, [])
    assert again["diff"]["before"] == again["diff"]["after"]


def _option_cases(kind: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    cases = [("labels.tier", {"labels": {"tier": "a"}}, {"labels": {"tier": "b"}})]
    if kind == "pouch":
        cases.append(
            ("driver_options.size", {"driver_options": {"size": "10m"}}, {"driver_options": {"size": "20m"}})
        )
    else:
        tmpfs = {"type": "tmpfs", "device": "tmpfs"}
        cases.append(
            (
                "driver_options.o",
                {"driver_options": {**tmpfs, "o": "size=10m"}},
                {"driver_options": {**tmpfs, "o": "size=20m"}},
            )
        )
    return cases


@pytest.mark.parametrize("index", [0, 1], ids=["labels", "driver_options"])
def test_each_property_under_each_recreate_policy(daemon: Daemon, vol: str, index: int) -> None:
    difference, first, second = _option_cases(daemon.kind)[index]
    created, same = run(daemon, {"name": vol, **first}, {"name": vol, **first})
    ok(created, True, ["create"])
    ok(same, False, [])
    original = volume(daemon, vol)
    assert original is not None
    # never: reported, warned about, left alone.
    (never,) = run(daemon, {"name": vol, **second})
    ok(never, False, [])
    assert never["differences"] == [difference]
    assert any("recreate is 'never'" in warning for warning in never.get("warnings", []))
    assert volume(daemon, vol) == original
    # options-changed, check mode: predicted, nothing done.
    (predicted,) = run(daemon, {"name": vol, **second, "recreate": "options-changed", "_check": True})
    ok(predicted, True, ["remove", "create"])
    assert volume(daemon, vol) == original
    changed, settled = run(
        daemon,
        {"name": vol, **second, "recreate": "options-changed"},
        {"name": vol, **second, "recreate": "options-changed"},
    )
    ok(changed, True, ["remove", "create"])
    assert changed["diff"]["before"] != changed["diff"]["after"]
    details = volume(daemon, vol)
    assert details is not None
    if difference == "labels.tier":
        assert details["Labels"] == second["labels"]
    elif daemon.kind == "pouch":
        assert options_of(daemon, details)["size"] == str(20 << 20)
    else:
        assert options_of(daemon, details)["o"] == "size=20m"
    ok(settled, False, [])
    # always: recreated at every run.
    (always,) = run(daemon, {"name": vol, **second, "recreate": "always"})
    ok(always, True, ["remove", "create"])


def test_pouch_size_is_compared_in_bytes(daemon: Daemon, vol: str, tmp_path: Path) -> None:
    if daemon.kind != "pouch":
        pytest.skip("pouchd's local driver options (mount, size) only exist on pouchd")
    mount = tmp_path / "volumes"
    mount.mkdir()
    args = {
        "name": vol,
        "driver_options": {"size": "10m", "mount": str(mount)},
        "recreate": "options-changed",
    }
    created, in_bytes, again = run(
        daemon, args, {**args, "driver_options": {"size": str(10 << 20), "mount": str(mount)}}, args
    )
    ok(created, True, ["create"])
    details = volume(daemon, vol)
    assert details is not None and details["Mountpoint"].startswith(str(mount))
    assert details["Status"]["size"] == str(10 << 20)
    ok(in_bytes, False, [])
    ok(again, False, [])


def test_driver_change_recreates(daemon: Daemon, vol: str) -> None:
    if daemon.kind != "pouch":
        pytest.skip("dockerd has a single built-in volume driver (local)")
    created, predicted = run(
        daemon, {"name": vol}, {"name": vol, "driver": "tmpfs", "recreate": "options-changed", "_check": True}
    )
    ok(created, True, ["create"])
    ok(predicted, True, ["remove", "create"])
    assert predicted["differences"] == ["driver"]
    assert volume(daemon, vol)["Driver"] == "local"
    (changed,) = run(daemon, {"name": vol, "driver": "tmpfs", "recreate": "options-changed"})
    ok(changed, True, ["remove", "create"])
    assert volume(daemon, vol)["Driver"] == "tmpfs"


def test_volume_in_use_is_not_removed_or_recreated(daemon: Daemon, vol: str) -> None:
    ensure_image(daemon)
    ok(run(daemon, {"name": vol, "labels": {"v": "1"}})[0], True, ["create"])
    container = uniq("i4volc")
    try:
        start_container(daemon, container, volumes=[f"{vol}:/data"], start=False)
        original = volume(daemon, vol)
        refused_remove, refused_recreate = run(
            daemon,
            {"name": vol, "state": "absent"},
            {"name": vol, "labels": {"v": "2"}, "recreate": "options-changed"},
        )
        failed(refused_remove, f"volume {vol} is used by container(s) {container}: refusing to remove it")
        failed(refused_recreate, f"volume {vol} is used by container(s) {container}: refusing to recreate it")
        assert volume(daemon, vol) == original
    finally:
        daemon.remove(container)


def test_absent_check_real_idempotent(daemon: Daemon, vol: str) -> None:
    ok(run(daemon, {"name": vol})[0], True, ["create"])
    (predicted,) = run(daemon, {"name": vol, "state": "absent", "_check": True})
    ok(predicted, True, ["remove"])
    assert predicted["diff"]["after"] == {} and predicted["diff"]["before"]["driver"] == "local"
    assert volume(daemon, vol) is not None
    removed, again = run(daemon, {"name": vol, "state": "absent"}, {"name": vol, "state": "absent"})
    ok(removed, True, ["remove"])
    assert volume(daemon, vol) is None
    ok(again, False, [])


def test_bad_inputs_leave_no_volume(daemon: Daemon, tmp_path: Path) -> None:
    victim = uniq("i4badvol")
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"name": "a"}, ("volume name 'a' is invalid",)),
        ({"name": "bad name"}, ("volume name 'bad name' is invalid",)),
        ({"name": "/abs/path"}, ("volume name '/abs/path' is invalid",)),
        ({"name": victim, "driver": ""}, ("driver must not be empty",)),
        ({"name": victim, "driver": "i4nosuchdriver"}, ("POST /volumes/create failed", "i4nosuchdriver")),
        (
            {"name": victim, "driver_options": {"size": 10}},
            ("driver_options: the value of 'size' must be a string",),
        ),
        (
            {"name": victim, "labels": {"keep": True}},
            ("labels: the value of 'keep' must be a string, got bool",),
        ),
        ({"name": victim, "recreate": "sometimes"}, ("value of recreate must be one of",)),
        ({"name": victim, "state": "gone"}, ("value of state must be one of",)),
        ({"name": victim, "pouch_host": closed_unix_socket(tmp_path)}, ("cannot talk to the daemon",)),
    ]
    if daemon.kind == "pouch":
        cases += [
            (
                {"name": victim, "driver_options": {"size": "lots"}},
                ("driver_options size 'lots' is not a size",),
            ),
            (
                {"name": victim, "driver_options": {"mount": "rel/dir"}},
                ("mount 'rel/dir' must be an absolute path",),
            ),
        ]
    else:
        cases += [
            ({"name": victim, "driver_options": {"mount": "/tmp"}}, ("POST /volumes/create failed", "mount")),
            ({"name": victim, "driver_options": {"size": "10m"}}, ("POST /volumes/create failed", "size")),
        ]
    before = volume_names(daemon)
    try:
        results = run(daemon, *[args for args, _ in cases])
        for (_args, fragments), result in zip(cases, results, strict=True):
            failed(result, *fragments)
        assert volume_names(daemon) == before
    finally:
        remove_volumes(daemon, victim)
