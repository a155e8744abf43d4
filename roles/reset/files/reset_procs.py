#!/usr/bin/env python3
"""Find (and with --kill, SIGKILL) the processes the Pouch stack left behind after its units stopped.

A process belongs to the stack when one of its /proc/<pid>/cgroup lines names one of the --unit
units (pouch.service keeps containerd and its shims in its own cgroup, KillMode=process) or one of
the containers of --containers-dir (pouchd names each container's cgroup after its 64-hex id).
Matching by cgroup, not by name, leaves a containerd or lxcfs that something else runs alone.
Prints JSON: {"found": [{"pid", "comm", "why"}], "killed": [...], "remaining": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time

HEX_ID = re.compile(r"^[0-9a-f]{64}$")


def container_ids(directory: str) -> set[str]:
    try:
        return {name for name in os.listdir(directory) if HEX_ID.match(name)}
    except OSError:
        return set()


def read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def find(units: list[str], ids: set[str]) -> list[dict]:
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (me, os.getppid()):
            continue
        cgroup = read(f"/proc/{entry}/cgroup")
        why = None
        for line in cgroup.splitlines():
            path = line.split(":", 2)[-1]
            segments = path.split("/")
            unit = next((u for u in units if u in segments), None)
            if unit:
                why = f"cgroup of {unit}"
                break
            cid = next((s for s in segments if s in ids), None) or next((i for i in ids if i in path), None)
            if cid:
                why = f"cgroup of container {cid[:12]}"
                break
        if why:
            found.append({"pid": int(entry), "comm": read(f"/proc/{entry}/comm").strip(), "why": why})
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unit", action="append", default=[])
    parser.add_argument("--containers-dir", action="append", default=[])
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--wait", type=float, default=15.0)
    args = parser.parse_args()
    ids: set[str] = set()
    for directory in args.containers_dir:
        ids |= container_ids(directory)
    found = find(args.unit, ids)
    killed = []
    if args.kill:
        for proc in found:
            try:
                os.kill(proc["pid"], signal.SIGKILL)
                killed.append(proc)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and find(args.unit, ids):
            time.sleep(0.5)
    remaining = find(args.unit, ids) if args.kill else found
    json.dump({"found": found, "killed": killed, "remaining": remaining}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
