"""Assemble a bundle directory: debian/ (signed flat apt repository), artifacts/, images/, the key, MANIFEST.

Rebuilding into the same directory reuses what is there: .debs still wanted stay (and the whole
debian/ part is left alone while its inputs are unchanged), artifacts and images whose sha256 is
already right are not copied again, and the signing key is kept (so the inventory's pins of the key
stay valid; only pouch_bundle_manifest_sha256 changes when the content does).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bundle import debrepo, signing
from bundle.errors import BundleError
from bundle.inputs import WantedArtifact
from bundle.manifest import MANIFEST, sha256_file, write_manifest

# Bump when the steps that make debian/ change, so existing bundles rebuild it.
DEBIAN_VERSION = "1"
KEY_FILE = "bundle-key.asc"
ORIGIN = "pouch-ansible-bundle"


@dataclass(frozen=True)
class BundleImage:
    name: str  # file name under images/
    path: Path  # the docker-archive to copy in


@dataclass
class BuildResult:
    out: Path
    key_sha256: str
    manifest_sha256: str
    fingerprint: str
    packages: list[str]
    closure: list[str]
    artifacts: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    reused_debian: bool = False


def default_state_dir(out: Path) -> Path:
    """Private state beside the served tree (signing key, apt lists, caches): never inside it."""
    return out.parent / f"{out.name}.state"


def _is_url(location: str) -> bool:
    return "://" in location


def artifact_name(location: str) -> str:
    path = urllib.parse.urlsplit(location).path if _is_url(location) else location
    name = Path(path).name
    if not name or any(c.isspace() for c in name):
        raise BundleError(f"{location}: cannot name the artifact after it (no usable file name)")
    return name


def _fetch(location: str, tmpdir: Path) -> Path:
    if not _is_url(location):
        path = Path(location)
        if not path.is_file():
            raise BundleError(f"artifact {location} does not exist on this machine")
        return path
    dest = tmpdir / artifact_name(location)
    try:
        with urllib.request.urlopen(location, timeout=60) as resp, dest.open("wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, OSError) as exc:
        raise BundleError(f"downloading artifact {location} failed: {exc}") from exc
    return dest


def place_artifacts(out: Path, wanted: list[WantedArtifact], state: Path) -> tuple[list[str], dict[str, str]]:
    """Copy every artifact to artifacts/<kind>/<name> after checking its sha256; stale files go."""
    root = out / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    placed: dict[str, str] = {}
    for art in wanted:
        rel = f"artifacts/{art.kind}/{artifact_name(art.location)}"
        if rel in placed and placed[rel] != art.sha256:
            raise BundleError(
                f"two different {art.kind} artifacts are both named {Path(rel).name}; rename one of them"
            )
        placed[rel] = art.sha256
        dest = out / rel
        if dest.is_file() and sha256_file(dest) == art.sha256:
            continue
        with tempfile.TemporaryDirectory(prefix="download-", dir=state) as tmp:
            src = _fetch(art.location, Path(tmp))
            actual = sha256_file(src)
            if actual != art.sha256:
                raise BundleError(
                    f"artifact {art.location} has sha256 {actual}, the inventory pins {art.sha256} "
                    f"(hosts {', '.join(art.hosts)}). Nothing was copied into the bundle."
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(src, part)
            part.replace(dest)
    for path in sorted(root.rglob("*"), reverse=True):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in placed:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return sorted(placed), placed


def place_images(out: Path, images: list[BundleImage]) -> tuple[list[str], dict[str, str]]:
    root = out / "images"
    root.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    for image in images:
        dest = root / image.name
        want = sha256_file(image.path)
        if not (dest.is_file() and sha256_file(dest) == want):
            part = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(image.path, part)
            part.replace(dest)
        sums[f"images/{image.name}"] = want
    for path in root.iterdir():
        if f"images/{path.name}" not in sums:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    return sorted(sums), sums


def build_debian(
    out: Path, state: Path, packages: list[str], sources_text: str, fingerprint: str, log: Path
) -> tuple[list[str], bool]:
    """debian/: the closure of ``packages`` from ``sources_text``, indexed and signed; (closure, reused)."""
    repo = out / "debian"
    stamp = state / "debian.stamp"
    closure_file = state / "debian.closure"
    digest = hashlib.sha256(
        json.dumps(
            {"version": DEBIAN_VERSION, "packages": packages, "sources": sources_text, "key": fingerprint}
        ).encode()
    ).hexdigest()
    if (
        (repo / "InRelease").is_file()
        and stamp.is_file()
        and stamp.read_text() == digest
        and closure_file.is_file()
    ):
        return closure_file.read_text().split(), True
    stamp.unlink(missing_ok=True)
    closure = debrepo.build_flat_repo(
        repo, state / "apt", sources_text, packages, log, what="bundle debian/ build", origin=ORIGIN
    )
    signing.sign_release(state / "gnupg", fingerprint, repo)
    closure_file.write_text(" ".join(closure) + "\n")
    stamp.write_text(digest)
    return closure, False


def build(
    out: Path,
    packages: list[str],
    sources_text: str,
    artifacts: list[WantedArtifact],
    images: list[BundleImage],
    state: Path | None = None,
) -> BuildResult:
    out = out.resolve()
    state = (state or default_state_dir(out)).resolve()
    if state == out or state.is_relative_to(out):
        raise BundleError(f"the state dir {state} holds the private key: it must be outside {out}")
    out.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    log = state / "logs" / "build.log"
    log.write_text(f"bundle build {time.strftime('%Y-%m-%d %H:%M:%S')} into {out}\n{sources_text}")
    fingerprint = signing.ensure_key(state / "gnupg")
    signing.export_public_key(state / "gnupg", fingerprint, out / KEY_FILE)
    closure, reused = build_debian(out, state, packages, sources_text, fingerprint, log)
    artifact_paths, artifact_sums = place_artifacts(out, artifacts, state)
    image_paths, image_sums = place_images(out, images)
    strays = sorted({p.name for p in out.iterdir()} - {"debian", "artifacts", "images", KEY_FILE, MANIFEST})
    if strays:
        raise BundleError(f"{out} holds {', '.join(strays)}, which is no part of a bundle: remove it first")
    manifest_sha = write_manifest(out, {**artifact_sums, **image_sums})
    return BuildResult(
        out=out,
        key_sha256=sha256_file(out / KEY_FILE),
        manifest_sha256=manifest_sha,
        fingerprint=fingerprint,
        packages=packages,
        closure=closure,
        artifacts=artifact_paths,
        images=image_paths,
        reused_debian=reused,
    )
