"""Test-only stdout callback: every task result (diff included) as one JSON line in $PA_RESULTS_FILE."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: results_file
type: stdout
short_description: Write task results as JSON lines for the module tests
description: Appends every task result, with its diff, as a JSON line to the file E(PA_RESULTS_FILE).
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_file"

    def _write(self, result: Any, status: str) -> None:
        data = dict(result._result)
        data["_status"] = status
        data["_task"] = result._task.get_name()
        with open(os.environ["PA_RESULTS_FILE"], "a") as handle:
            handle.write(json.dumps(data, default=str) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._write(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._write(result, "unreachable")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._write(result, "skipped")
