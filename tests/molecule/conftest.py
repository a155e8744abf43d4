"""Scenario requirements that lab.prereqs does not know yet, registered for test_scenarios.py.

``dragonfly_archive`` (molecule/cluster/requires.txt): the Dragonfly 1.x binary archive,
$DRAGONFLY_ARCHIVE, else the newest /opt/dragonfly/dragonfly-*.tar.gz, with its .sha256 beside it.
It belongs in lab/prereqs.py's REQUIREMENTS beside pouch_archive; it lives here until it moves.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.prereqs import REQUIREMENTS


def dragonfly_archive_missing() -> str | None:
    value = os.environ.get("DRAGONFLY_ARCHIVE")
    if value:
        archive = Path(value)
    else:
        found = sorted(Path("/opt/dragonfly").glob("dragonfly-*.tar.gz"))
        if not found:
            return (
                "no Dragonfly binary archive: set DRAGONFLY_ARCHIVE or put dragonfly-*.tar.gz "
                "(supernode, dfget, dfdaemon; and its .sha256) in /opt/dragonfly"
            )
        archive = found[-1]
    if not archive.is_file():
        return f"the Dragonfly binary archive {archive} does not exist (DRAGONFLY_ARCHIVE)"
    checksum = archive.with_name(archive.name + ".sha256")
    if not checksum.is_file():
        return f"the Dragonfly binary archive {archive} has no checksum file {checksum}"
    return None


REQUIREMENTS.setdefault("dragonfly_archive", dragonfly_archive_missing)
