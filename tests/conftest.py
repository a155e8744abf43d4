"""Suite-wide scheduling for `pytest -n N --dist loadgroup` (scripts/run-tests).

The module integration tests share session daemons (a private dockerd and pouchd per worker), and
two pouchds with iptables on would wipe each other's rules: they all run on one worker. Molecule
scenarios, lint and unit tests spread over the workers, so VM scenarios overlap with the rest.

CI has a hard wall-clock limit. With SUITE_BUDGET_MINUTES set (scripts/run-tests sets 60 under
CI=true), a molecule scenario that would start with less than 12 minutes of the budget left is
skipped with a reason saying so, and a started one gets at most the time left plus a margin: the
run ends with a report instead of being killed without one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
INTEGRATION = TESTS / "integration"
MOLECULE = TESTS / "molecule"
SCENARIO_START_S = 12 * 60  # a scenario needs about this long; don't start one with less left
SCENARIO_MARGIN_S = 15 * 60  # a started scenario may run this far past the budget


# tryfirst: xdist's worker reads the xdist_group marks in its own modifyitems hook, which pluggy would
# otherwise call before this one (this conftest is registered earlier), and the group would be ignored.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.xdist_group("daemons"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    budget = os.environ.get("SUITE_BUDGET_MINUTES")
    started = os.environ.get("SUITE_STARTED_AT")
    if not (budget and started) or MOLECULE not in Path(str(item.path)).parents:
        return
    left = float(started) + float(budget) * 60 - time.time()
    if left < SCENARIO_START_S:
        pytest.skip(
            f"suite time budget of {budget} min (SUITE_BUDGET_MINUTES) too nearly spent to start this "
            "scenario; run it alone with `make molecule PYTEST_ARGS='-k <scenario>'`"
        )
    module = getattr(item, "module", None)
    if module is not None and hasattr(module, "TIMEOUT"):
        module.TIMEOUT = int(min(module.TIMEOUT, left + SCENARIO_MARGIN_S))
