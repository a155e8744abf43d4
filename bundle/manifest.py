"""MANIFEST.sha256: the sha256 of every file of a bundle, in ``sha256sum`` format (``sha256sum -c``)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from bundle.errors import BundleError

MANIFEST = "MANIFEST.sha256"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S+)$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every regular file below ``root`` but the manifest, as sorted POSIX paths relative to it."""
    names = []
    for path in root.rglob("*"):
        if path.is_symlink():
            raise BundleError(f"{path}: a bundle holds regular files only, not symlinks")
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        if any(c.isspace() for c in rel):
            raise BundleError(f"{path}: file names in a bundle must not contain white space")
        names.append(rel)
    return sorted(names)


def format_manifest(sums: dict[str, str]) -> str:
    return "".join(f"{sums[name]}  {name}\n" for name in sorted(sums))


def parse_manifest(text: str) -> dict[str, str]:
    """path -> sha256 of a manifest; any line that is not ``<64 hex>  <path>`` is an error."""
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _LINE.match(line)
        if match is None:
            raise BundleError(f"{MANIFEST} line {number} is not '<sha256>  <path>': {line!r}")
        sha, name = match.groups()
        if name.startswith("/") or ".." in name.split("/"):
            raise BundleError(f"{MANIFEST} line {number}: path {name!r} leaves the bundle")
        if name in sums:
            raise BundleError(f"{MANIFEST} line {number}: {name} is listed twice")
        sums[name] = sha
    return sums


def write_manifest(root: Path, known: dict[str, str] | None = None) -> str:
    """Write ``root/MANIFEST.sha256`` for every file; returns the manifest's own sha256.

    ``known`` maps paths to sums already computed (e.g. checked while copying) to skip re-reading.
    """
    known = known or {}
    sums = {name: known.get(name) or sha256_file(root / name) for name in bundle_files(root)}
    text = format_manifest(sums)
    tmp = root / f".{MANIFEST}.new"
    tmp.write_text(text)
    tmp.replace(root / MANIFEST)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_manifest(root: Path) -> list[str]:
    """Problems with ``root`` against its manifest (changed, missing or unlisted files); [] when none."""
    path = root / MANIFEST
    if not path.is_file():
        return [f"{path} is missing"]
    sums = parse_manifest(path.read_text())
    problems = []
    present = set(bundle_files(root))
    for name, sha in sums.items():
        if name not in present:
            problems.append(f"{name}: listed in {MANIFEST} but missing")
        elif sha256_file(root / name) != sha:
            problems.append(f"{name}: sha256 differs from {MANIFEST}")
    problems += [f"{name}: not listed in {MANIFEST}" for name in sorted(present - set(sums))]
    return problems
