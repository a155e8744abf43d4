"""Suite-wide scheduling for `pytest -n N` (scripts/run-tests).

The module integration tests share session daemons (a private dockerd and a pouchd per build), and
two pouchds with iptables on would wipe each other's rules: they all run on one worker
(WORKER_GROUPS). Molecule scenarios, lint and unit tests spread over the workers, so VM scenarios
overlap with the rest.

CI has a hard wall-clock limit. With SUITE_BUDGET_MINUTES set (scripts/run-tests sets 60 under
CI=true), a molecule scenario is started only while the budget has its estimated duration left
(tests/molecule/test_scenarios.py ESTIMATED_MINUTES, at least 12 minutes); otherwise it is skipped
with a reason naming the estimate and the time left. A started one gets at most the time left plus
a margin: the run ends with a report instead of being killed without one.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS.parent))  # lab/, module_utils/
sys.path.insert(0, str(TESTS))  # pouch_builds
MOLECULE = TESTS / "molecule"
SCENARIO_START_S = 12 * 60  # a scenario needs about this long; don't start one with less left
SCENARIO_MARGIN_S = 10 * 60  # a started scenario may run this far past the budget


# Tests that share one session resource run on one worker: the module integration tests (a private
# dockerd and a pouchd per build; two pouchds with iptables on would wipe each other's rules) and
# the offline-bundle tests (one bundle built and served). Keys are path prefixes under tests/.
WORKER_GROUPS = {"integration/": "daemons", "bundle/test_bundle_source.py": "bundle"}


def worker_group(nodeid: str) -> str | None:
    """The group a test (by nodeid, relative to the rootdir or to tests/) runs in, if any."""
    path = nodeid.split("::", 1)[0].removeprefix("tests/")
    return next((group for prefix, group in WORKER_GROUPS.items() if path.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs still collect
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Load scheduling that keeps each WORKER_GROUPS group on one worker, by path.

    xdist's own loadgroup reads a group from an ``@group`` suffix its workers add to ``item._nodeid``;
    pytest 9 builds nodeids from ``item._id``, so the suffix never reached the scheduler and the
    daemon tests were spread over every worker. Grouping by path does not depend on that."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkerGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid) or nodeid

    return WorkerGroupScheduling(config, log)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which pouch builds the module tests use and which archives the VM scenarios install."""
    from pouch_builds import header_lines

    from lab.artifacts import describe_archive, dragonfly_archive, pouch_archive

    lines = header_lines()
    found = pouch_archive()
    lines.append(
        f"VM scenarios install (unless they ask for the release) {describe_archive(*found)}"
        if found
        else "VM scenarios: no pouch archive"
    )
    dragonfly = dragonfly_archive()
    if dragonfly:
        lines.append(f"Dragonfly archive: {dragonfly[0]} ({dragonfly[1]})")
    return lines


def pytest_runtest_setup(item: pytest.Item) -> None:
    budget = os.environ.get("SUITE_BUDGET_MINUTES")
    started = os.environ.get("SUITE_STARTED_AT")
    if not (budget and started) or MOLECULE not in Path(str(item.path)).parents:
        return
    left = float(started) + float(budget) * 60 - time.time()
    module = getattr(item, "module", None)
    scenario = getattr(item, "callspec", None) and item.callspec.params.get("scenario")
    estimates = getattr(module, "ESTIMATED_MINUTES", {})
    need = max(SCENARIO_START_S, 60 * estimates.get(scenario, getattr(module, "DEFAULT_MINUTES", 0)))
    if left < need:
        pytest.skip(
            f"skipped for time: needs about {need / 60:.0f} min, {max(left, 0) / 60:.0f} min left of the "
            f"suite's {budget} min budget (SUITE_BUDGET_MINUTES); run it alone with "
            f"`make molecule PYTEST_ARGS='-k {scenario or '<scenario>'}'`"
        )
    if module is not None and hasattr(module, "TIMEOUT"):
        module.TIMEOUT = int(min(module.TIMEOUT, left + SCENARIO_MARGIN_S))
