"""Print the slowest tasks and per-role wall time at the end of a playbook run.

ansible-core ships no timing callback (profile_tasks lives in ansible.posix, which we do not
install), so this small aggregate callback stands in for it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_timings
type: aggregate
short_description: show the slowest tasks and per-role totals
description:
  - At the end of a run, prints the slowest tasks and the wall time spent in each role.
options:
  top:
    description: How many of the slowest tasks to list.
    type: int
    default: 10
    env:
      - name: TASK_TIMINGS_TOP
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._durations: dict[str, float] = {}
        self._roles: dict[str, float] = defaultdict(float)
        self._current: tuple[str, str, float] | None = None
        self._started = time.monotonic()

    def _close_current(self) -> None:
        if self._current is None:
            return
        name, role, started = self._current
        elapsed = time.monotonic() - started
        self._durations[name] = self._durations.get(name, 0.0) + elapsed
        self._roles[role] += elapsed
        self._current = None

    def _open(self, task: Any) -> None:
        self._close_current()
        role = task._role.get_name() if getattr(task, "_role", None) else "(playbook)"
        self._current = (f"{role} : {task.get_name()}", role, time.monotonic())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._open(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._open(task)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close_current()
        top = int(self.get_option("top"))
        total = time.monotonic() - self._started
        self._display.banner("TASK TIMINGS")
        for name, seconds in sorted(self._durations.items(), key=lambda kv: -kv[1])[:top]:
            self._display.display(f"{seconds:8.2f}s  {name}")
        self._display.banner("ROLE TIMINGS")
        for role, seconds in sorted(self._roles.items(), key=lambda kv: -kv[1]):
            self._display.display(f"{seconds:8.2f}s  {role}")
        self._display.display(f"{total:8.2f}s  total")
