"""The lab's apt repository: the dependency closure of every package the roles install, served locally.

The closure is resolved with a private apt configuration (its own lists, cache and an empty dpkg
status, all under the state dir) built from the host's Debian sources, so nothing on the host is
touched and the repository holds everything a bare node needs. It is a flat repository
(``deb [trusted=yes] http://HOST/ ./``), cached and rebuilt when the package list changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.aptsources import debian_sources, host_codename
from lab.errors import LabError
from lab.image import run_logged
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


def _apt_options(apt_dir: Path) -> list[str]:
    """Options that point apt at the private configuration under ``apt_dir``."""
    return [
        "-o", f"Dir::Etc::sourcelist={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State={apt_dir / 'state'}",
        "-o", f"Dir::State::status={apt_dir / 'status'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", "Acquire::Languages=none",
        "-o", "APT::Get::AllowUnauthenticated=false",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def _closure(apt_dir: Path, packages: list[str], log: Path) -> list[str]:
    argv = [
        "apt-cache", *_apt_options(apt_dir), "depends", "--recurse", "--no-recommends", "--no-suggests",
        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages,
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        with log.open("a") as out:
            out.write(result.stdout + result.stderr)
        raise LabError(f"apt repository: resolving the dependencies failed: {result.stderr.strip()}", log)
    # Top-level lines are real package names; "<name>" lines are virtual packages (providers follow).
    return sorted({line.strip() for line in result.stdout.splitlines() if line and line[0] not in " <"})


def build_repo(paths: LabPaths, rebuild: bool = False, package_list: Path = PACKAGE_LIST) -> AptRepo:
    """Reuse the cached repository when the package list and sources are unchanged; else rebuild."""
    for tool in ("apt-get", "apt-cache", "dpkg-scanpackages", "apt-ftparchive"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is missing: the apt repository needs apt, dpkg-dev and apt-utils")
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
    apt_dir = paths.repo_dir / "apt"
    for d in ("state/lists/partial", "cache/archives/partial"):
        (apt_dir / d).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(sources_text)
    (apt_dir / "status").write_text("")  # an empty system: resolve the full closure
    run_logged("apt-get update", ["apt-get", *_apt_options(apt_dir), "update"], log, "apt repository build")
    closure = _closure(apt_dir, packages, log)
    with log.open("a") as out:
        out.write(f"closure: {len(closure)} packages\n{' '.join(closure)}\n")
    # Keep .debs that are still wanted (a list change then downloads only the difference).
    work = paths.repo_dir / "www.new"
    shutil.rmtree(work, ignore_errors=True)
    (work / "pool").mkdir(parents=True)
    if repo.pool.exists():
        for deb in repo.pool.glob("*.deb"):
            if deb.name.split("_", 1)[0] in closure:
                deb.replace(work / "pool" / deb.name)
    have = {deb.name.split("_", 1)[0] for deb in (work / "pool").glob("*.deb")}
    wanted = [name for name in closure if name not in have]
    for start in range(0, len(wanted), 100):
        batch = wanted[start : start + 100]
        argv = ["apt-get", *_apt_options(apt_dir), "download", *batch]
        with log.open("a") as out:
            out.write(f"\n### apt-get download ({len(batch)} packages)\n")
            out.flush()
            result = subprocess.run(argv, cwd=work / "pool", stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise LabError(f"apt repository build failed at apt-get download (exit {result.returncode})", log)
    with (work / "Packages").open("w") as out, log.open("a") as err:
        result = subprocess.run(
            ["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"], cwd=work, stdout=out, stderr=err
        )
    if result.returncode != 0:
        raise LabError("apt repository build failed at dpkg-scanpackages", log)
    subprocess.run(["gzip", "-9kf", "Packages"], cwd=work, check=True)
    release = paths.repo_dir / "Release.new"  # written outside the tree it describes
    with release.open("w") as out:
        subprocess.run(
            ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=pouch-ansible-lab", "release", "."],
            cwd=work,
            stdout=out,
            check=True,
        )
    release.replace(work / "Release")
    shutil.rmtree(repo.root, ignore_errors=True)
    work.replace(repo.root)
    stamp.write_text(digest)
    return repo
