#!/usr/bin/env python3
"""pouch_container vs community.docker.docker_container on one private dockerd, side by side.

Measures, in one ansible-playbook run (tasks interleaved so machine load hits all alike):
  - Ansible's floor: an ansible.builtin.ping task;
  - a no-op pouch_container task and a no-op docker_container task on an existing container;
  - converging 50 containers from scratch, then again as a no-op, with each module.
Prints medians and the ratios. Not part of the test suite.

community.docker comes from the `ansible` package (12.x, for ansible-core 2.19), installed with
bench/requirements.txt into its own venv (.lab/bench-venv, or --venv); .venv is left alone.

    .venv/bin/python bench/container_noop.py [--rounds 15] [--containers 50]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.ansible_env import ansible_command, ansible_env  # noqa: E402
from lab.daemons import DockerDaemon  # noqa: E402
from lab.paths import default_state_dir  # noqa: E402
from lab.registry import Registry  # noqa: E402
from lab.testimages import build_test_images  # noqa: E402

TIMING_LINE = re.compile(r"^\s*([\d.]+)s\s+\(playbook\) : (.+?)\s*$")


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    marker = venv / ".bench-requirements"
    requirements = (ROOT / "bench" / "requirements.txt").read_text()
    if not (python.exists() and marker.exists() and marker.read_text() == requirements):
        print(f"installing bench/requirements.txt into {venv} (ansible 12.x, requests) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements.txt")],
            check=True,
        )
        marker.write_text(requirements)
    return venv / "bin"


def build_playbook(host: str, image: str, rounds: int, count: int) -> list[dict[str, Any]]:
    docker_host = host
    pouch_args = {"pouch_host": host, "image": image, "command": "sleep 3600", "stop_timeout": 1}
    docker_args = {"docker_host": docker_host, "image": image, "command": "sleep 3600", "stop_timeout": 1}
    tasks: list[dict[str, Any]] = [
        {"name": "setup pouch target", "pouch_container": {**pouch_args, "name": "bench-pouch"}},
        {
            "name": "setup docker target",
            "community.docker.docker_container": {**docker_args, "name": "bench-docker"},
        },
    ]
    for index in range(rounds):
        tasks += [
            {"name": f"ping {index}", "ansible.builtin.ping": {}},
            {"name": f"pouch noop {index}", "pouch_container": {**pouch_args, "name": "bench-pouch"}},
            {
                "name": f"docker noop {index}",
                "community.docker.docker_container": {**docker_args, "name": "bench-docker"},
            },
        ]
    names = [f"bench-fleet-{n:02d}" for n in range(count)]
    for label, module, args in (
        ("pouch", "pouch_container", pouch_args),
        ("docker", "community.docker.docker_container", docker_args),
    ):
        for phase in ("scratch", "noop"):
            tasks.append(
                {
                    "name": f"{label} fleet {phase}",
                    module: {**args, "name": f"{{{{ item }}}}-{label}"},
                    "loop": names,
                    "loop_control": {"label": "{{ item }}"},
                }
            )
    return [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": tasks}]


def run(bin_dir: Path, playbook: list[dict[str, Any]]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pa-bench-") as tmp:
        path = Path(tmp) / "bench.yml"
        path.write_text(json.dumps(playbook))
        env = ansible_env(
            bin_dir,
            ANSIBLE_PYTHON_INTERPRETER=str(bin_dir / "python"),  # has requests for docker_container
            TASK_TIMINGS_TOP="100000",
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_PIPELINING="true",  # same for all three tasks; what a tuned deployment uses
        )
        proc = subprocess.run(
            [ansible_command("ansible-playbook", bin_dir), "-i", "localhost,", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"benchmark playbook failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}")
        timings: dict[str, float] = {}
        in_tasks = False
        for line in proc.stdout.splitlines():
            if line.startswith("TASK TIMINGS"):
                in_tasks = True
                continue
            if line.startswith("ROLE TIMINGS"):
                break
            match = TIMING_LINE.match(line) if in_tasks else None
            if match:
                timings[match.group(2)] = float(match.group(1))
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="no-op tasks per module (median reported)")
    parser.add_argument("--containers", type=int, default=50, help="containers converged per module")
    parser.add_argument("--venv", type=Path, default=default_state_dir() / "bench-venv")
    options = parser.parse_args()

    bin_dir = ensure_venv(options.venv)
    state = Path(tempfile.mkdtemp(prefix="pa-bench-", dir="/tmp"))
    images = build_test_images(default_state_dir() / "testimages")
    registry = Registry(state / "registry")
    registry.start()
    daemon = DockerDaemon(registry=registry.address)
    try:
        image = registry.push(images[0])
        daemon.start()
        print(f"dockerd {daemon.version().get('Version')} at {daemon.host}; image {image}", flush=True)
        timings = run(bin_dir, build_playbook(daemon.host, image, options.rounds, options.containers))
    finally:
        daemon.stop()
        registry.stop()
        subprocess.run(["rm", "-rf", str(state)], check=False)

    def median(prefix: str) -> float:
        values = [v for k, v in timings.items() if re.fullmatch(rf"{prefix} \d+", k)]
        return statistics.median(values)

    ping, pouch, docker = median("ping"), median("pouch noop"), median("docker noop")
    fleet = {key: timings[key] for key in timings if " fleet " in key}
    n = options.containers
    print()
    print(f"{'task (median of ' + str(options.rounds) + ')':<40}{'seconds':>10}")
    print(f"{'ping (Ansible floor)':<40}{ping:>10.3f}")
    print(f"{'pouch_container no-op':<40}{pouch:>10.3f}")
    print(f"{'docker_container no-op':<40}{docker:>10.3f}")
    print()
    print(f"{'converge ' + str(n) + ' containers':<40}{'pouch':>10}{'docker':>10}{'ratio':>8}")
    for phase in ("scratch", "noop"):
        p, d = fleet[f"pouch fleet {phase}"], fleet[f"docker fleet {phase}"]
        label = "  from scratch" if phase == "scratch" else "  again (no-op)"
        print(f"{label:<40}{p:>10.2f}{d:>10.2f}{p / d:>8.2f}")
    print()
    print(f"no-op ratio pouch_container / docker_container: {pouch / docker:.2f} (target <= 1.0)")
    print(f"no-op ratio pouch_container / ping floor:       {pouch / ping:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
