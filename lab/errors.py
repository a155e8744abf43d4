"""The one error type the lab raises: a message that names the cause and the log to read."""

from __future__ import annotations

from pathlib import Path


class LabError(RuntimeError):
    """Something the lab needs failed or is missing; ``log`` is the file that tells more."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        self.log = log
        super().__init__(f"{message}; see {log}" if log is not None else message)
