"""Background processes tracked by pidfiles, so a later ``lab down`` can stop what ``lab up`` started.

A pidfile is trusted only while /proc/PID/cmdline still contains the expected marker, so a reused
pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tracked_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line contains ``marker``."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    if "State:\tZ" in status:  # a zombie is gone for our purposes
        return None
    return pid if marker.encode() in cmdline else None


def _gone(pid: int) -> bool:
    try:  # reap it when it is our child
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; returns once the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.1)
    raise RuntimeError(f"process {pid} survived SIGKILL")


def stop_tracked(pidfile: Path, marker: str, timeout: float = 10.0) -> bool:
    """Stop the process behind ``pidfile`` (if any) and remove the pidfile; True if one was running."""
    pid = tracked_pid(pidfile, marker)
    if pid is not None:
        stop_pid(pid, timeout)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def spawn_detached(argv: list[str], log: Path, pidfile: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start a long-lived helper in its own session (it outlives this CLI), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )
    # Popen returns once exec has begun; until it completes /proc/PID/cmdline reads empty, and a
    # tracked_pid() in that window would call the new process a stranger. Wait for the new image.
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                break
        except FileNotFoundError:
            break
        time.sleep(0.01)
    pidfile.write_text(str(proc.pid))
    return proc


def pids_with_marker(marker: str) -> list[int]:
    """Every live process whose command line contains ``marker`` (e.g. the state dir path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            status = (entry / "status").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if marker.encode() in cmdline and "State:\tZ" not in status and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found
