"""Pidfile tracking: a pidfile is trusted only while its process runs the expected command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lab.procs import pids_with_marker, spawn_detached, stop_tracked, tracked_pid


def test_spawn_track_and_stop(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    pidfile = tmp_path / "sleeper.pid"
    proc = spawn_detached(
        [sys.executable, "-c", "import time; time.sleep(60)", marker], tmp_path / "sleeper.log", pidfile
    )
    assert tracked_pid(pidfile, marker) == proc.pid
    assert os.getpgid(proc.pid) == proc.pid  # its own session: it outlives the CLI that started it
    assert pids_with_marker(marker) == [proc.pid]
    assert tracked_pid(pidfile, "some other command") is None  # a reused pid is never signalled
    assert stop_tracked(pidfile, marker)
    assert not pidfile.exists()
    assert not pids_with_marker(marker)
    assert not stop_tracked(pidfile, marker)  # stopping twice is harmless


def test_stale_pidfile_is_ignored(tmp_path: Path) -> None:
    pidfile = tmp_path / "gone.pid"
    pidfile.write_text("999999999")
    assert tracked_pid(pidfile, "anything") is None
    pidfile.write_text("not a pid")
    assert tracked_pid(pidfile, "anything") is None
