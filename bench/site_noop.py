#!/usr/bin/env python3
"""A no-op site.yml rerun against a bare fact-gathering run, on the same provisioned nodes.

Target (developers' guide): the rerun within 4x of gathering facts alone. Both are timed as whole
ansible-playbook runs (process start, inventory, connections included), alternating, so machine
load hits both alike; medians and the ratio are printed. Every rerun must report changed=0, or
the figure is meaningless and the script says so.

Needs nodes already provisioned by site.yml, e.g. after `make site` (the lab inventory):

    .venv/bin/python bench/site_noop.py [--inventory inventories/lab] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

FACTS_ONLY = """
- name: Gather facts only (the floor)
  hosts: pouch_nodes
  gather_facts: true
  tasks: []
"""


def run(argv: list[str]) -> tuple[float, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    start = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        )
    return elapsed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    playbook = ROOT / "playbooks" / "site.yml"
    with tempfile.TemporaryDirectory() as tmp:
        facts_play = Path(tmp) / "facts.yml"
        facts_play.write_text(FACTS_ONLY)
        facts_s: list[float] = []
        site_s: list[float] = []
        for round_no in range(1, args.rounds + 1):
            elapsed, _ = run([str(BIN / "ansible-playbook"), "-i", args.inventory, str(facts_play)])
            facts_s.append(elapsed)
            elapsed, out = run([str(BIN / "ansible-playbook"), "-i", args.inventory, str(playbook)])
            site_s.append(elapsed)
            recap = RECAP.findall(out)
            changed = {host: int(c) for host, c, _, _ in recap if int(c)}
            if not recap or changed:
                sys.exit(
                    f"round {round_no}: the site.yml rerun is not a no-op (changed: {changed or 'no recap'})"
                )
            print(f"round {round_no}: facts {facts_s[-1]:.1f}s, site.yml no-op {site_s[-1]:.1f}s "
                  f"on {len(recap)} node(s)")  # fmt: skip
    facts, site = statistics.median(facts_s), statistics.median(site_s)
    summary = {
        "nodes": len(recap),
        "rounds": args.rounds,
        "facts_only_median_s": round(facts, 1),
        "site_noop_median_s": round(site, 1),
        "ratio": round(site / facts, 2),
        "target_ratio": 4.0,
    }
    print(json.dumps(summary, indent=2))
    print(f"no-op site.yml / bare fact gathering: {site / facts:.2f}x (target at most 4x)")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "site_noop.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
