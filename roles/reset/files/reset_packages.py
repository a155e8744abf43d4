#!/usr/bin/env python3
"""Which of the given Debian packages can be purged without taking any other package with them.

Prints JSON {"installed": [...], "removable": [...], "kept": {package: [other packages it would
remove]}}. Uses `apt-get --simulate purge`, so nothing on the node changes. A package is kept when
purging it (together with the other removable ones) would also remove a package not in the list.
"""

from __future__ import annotations

import json
import subprocess
import sys


def installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True
    )
    # "ii " installed, "iU"/"iF" half-configured; "rc" (config files only) counts as installed too
    return result.returncode == 0 and result.stdout[:2] in {"ii", "iU", "iF", "iH", "rc"}


def simulated_removals(packages: list[str]) -> set[str]:
    result = subprocess.run(
        ["apt-get", "--simulate", "--quiet", "purge", *packages],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    if result.returncode != 0:
        raise SystemExit(f"apt-get --simulate purge {' '.join(packages)} failed: {result.stderr.strip()}")
    # "Purg containerd [1.6.20~ds1-1+deb12u3]" / "Remv ..."
    return {
        line.split()[1].split(":")[0]
        for line in result.stdout.splitlines()
        if line.startswith(("Purg ", "Remv "))
    }


def main() -> int:
    wanted = list(dict.fromkeys(sys.argv[1:]))
    present = [p for p in wanted if installed(p)]
    removable = list(present)
    kept: dict[str, list[str]] = {}
    changed = True
    while changed and removable:
        changed = False
        for package in list(removable):
            others = sorted(simulated_removals([package]) - set(removable))
            if others:
                removable.remove(package)
                kept[package] = others
                changed = True
    if removable:
        others = sorted(simulated_removals(removable) - set(removable))
        if others:  # cannot happen when each one alone is clean; refuse rather than guess
            kept.update({p: others for p in removable})
            removable = []
    json.dump({"installed": present, "removable": removable, "kept": kept}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
