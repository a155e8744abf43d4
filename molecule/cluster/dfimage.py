"""The Dragonfly test image and registry egress figures, shared by molecule/cluster and bench/.

The image is the lab's busybox image (lab.testimages) plus one layer holding FAT_MIB MiB of
incompressible bytes (seeded, so the layer is the same on every build), built offline with
skopeo and umoci under the lab state dir and pushed to the lab registry under a repository name
unique to the run: Dragonfly keys its tasks by URL, so a new name is a cold cache, and the
registry's access log lines of that repository are the run's own.

    python molecule/cluster/dfimage.py prepare-run --out run.json   # the cluster scenario's prepare
    python molecule/cluster/dfimage.py push --repo dragonfly/cluster-123 --out image.json
    python molecule/cluster/dfimage.py egress --repo dragonfly/cluster-123 [--since-line N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.paths import LabPaths, default_state_dir  # noqa: E402
from lab.registry import Registry  # noqa: E402
from lab.services import blob_store_access_log  # noqa: E402
from lab.testimages import build_test_images  # noqa: E402

FAT_MIB = 64
SEED = 6  # issue 6
BUILD_VERSION = "1"
IMAGE_CMD = ["sh"]
IMAGE_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Combined log format as docker-registry writes it (client, -, -, [time], "request", status, bytes, ref, UA).
ACCESS_LINE = re.compile(
    r'^(?P<client>\S+) \S+ \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "[^"]*" "(?P<ua>[^"]*)"'
)


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {result.returncode}: {(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


def build(paths: LabPaths, fat_mib: int = FAT_MIB, seed: int = SEED) -> Path:
    """OCI layout with tag `latest`: busybox + a fat_mib MiB layer; cached under the lab state dir."""
    layout = paths.root / "dragonfly-image" / f"oci-{fat_mib}m-{seed}"
    stamp = layout / "dfimage.stamp"
    busybox = next(i for i in build_test_images(paths.testimages_dir) if i.tag == "latest")
    key = f"{BUILD_VERSION} {fat_mib} {seed} {busybox.oci_ref}"
    if stamp.exists() and stamp.read_text() == key:
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    layout.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dfimage-") as tmp:
        blob = Path(tmp) / "fat.bin"
        rng = random.Random(seed)
        with blob.open("wb") as out:  # in chunks: randbytes takes at most 2**31 bits at once
            for start in range(0, fat_mib, 64):
                out.write(rng.randbytes(min(64, fat_mib - start) << 20))
        _run(["skopeo", "copy", "--quiet", busybox.oci_ref, f"oci:{layout}:latest"])
        _run(["umoci", "insert", "--image", f"{layout}:latest", str(blob), "/data/fat.bin"])
    # Set the config after the last layer change, so CMD and PATH are what the image runs with.
    argv = ["umoci", "config", "--image", f"{layout}:latest", "--config.env", IMAGE_ENV]
    argv += [arg for c in IMAGE_CMD for arg in ("--config.cmd", c)]
    _run(argv)
    stamp.write_text(key)
    return layout


def push(paths: LabPaths, repo: str, tag: str = "latest", fat_mib: int = FAT_MIB, seed: int = SEED) -> dict:
    """Push the image as <repo>:<tag> to the lab registry; returns its blobs (digest, size, kind)."""
    layout = build(paths, fat_mib, seed)
    registry = Registry(paths.registry_dir, log_dir=paths.logs)
    if not registry.is_running():
        raise RuntimeError("the lab registry is not running (python -m lab up starts it)")
    ref = f"docker://{registry.address}/{repo}:{tag}"
    _run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest", ref])
    manifest = json.loads(_run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref]))
    blobs = [{"digest": manifest["config"]["digest"], "size": manifest["config"]["size"], "kind": "config"}]
    blobs += [
        {"digest": layer["digest"], "size": layer["size"], "kind": f"layer{i}"}
        for i, layer in enumerate(manifest["layers"])
    ]
    blob_log = blob_store_access_log(paths)
    return {
        "repo": repo,
        "tag": tag,
        "registry_log": str(registry.access_log),
        "log_start_line": _lines(registry.access_log),
        # Pulls through the redirecting registry (10.0.2.101:5444) fetch blobs from the blob store.
        "blob_store_log": str(blob_log),
        "blob_store_start_line": _lines(blob_log),
        "blobs": blobs,
        "image_bytes": sum(b["size"] for b in blobs),
    }


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open("rb")) if path.exists() else 0


# A blob store request path: the registry's storage path of the blob (the redirect target).
BLOB_STORE_PATH = re.compile(r"^/docker/registry/v2/blobs/sha256/[0-9a-f]{2}/(?P<hex>[0-9a-f]{64})/data$")


def egress(
    access_log: Path, repo: str, since_line: int = 0, blobs: list[dict] | tuple = (), blob_store: bool = False
) -> dict:
    """Bytes the registry wrote for <repo>'s blobs (GET only), per digest and per User-Agent family.
    With ``blob_store``, ``access_log`` is the blob store's (lab.httpserve, same format): its paths
    name no repository, so the digests of ``blobs`` select the lines.

    With ``blobs`` (push()'s list, for their sizes) it also counts, per digest, the GETs that sent
    the whole blob and the bytes of those that ended early: Dragonfly 0.4.1's supernode reads a
    blob's length with a GET it closes at once (one per registering peer), a probe, not a download.
    """
    per_blob: dict[str, int] = defaultdict(int)
    gets: dict[str, int] = defaultdict(int)
    get_bytes: dict[str, list[int]] = defaultdict(list)
    per_agent: dict[str, int] = defaultdict(int)
    manifests = 0
    prefix = f"/v2/{repo}/"
    with access_log.open(errors="replace") as log:
        for n, line in enumerate(log):
            if n < since_line:
                continue
            m = ACCESS_LINE.match(line)
            if not m or m["method"] != "GET":
                continue
            written = 0 if m["bytes"] == "-" else int(m["bytes"])
            if blob_store:
                stored = BLOB_STORE_PATH.match(m["path"].split("?", 1)[0])
                digest = f"sha256:{stored['hex']}" if stored else ""
                if digest in {b["digest"] for b in blobs}:
                    per_blob[digest] += written
                    gets[digest] += 1
                    get_bytes[digest].append(written)
                    per_agent[m["ua"].split("/", 1)[0] or "-"] += written
                continue
            if not m["path"].startswith(prefix):
                continue
            rest = m["path"][len(prefix) :]
            if rest.startswith("blobs/"):
                digest = rest.split("/", 1)[1].split("?", 1)[0]
                per_blob[digest] += written
                gets[digest] += 1
                get_bytes[digest].append(written)
                per_agent[m["ua"].split("/", 1)[0] or "-"] += written
            elif rest.startswith("manifests/"):
                manifests += written
    sizes = {b["digest"]: b["size"] for b in blobs}
    return {
        "per_blob": dict(per_blob),
        "gets": dict(gets),
        "full_gets": {d: sum(1 for n in get_bytes[d] if n >= size) for d, size in sizes.items()},
        "partial_bytes": {d: sum(n for n in get_bytes[d] if n < size) for d, size in sizes.items()},
        "per_agent": dict(per_agent),
        "blob_bytes": sum(per_blob.values()),
        "manifest_bytes": manifests,
    }


# The cluster scenario's images: the P2P pull, and two smaller ones with a layer of their own
# (a node already holding a blob never fetches it again) for the fallback pulls.
RUN_IMAGES = {"p2p": (FAT_MIB, SEED), "nopeer": (8, SEED + 100), "nosupernode": (8, SEED + 200)}


def prepare_run(paths: LabPaths, prefix: str = "dragonfly/cluster") -> dict:
    run = f"{prefix}-{int(time.time())}"
    images = {}
    for name, (fat_mib, seed) in RUN_IMAGES.items():
        images[name] = push(paths, f"{run}-{name}", fat_mib=fat_mib, seed=seed)
    return {"run": run, "images": images}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("push", help="build (cached) and push the image, write its blob list as JSON")
    p.add_argument("--repo", required=True)
    p.add_argument("--tag", default="latest")
    p.add_argument("--fat-mib", type=int, default=FAT_MIB)
    p.add_argument("--out", type=Path)
    r = sub.add_parser(
        "prepare-run", help="push the cluster scenario's images under new names, write the run file"
    )
    r.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("egress", help="registry bytes served for a repository's blobs, as JSON")
    e.add_argument("--repo", required=True)
    e.add_argument("--since-line", type=int, default=0)
    args = parser.parse_args()
    paths = LabPaths(default_state_dir())
    if args.cmd == "prepare-run":
        info = prepare_run(paths)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info, indent=2))
    elif args.cmd == "push":
        info = push(paths, args.repo, args.tag, args.fat_mib)
        text = json.dumps(info, indent=2)
        if args.out:
            args.out.write_text(text + "\n")
        print(text)
    else:
        registry = Registry(paths.registry_dir, log_dir=paths.logs)
        print(json.dumps(egress(registry.access_log, args.repo, args.since_line), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
