"""python -m bundle build --inventory INV --out DIR | python -m bundle verify DIR"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bundle.build import KEY_FILE, BundleImage, build
from bundle.errors import BundleError
from bundle.inputs import HOST_PATTERN, WantedArtifact, artifacts_for, packages_for, resolve
from bundle.manifest import MANIFEST, sha256_file, verify_manifest
from bundle.signing import verify_release


def read_package_file(path: Path) -> list[str]:
    """Names in a file like lab/packages.txt: whitespace-separated, # comments."""
    names = []
    for raw in path.read_text().splitlines():
        names.extend(raw.split("#", 1)[0].split())
    return names


def debian_sources_text(release: str | None, mirror: str | None) -> tuple[str, str]:
    """(release, sources.list lines): the host's Debian sources for the release, or ``mirror``."""
    from lab.aptsources import debian_sources, host_codename
    from lab.errors import LabError

    try:
        codename = release or host_codename()
        if mirror:
            suites = (codename, f"{codename}-updates")
            return codename, "".join(f"deb {mirror.rstrip('/')} {s} main\n" for s in suites)
        return codename, "".join(s.one_line() for s in debian_sources(codename))
    except LabError as exc:
        raise BundleError(str(exc)) from exc


def test_images(cache: Path) -> list[BundleImage]:
    from lab.testimages import TestImageError, build_test_images

    try:
        images = build_test_images(cache)
    except TestImageError as exc:
        raise BundleError(f"building the test images failed: {exc}") from exc
    return [BundleImage(img.docker_archive.name, img.docker_archive) for img in images]


def cmd_build(args: argparse.Namespace) -> int:
    out = Path(args.out)
    packages: list[str] = []
    artifacts: list[WantedArtifact] = []
    if args.inventory:
        hostvars = resolve(Path(args.inventory), args.hosts)
        packages = packages_for(hostvars)
        artifacts = artifacts_for(hostvars)
        print(f"bundle: {len(hostvars)} hosts in {args.inventory}: packages {' '.join(packages)}", flush=True)
    if args.packages is not None:
        packages = sorted({p for p in args.packages.replace(",", " ").split()})
    for extra in args.extra_packages_file:
        packages = sorted(set(packages) | set(read_package_file(Path(extra))))
    codename, sources = debian_sources_text(args.release, args.mirror)
    from bundle.build import default_state_dir

    state = Path(args.state) if args.state else default_state_dir(out.resolve())
    images = test_images(state / "testimages") if args.test_images else []
    print(f"bundle: Debian {codename}, {len(packages)} packages + dependencies, {len(artifacts)} artifacts, "
          f"{len(images)} images -> {out} (state, key and log: {state})", flush=True)  # fmt: skip
    result = build(out, packages, sources, artifacts, images, state)
    print(
        f"bundle: {len(result.closure)} .debs{' (unchanged, reused)' if result.reused_debian else ''}, "
        f"{len(result.artifacts)} artifacts, {len(result.images)} images; signing key {result.fingerprint}\n"
        f"Serve {result.out} with any HTTP server and set in the inventory:\n"
        f"  pouch_bundle_url: http://HOST/PATH/   # the URL of {result.out}/\n"
        f"  pouch_bundle_key_sha256: {result.key_sha256}\n"
        f"  pouch_bundle_manifest_sha256: {result.manifest_sha256}"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    problems: list[str] = []
    for name, pin in ((KEY_FILE, args.key_sha256), (MANIFEST, args.manifest_sha256)):
        if pin and (root / name).is_file() and sha256_file(root / name) != pin.lower():
            problems.append(f"{name}: sha256 {sha256_file(root / name)}, pinned {pin.lower()}")
    try:
        problems += verify_manifest(root)
    except BundleError as exc:
        problems.append(str(exc))
    if (root / KEY_FILE).is_file() and (root / "debian" / "InRelease").is_file():
        bad = verify_release(root / "debian", root / KEY_FILE)
        if bad:
            problems.append(bad)
    else:
        problems.append(f"{root / KEY_FILE} or {root / 'debian/InRelease'} is missing")
    for problem in problems:
        print(f"bundle verify: {problem}", file=sys.stderr)
    if not problems:
        print(f"bundle verify: {root} matches {MANIFEST}; debian/InRelease is signed by {KEY_FILE}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bundle", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="collect everything an inventory needs into a directory")
    b.add_argument("--inventory", help="inventory to read (ansible -i); its hosts' role variables decide")
    b.add_argument("--hosts", default=HOST_PATTERN, help=f"host pattern (default {HOST_PATTERN})")
    b.add_argument("--out", required=True, help="bundle directory (created; rebuilt in place)")
    b.add_argument("--state", help="private state dir: signing key, apt lists, log (default: <out>.state)")
    b.add_argument("--release", help="Debian release codename (default: this machine's)")
    b.add_argument("--mirror", help="Debian mirror URL (default: this machine's apt sources for the release)")
    b.add_argument("--packages", help="closure roots instead of the inventory's (comma/space separated)")
    b.add_argument("--extra-packages-file", action="append", default=[], help="more roots (lab/packages.txt)")
    b.add_argument("--no-test-images", dest="test_images", action="store_false",
                   help="leave out the lab's busybox test images (images/)")  # fmt: skip
    b.set_defaults(func=cmd_build)
    v = sub.add_parser("verify", help="check a bundle against its manifest and signature")
    v.add_argument("dir")
    v.add_argument("--key-sha256", help="pinned sha256 of bundle-key.asc")
    v.add_argument("--manifest-sha256", help="pinned sha256 of MANIFEST.sha256")
    v.set_defaults(func=cmd_verify)
    args = parser.parse_args(argv)
    if args.command == "build" and not args.inventory and args.packages is None:
        parser.error("build needs --inventory or --packages")
    try:
        return int(args.func(args))
    except BundleError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
