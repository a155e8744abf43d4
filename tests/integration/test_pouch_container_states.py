"""State transitions, restart/recreate, detach: false, cleanup, check mode and diff of states."""

from __future__ import annotations

import contextlib
from typing import Any

from harness import Daemon, core_actions, run_tasks, unique_name


def args(daemon: Daemon, name: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": daemon.images["latest"],
        "command": "sleep 3600",
        "stop_timeout": 1,
        "state": state,
        **extra,
    }


def status(daemon: Daemon, name: str) -> str:
    inspect = daemon.inspect(name)
    if inspect is None:
        return "absent"
    state = inspect["State"]
    if state["Running"]:
        return "running"
    return "created" if state["Status"] == "created" else "stopped"


# (from, to, expected actions); "from" is reached by the previous step of the walk.
WALK = [
    ("absent", "present", ["create"]),
    ("present", "present", []),
    ("present", "started", ["start"]),
    ("started", "started", []),
    ("started", "present", []),
    ("present", "stopped", ["stop"]),
    ("stopped", "stopped", []),
    ("stopped", "present", []),
    ("present", "started", ["start"]),
    ("started", "absent", ["remove"]),
    ("absent", "absent", []),
    ("absent", "stopped", ["create"]),
    ("stopped", "started", ["start"]),
    ("started", "stopped", ["stop"]),
    ("stopped", "absent", ["remove"]),
    ("absent", "started", ["create", "start"]),
    ("started", "absent", ["remove"]),
]
DAEMON_STATE = {
    "present": {"created", "running", "stopped"},
    "started": {"running"},
    "stopped": {"created", "stopped"},
    "absent": {"absent"},
}


def test_state_walk(daemon: Daemon) -> None:
    """Every transition: check mode predicts it and changes nothing; the real run does it; the SDK agrees."""
    name = unique_name("state")
    try:
        for source, target, expected in WALK:
            before = status(daemon, name)
            predicted, done = run_tasks(
                daemon, [{**args(daemon, name, target), "_check": True}, args(daemon, name, target)]
            )
            label = f"{source} -> {target}"
            assert not predicted.get("failed") and not done.get("failed"), (
                label,
                predicted.get("msg"),
                done.get("msg"),
            )
            assert core_actions(predicted["actions"]) == expected, label
            assert core_actions(done["actions"]) == expected, label
            assert done["changed"] == bool(expected), label
            if expected:
                assert done["diff"]["before"]["state"] != done["diff"]["after"]["state"], label
            assert status(daemon, name) in DAEMON_STATE[target], (label, before, status(daemon, name))
    finally:
        daemon.remove(name)


def test_restart_and_recreate(daemon: Daemon) -> None:
    name = unique_name("restart")
    base = args(daemon, name, "started")
    try:
        created, restarted_check, restarted, recreated_check, recreated = run_tasks(
            daemon,
            [
                base,
                {**base, "restart": True, "_check": True},
                {**base, "restart": True},
                {**base, "recreate": True, "_check": True},
                {**base, "recreate": True},
            ],
        )
        first_id = created["container"]["Id"]
        assert restarted_check["actions"] == ["restart"] and restarted["actions"] == ["restart"]
        assert restarted["container"]["Id"] == first_id
        assert restarted["container"]["State"]["StartedAt"] != created["container"]["State"]["StartedAt"]
        assert (
            recreated_check["actions"]
            == recreated["actions"]
            == ["create", "stop", "remove", "rename", "start"]
        )
        inspect = daemon.inspect(name)
        assert inspect is not None and inspect["Id"] != first_id and inspect["State"]["Running"]
    finally:
        daemon.remove(name)


def test_exited_container_is_started_again(daemon: Daemon) -> None:
    """A container whose process ended by itself (pouchd: exited; API stop: stopped) counts as not running."""
    name = unique_name("exited")
    job = {"name": name, "image": daemon.images["latest"], "command": "true", "stop_timeout": 1}
    try:
        first, second = run_tasks(daemon, [job, {**job, "state": "stopped"}])
        assert first["actions"] == ["create", "start"] or core_actions(first["actions"]) == [
            "create",
            "start",
        ]
        assert second["actions"] == [], "an exited container is already stopped"
        third = run_tasks(daemon, [job])[0]
        assert third["actions"] == ["start"]
    finally:
        daemon.remove(name)


def test_detach_false_returns_status_and_output(daemon: Daemon) -> None:
    ok_name, fail_name, tolerated = (
        unique_name("job-ok"),
        unique_name("job-fail"),
        unique_name("job-tolerated"),
    )
    image = daemon.images["latest"]
    try:
        ok, failed, ignored, predicted = run_tasks(
            daemon,
            [
                {
                    "name": ok_name,
                    "image": image,
                    "command": ["sh", "-c", "echo out; echo err >&2"],
                    "detach": False,
                    "cleanup": True,
                },
                {
                    "name": fail_name,
                    "image": image,
                    "command": "sh -c 'echo broken; exit 3'",
                    "detach": False,
                },
                {
                    "name": tolerated,
                    "image": image,
                    "command": "sh -c 'exit 4'",
                    "detach": False,
                    "ignore_exit_status": True,
                    "cleanup": True,
                },
                {
                    "name": unique_name("job-check"),
                    "image": image,
                    "command": "true",
                    "detach": False,
                    "cleanup": True,
                    "_check": True,
                },
            ],
        )
        assert not ok.get("failed") and ok["status"] == 0
        assert ok["stdout"] == "out\n" and ok["stderr"] == "err\n"
        assert core_actions(ok["actions"]) == ["create", "start", "wait", "cleanup"]
        assert daemon.inspect(ok_name) is None, "cleanup removes the container"
        assert failed["failed"] and failed["status"] == 3 and "exited with status 3" in failed["msg"]
        assert "broken" in failed["msg"]
        assert daemon.inspect(fail_name) is not None, "without cleanup the container stays"
        assert not ignored.get("failed") and ignored["status"] == 4
        assert core_actions(predicted["actions"]) == ["create", "start", "wait", "cleanup"]
    finally:
        daemon.remove(ok_name, fail_name, tolerated)


def test_pull_policies(daemon: Daemon) -> None:
    name = unique_name("pull")
    image = daemon.images["v2"]
    with contextlib.suppress(Exception):
        daemon.sdk.remove_image(image, force=True) if daemon.sdk.images(
            name=image.rsplit(":", 1)[0]
        ) else None
    base = {"name": name, "image": image, "command": "sleep 3600", "stop_timeout": 1}
    try:
        never, predicted, missing, again, always = run_tasks(
            daemon,
            [{**base, "pull": "never"}, {**base, "_check": True}, base, base, {**base, "pull": "always"}],
        )
        assert never["failed"] and "pull is 'never'" in never["msg"]
        assert predicted["actions"] == ["pull", "create", "start"]
        assert missing["actions"] == ["pull", "create", "start"]
        assert again["actions"] == []
        assert always["actions"] == [] and not always["changed"], "same image ID after pull: no change"
        access = daemon.sdk.inspect_image(image)
        assert daemon.inspect(name)["Image"] == access["Id"]
    finally:
        daemon.remove(name)
