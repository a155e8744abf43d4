"""Where the lab keeps everything it creates: one state dir (``.lab/`` at the repo root by default)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GROUP = "default"


def default_state_dir() -> Path:
    env = os.environ.get("LAB_STATE_DIR")
    return Path(env).resolve() if env else REPO_ROOT / ".lab"


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def image_dir(self) -> Path:
        return self.root / "image"

    @property
    def repo_dir(self) -> Path:
        return self.root / "repo"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def ca_dir(self) -> Path:
        """The lab CA (lab/tlsca.py): ca.crt is what nodes trust for the lab registry's TLS twin."""
        return self.root / "ca"

    @property
    def testimages_dir(self) -> Path:
        return self.root / "testimages"

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @property
    def groups_dir(self) -> Path:
        return self.root / "groups"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    def group_dir(self, group: str) -> Path:
        return self.groups_dir / group

    def ensure(self) -> None:
        for d in (self.root, self.logs, self.services_dir, self.groups_dir):
            d.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def state_lock(paths: LabPaths) -> Iterator[None]:
    """Serialise the shared parts (image, repo, services) between concurrent ``lab`` commands."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / "lab.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
