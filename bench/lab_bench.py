"""Lab figures: base image build time, boot-to-SSH time for 1 and 3 VMs, RSS per VM.

    .venv/bin/python bench/lab_bench.py                 # everything in a fresh temporary state dir
    .venv/bin/python bench/lab_bench.py --state-dir .lab  # reuse a cached image (times the cache check)

Not run by the tests: a full run builds an image (minutes) and boots four VMs under emulation.
Results are also written to bench/results/lab_bench.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.aptrepo import build_repo  # noqa: E402
from lab.cli import stop_everything  # noqa: E402
from lab.image import build_image  # noqa: E402
from lab.paths import LabPaths  # noqa: E402
from lab.services import start_services  # noqa: E402
from lab.vms import Group, down_group, up_group  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def boot(paths: LabPaths, image, services, count: int, results: dict) -> None:
    group = f"bench{count}"
    names = [f"vm{i}" for i in range(1, count + 1)]
    start = time.monotonic()
    vms, per_vm = up_group(paths, group, names, image, services)
    wall = time.monotonic() - start
    rss = {vm.name: rss_mib(Group(group, paths).qemu_pid(vm.name) or 0) for vm in vms}
    down_group(paths, group)  # the services stay up for the next boot
    results[f"boot_to_ssh_{count}_vm_s"] = round(wall, 1)
    results[f"rss_mib_{count}_vm"] = {name: round(value) for name, value in rss.items()}
    print(f"boot to SSH, {count} VM(s) in parallel: {wall:.0f}s (per VM: "
          f"{', '.join(f'{n} {s:.0f}s' for n, s in per_vm.items())})")  # fmt: skip
    print(f"RSS per VM right after boot ({count} VM(s)): "
          f"{', '.join(f'{n} {v:.0f} MiB' for n, v in rss.items())}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state-dir", type=Path, help="use this state dir (cached image) instead of a fresh one"
    )
    args = parser.parse_args()
    temporary = args.state_dir is None
    root = Path(tempfile.mkdtemp(prefix="lab-bench-")) if temporary else args.state_dir.resolve()
    paths = LabPaths(root)
    results: dict = {"state_dir": str(root), "fresh_build": temporary}
    try:
        start = time.monotonic()
        image = build_image(paths, rebuild=False)
        results["image_build_s"] = round(time.monotonic() - start, 1)
        label = "base image build (debootstrap + mkfs.ext4 -d)" if temporary else "base image (cache check)"
        print(f"{label}: {results['image_build_s']:.0f}s")
        start = time.monotonic()
        build_repo(paths)
        results["apt_repo_build_s"] = round(time.monotonic() - start, 1)
        print(
            f"apt repository {'build' if temporary else '(cache check)'}: {results['apt_repo_build_s']:.0f}s"
        )
        services, _ = start_services(paths)
        boot(paths, image, services, 1, results)
        boot(paths, image, services, 3, results)
    finally:
        # Only the bench's own groups: a shared state dir may hold other people's VMs. The services
        # stop with the last group, as with `lab down --group`.
        for group in ("bench1", "bench3"):
            stop_everything(paths, group)
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    out = ROOT / "bench" / "results" / "lab_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
