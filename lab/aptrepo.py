"""The lab's apt repository: the dependency closure of every package the roles install, served locally.

Built by the offline bundle's code (bundle/debrepo.py: a private apt configuration from the host's
Debian sources, the closure resolved and downloaded, indexed), the same code that builds the
``debian/`` part of ``python -m bundle build``. It is a flat repository
(``deb [trusted=yes] http://HOST/ ./``), cached and rebuilt when the package list changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from bundle.debrepo import build_flat_repo, check_tools
from bundle.errors import BundleError
from lab.aptsources import debian_sources, host_codename
from lab.errors import LabError
from lab.paths import LabPaths

PACKAGE_LIST = Path(__file__).with_name("packages.txt")
# Bump when the build steps below change, so cached repositories are rebuilt.
REPO_VERSION = "1"


def read_package_list(path: Path = PACKAGE_LIST) -> list[str]:
    names = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            names.extend(line.split())
    return names


@dataclass(frozen=True)
class AptRepo:
    root: Path  # served directory: Packages, Packages.gz, Release, pool/

    @property
    def pool(self) -> Path:
        return self.root / "pool"

    def exists(self) -> bool:
        return (self.root / "Packages.gz").exists()

    def package_names(self) -> set[str]:
        names = set()
        for line in (self.root / "Packages").read_text().splitlines():
            if line.startswith("Package: "):
                names.add(line.split(": ", 1)[1])
        return names


def build_repo(paths: LabPaths, rebuild: bool = False, package_list: Path = PACKAGE_LIST) -> AptRepo:
    """Reuse the cached repository when the package list and sources are unchanged; else rebuild."""
    try:
        check_tools()
    except BundleError as exc:
        raise LabError(exc.reason) from exc
    paths.ensure()
    packages = read_package_list(package_list)
    codename = host_codename()
    sources = debian_sources(codename)
    sources_text = "".join(s.one_line() for s in sources)
    digest = hashlib.sha256(
        json.dumps({"version": REPO_VERSION, "packages": packages, "sources": sources_text}).encode()
    ).hexdigest()
    repo = AptRepo(paths.repo_dir / "www")
    stamp = paths.repo_dir / "stamp"
    if not rebuild and repo.exists() and stamp.exists() and stamp.read_text() == digest:
        return repo
    log = paths.logs / "apt-repo-build.log"
    log.write_text(f"apt repository build {time.strftime('%Y-%m-%d %H:%M:%S')}\n{sources_text}")
    print(
        f"lab: building the apt repository ({len(packages)} packages + dependencies); log: {log}", flush=True
    )
    stamp.unlink(missing_ok=True)
    try:
        build_flat_repo(
            repo.root,
            paths.repo_dir / "apt",
            sources_text,
            packages,
            log,
            what="apt repository build",
            origin="pouch-ansible-lab",
        )
    except BundleError as exc:
        raise LabError(exc.reason, exc.log) from exc
    stamp.write_text(digest)
    return repo
