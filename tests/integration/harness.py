"""Run pouch_* modules the real way (ansible-playbook, -c local, the repo's ansible.cfg) and read results.

Each call writes a one-play playbook whose tasks all `register` and `ignore_errors`; a last task
dumps the registered results to JSON, so a test gets every task's full module result in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from lab.ansible_env import BIN, ansible_command
from lab.ansible_env import ansible_env as lab_ansible_env

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = BIN  # test_pouch_info runs ansible-doc from it
# An extra runtime of both test daemons (conftest): runc minus the capabilities root lacks on this
# machine, so that a privileged container can start (bounded_runc.py).
BOUNDED_RUNTIME = "bounded-runc"
BOUNDED_RUNC = Path(__file__).resolve().parent / "bounded_runc.py"


@dataclass
class Daemon:
    """A running private daemon as the tests see it."""

    kind: str  # "docker" or "pouch"
    host: str
    images: dict[str, str]  # tag -> full reference in the local registry
    registry: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sdk(self) -> docker.APIClient:
        # The independent view of the daemon: the docker SDK at API 1.24.
        return docker.APIClient(base_url=self.host, version="1.24", timeout=60)

    def inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return self.sdk.inspect_container(name)
        except docker.errors.NotFound:
            return None

    def container_snapshot(self) -> list[tuple[str, str, str]]:
        """(name, id, status-word) of every container: compare before/after a failing task.

        The 1.3.0 release can leave a "ghost": its list reads meta.json files, inspect reads its
        in-memory cache, and a container that exits on its own while it is being removed can have
        its meta.json written back after Remove deleted it (daemon/mgr/container.go,
        markExitedAndRelease checks, releases, then writes). Such an entry is listed but 404s on
        inspect and on remove until pouchd restarts; it is no container of the test's, so it is
        left out rather than failing the comparison at a random moment."""
        result = []
        for item in self.sdk.containers(all=True):
            detail = self.inspect(item["Id"])
            if detail is not None:
                result.append((detail["Name"].lstrip("/"), detail["Id"], detail["State"]["Status"]))
        return sorted(result)

    def logs(self, name: str) -> bytes:
        """Raw log stream (the SDK's logs() reads Config.Tty, which pouchd's inspect leaves out)."""
        sdk = self.sdk
        response = sdk._get(sdk._url("/containers/{0}/logs", name), params={"stdout": 1, "stderr": 1})
        response.raise_for_status()
        return response.content

    def remove(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                self.sdk.remove_container(name, force=True, v=True)


@dataclass(frozen=True)
class AuthRegistry:
    """A private registry that answers only to `username`/`password` (HTTP basic auth), at the address
    the daemon under test pulls from (`for_daemon`: conftest serves each registry twice)."""

    address: str
    username: str
    password: str
    skopeo_flags: tuple[str, ...]  # for pushing test images into it
    plain_address: str = ""  # the same registry over plain HTTP, for dockerd

    def for_daemon(self, daemon: Daemon) -> AuthRegistry:
        """This registry as `daemon` reaches it (dockerd: plain HTTP; pouchd: TLS)."""
        if daemon.kind == "docker" and self.plain_address:
            return dataclasses.replace(self, address=self.plain_address)
        return self

    def auth(self, password: str | None = None) -> dict[str, str]:
        """A registry_auth option value (with another password, to be refused)."""
        return {
            "username": self.username,
            "password": self.password if password is None else password,
            "server_address": self.address,
        }


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ansible_env(daemon: Daemon | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = lab_ansible_env(
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        # One python process per task instead of copying the module to a temp dir first.
        ANSIBLE_PIPELINING="true",
        # The "node" is this machine: its system Python, standard library only, runs the module.
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
    )
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    if daemon is not None:
        env["POUCH_HOST"] = daemon.host  # exercises the env fallback of pouch_host
    env.update(extra or {})
    return env


def run_module_tasks(
    daemon: Daemon | None,
    module: str,
    tasks: list[dict[str, Any]],
    extra_env: dict[str, str] | None = None,
    timeout: float = 600,
    verbosity: int = 0,
) -> list[dict[str, Any]]:
    """Run `module` once per task in one playbook; return each task's registered result.

    A task is a dict of module args, optionally with the keys `_check` (check mode) and `_diff`
    (default true). Every result also carries the run's whole output (stdout and stderr, at
    `verbosity` -v flags) as `_stdout`.
    """
    with tempfile.TemporaryDirectory(prefix="pa-play-") as tmp:
        out = Path(tmp) / "results.json"
        play_tasks: list[dict[str, Any]] = []
        for index, task in enumerate(tasks):
            play_tasks.append(
                {
                    "name": f"step {index}",
                    module: {k: v for k, v in task.items() if not k.startswith("_")},
                    "register": f"r{index}",
                    "ignore_errors": True,
                    "check_mode": bool(task.get("_check")),
                    "diff": bool(task.get("_diff", True)),
                }
            )
        results_expr = "{{ [" + ", ".join(f"r{i}" for i in range(len(tasks))) + "] | to_json }}"
        play_tasks.append(
            {
                "name": "dump results",
                "ansible.builtin.copy": {"content": results_expr, "dest": str(out), "mode": "0600"},
                "check_mode": False,
                "diff": False,
            }
        )
        playbook = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": play_tasks}]
        path = Path(tmp) / "play.yml"
        path.write_text(json.dumps(playbook))
        flags = ["-" + "v" * verbosity] if verbosity else []
        proc = subprocess.run(
            [ansible_command("ansible-playbook"), *flags, "-i", "localhost,", "-c", "local", str(path)],
            cwd=ROOT,
            env=ansible_env(daemon, extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not out.exists():
            tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            raise AssertionError(f"ansible-playbook failed (rc {proc.returncode}):\n{tail}")
        results: list[dict[str, Any]] = json.loads(out.read_text())
        for result in results:
            result["_stdout"] = proc.stdout + proc.stderr
        return results


def run_tasks(
    daemon: Daemon | None,
    tasks: list[dict[str, Any]],
    extra_env: dict[str, str] | None = None,
    timeout: float = 600,
) -> list[dict[str, Any]]:
    """pouch_container tasks in one playbook (run_module_tasks)."""
    return run_module_tasks(daemon, "pouch_container", tasks, extra_env=extra_env, timeout=timeout)


def run_task(daemon: Daemon | None, extra_env: dict[str, str] | None = None, **args: Any) -> dict[str, Any]:
    return run_tasks(daemon, [args], extra_env=extra_env)[0]


def run_playbook(
    playbook: Path, extra_vars: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[int, str]:
    proc = subprocess.run(
        [
            ansible_command("ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            json.dumps(extra_vars),
            str(playbook),
        ],
        cwd=ROOT,
        env=ansible_env(None, env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def core_actions(actions: list[str]) -> list[str]:
    """Actions without the pull, which depends on what earlier tests already pulled."""
    return [action for action in actions if action != "pull"]
