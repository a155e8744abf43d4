"""The pouch builds a test runs on, as pytest parameters (lab/artifacts.py finds them).

One parameter per build, with the build's id (``pouch-1.3.0``, ``pouch-master-bc5839e3``) so a failure
names the build; without any build, one ``pouch`` parameter that skips with a reason naming the
variables to set, or fails when a named archive is broken (a checksum mismatch is not an absence).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.artifacts import (
    ArtifactError,
    PouchBuild,
    build_from_archive,
    pouch_archive,
    pouch_builds,
    pouch_missing_reason,
)
from lab.prereqs import requirement_missing


@dataclass(frozen=True)
class NoBuild:
    reason: str
    broken: bool

    def __str__(self) -> str:
        return "pouch"


def discover() -> list[PouchBuild | NoBuild]:
    try:
        builds: list[PouchBuild | NoBuild] = list(pouch_builds())
    except ArtifactError as exc:
        return [NoBuild(str(exc), broken=True)]
    return builds or [NoBuild(pouch_missing_reason(), broken=False)]


POUCH_BUILDS = discover()
POUCH_IDS = [b.test_id if isinstance(b, PouchBuild) else "pouch" for b in POUCH_BUILDS]


def require(build: PouchBuild | NoBuild) -> PouchBuild:
    """The build, or skip (none found) / fail (a named one is broken) with the reason."""
    if isinstance(build, NoBuild):
        if build.broken:
            pytest.fail(build.reason, pytrace=False)
        pytest.skip(build.reason)
    return build


def header_lines() -> list[str]:
    """For pytest_report_header: which pouch builds this run uses, with version and build commit."""
    lines = []
    for build in POUCH_BUILDS:
        if isinstance(build, PouchBuild):
            lines.append(f"  {build.describe()}")
        else:
            lines.append(f"  no usable pouch build: {build.reason}")
    return ["pouch builds:", *lines]


def archive_without_insecure_registries() -> tuple[Path, PouchBuild]:
    """The release's archive (lab/artifacts.py: POUCH_ARCHIVE, else the 1.3.0 release in the test
    artifacts) and its build, when that build lacks insecure-registries; else skip saying why."""
    reason = requirement_missing("pouch_archive:release")
    if reason:
        pytest.skip(reason)
    found = pouch_archive("release")
    assert found is not None
    build = build_from_archive(*found)
    if build.capabilities()["insecure_registries"]:
        pytest.skip(f"{found[0]} ({found[1]}) has insecure-registries: this test needs a build without it")
    return found[0], build
