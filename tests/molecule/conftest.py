"""Scenario requirements that lab.prereqs does not know yet, registered for test_scenarios.py.

``dragonfly_archive`` (molecule/cluster/requires.txt): the Dragonfly 1.x binary archive,
$DRAGONFLY_ARCHIVE, with its .sha256 beside it.
It belongs in lab/prereqs.py's REQUIREMENTS beside pouch_archive; it lives here until it moves.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.prereqs import REQUIREMENTS


def dragonfly_archive_missing() -> str | None:
    # Asked for explicitly, not found on disk: the 3-VM cluster scenario is the suite's longest.
    value = os.environ.get("DRAGONFLY_ARCHIVE")
    if not value:
        return (
            "DRAGONFLY_ARCHIVE is not set (the Dragonfly 1.x binary archive with supernode, dfget "
            "and dfdaemon, and its .sha256 beside it)"
        )
    archive = Path(value)
    if not archive.is_file():
        return f"the Dragonfly binary archive {archive} does not exist (DRAGONFLY_ARCHIVE)"
    checksum = archive.with_name(archive.name + ".sha256")
    if not checksum.is_file():
        return f"the Dragonfly binary archive {archive} has no checksum file {checksum}"
    return None


REQUIREMENTS.setdefault("dragonfly_archive", dragonfly_archive_missing)


def pouch_upgrade_from_archive_missing() -> str | None:
    """The OLD pouch archive molecule/upgrade starts from: $POUCH_UPGRADE_FROM_ARCHIVE + .sha256."""
    value = os.environ.get("POUCH_UPGRADE_FROM_ARCHIVE")
    if not value:
        return (
            "POUCH_UPGRADE_FROM_ARCHIVE is not set (an older pouch binary archive than POUCH_ARCHIVE, "
            "named pouch-<version>-linux-amd64.tar.gz, with its .sha256 beside it)"
        )
    archive = Path(value)
    if not archive.is_file():
        return f"the pouch archive to upgrade from, {archive}, does not exist (POUCH_UPGRADE_FROM_ARCHIVE)"
    checksum = archive.with_name(archive.name + ".sha256")
    if not checksum.is_file():
        return f"the pouch archive to upgrade from, {archive}, has no checksum file {checksum}"
    return None


REQUIREMENTS.setdefault("pouch_upgrade_from_archive", pouch_upgrade_from_archive_missing)
