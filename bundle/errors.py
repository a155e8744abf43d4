"""The one error type of the bundle code: a message naming the cause, and the log to read if any."""

from __future__ import annotations

from pathlib import Path


class BundleError(RuntimeError):
    """Building or checking a bundle failed; ``log`` is the file that tells more."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        self.log = log
        self.reason = message
        super().__init__(f"{message}; see {log}" if log is not None else message)
