"""Flat apt repositories of a package list's whole dependency closure, fetched from a Debian mirror.

The closure is resolved with a private apt configuration (its own lists, cache and an empty dpkg
status, all under ``apt_dir``) built from given sources, so nothing of the host's apt state is
touched and the repository holds everything a bare node needs. Used by ``python -m bundle build``
(``debian/`` of a bundle, then signed) and by the lab's apt repository (lab/aptrepo.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bundle.errors import BundleError

TOOLS = ("apt-get", "apt-cache", "dpkg-scanpackages", "apt-ftparchive")
DOWNLOAD_BATCH = 100


def check_tools() -> None:
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise BundleError(f"{tool} is missing: an apt repository needs apt, dpkg-dev and apt-utils")


def run_logged(
    step: str,
    argv: list[str],
    log: Path,
    what: str,
    cwd: Path | None = None,
    timeout: float = 1800,
    error: type[Exception] = BundleError,
) -> None:
    """Run one step with its output appended to ``log``; a failure names the step and the log.

    ``error`` is raised as ``error(message, log)``: BundleError here, LabError for the lab's image build.
    """
    with log.open("a") as out:
        out.write(f"\n### {step}: {' '.join(argv)}\n")
        out.flush()
        try:
            result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise error(f"{what}: {step} timed out after {timeout:.0f}s", log) from exc
        except OSError as exc:
            raise error(f"{what}: {step} could not start: {exc}", log) from exc
    if result.returncode != 0:
        raise error(f"{what} failed at {step} (exit code {result.returncode})", log)


def apt_options(apt_dir: Path) -> list[str]:
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


def prepare_apt(apt_dir: Path, sources_text: str, log: Path, what: str) -> None:
    """A private apt configuration for ``sources_text`` (sources.list lines), its lists updated."""
    for d in ("state/lists/partial", "cache/archives/partial"):
        (apt_dir / d).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(sources_text)
    (apt_dir / "status").write_text("")  # an empty system: resolve the full closure
    run_logged("apt-get update", ["apt-get", *apt_options(apt_dir), "update"], log, what)


def parse_depends(stdout: str) -> list[str]:
    """Real package names in ``apt-cache depends --recurse`` output, sorted and unique.

    Top-level lines are package names; indented lines are dependency fields; ``<name>`` lines are
    virtual packages (their providers appear as top-level lines of their own).
    """
    return sorted({line.strip() for line in stdout.splitlines() if line.strip() and line[0] not in " \t<"})


def closure(apt_dir: Path, packages: list[str], log: Path, what: str) -> list[str]:
    """Every package ``packages`` need on an empty system (no recommends, no suggests)."""
    if not packages:
        return []
    argv = [
        "apt-cache", *apt_options(apt_dir), "depends", "--recurse", "--no-recommends", "--no-suggests",
        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages,
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        with log.open("a") as out:
            out.write(result.stdout + result.stderr)
        raise BundleError(f"{what}: resolving the dependencies failed: {result.stderr.strip()}", log)
    return parse_depends(result.stdout)


def deb_package_name(filename: str) -> str:
    """``runc_1.1.5+ds1-1_amd64.deb`` -> ``runc``."""
    return filename.split("_", 1)[0]


def fill_pool(apt_dir: Path, names: list[str], pool: Path, log: Path, what: str, reuse: Path | None) -> None:
    """Put the .deb of every name into ``pool``: moved over from ``reuse`` when there, else downloaded."""
    pool.mkdir(parents=True, exist_ok=True)
    wanted_names = set(names)
    if reuse is not None and reuse.is_dir():
        for deb in reuse.glob("*.deb"):
            if deb_package_name(deb.name) in wanted_names and not (pool / deb.name).exists():
                deb.replace(pool / deb.name)
    have = {deb_package_name(deb.name) for deb in pool.glob("*.deb")}
    wanted = [name for name in names if name not in have]
    for start in range(0, len(wanted), DOWNLOAD_BATCH):
        batch = wanted[start : start + DOWNLOAD_BATCH]
        argv = ["apt-get", *apt_options(apt_dir), "download", *batch]
        run_logged(f"apt-get download ({len(batch)} packages)", argv, log, what, cwd=pool)


def write_index(root: Path, log: Path, what: str, origin: str) -> None:
    """Packages, Packages.gz and Release of the flat repository in ``root`` (debs under root/pool)."""
    with (root / "Packages").open("w") as out, log.open("a") as err:
        result = subprocess.run(
            ["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"], cwd=root, stdout=out, stderr=err
        )
    if result.returncode != 0:
        raise BundleError(f"{what} failed at dpkg-scanpackages", log)
    subprocess.run(["gzip", "-9knf", "Packages"], cwd=root, check=True)
    release = root.parent / f".{root.name}.Release.new"  # written outside the tree it describes
    with release.open("w") as out:
        subprocess.run(
            ["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Origin={origin}", "release", "."],
            cwd=root,
            stdout=out,
            check=True,
        )
    release.replace(root / "Release")


def build_flat_repo(
    dest: Path, apt_dir: Path, sources_text: str, packages: list[str], log: Path, what: str, origin: str
) -> list[str]:
    """(Re)build the flat repository ``dest`` holding the closure of ``packages``; returns the closure.

    .debs already in ``dest/pool`` that are still wanted are kept (a list change downloads only the
    difference). The new tree is assembled beside ``dest`` and swapped in at the end.
    """
    check_tools()
    prepare_apt(apt_dir, sources_text, log, what)
    names = closure(apt_dir, packages, log, what)
    with log.open("a") as out:
        out.write(f"closure: {len(names)} packages\n{' '.join(names)}\n")
    work = dest.parent / f"{dest.name}.new"
    shutil.rmtree(work, ignore_errors=True)
    fill_pool(apt_dir, names, work / "pool", log, what, reuse=dest / "pool")
    write_index(work, log, what, origin)
    shutil.rmtree(dest, ignore_errors=True)
    work.replace(dest)
    return names
