"""Suite-wide scheduling for `pytest -n N --dist loadgroup` (scripts/run-tests).

The module integration tests share session daemons (a private dockerd and pouchd per worker), and
two pouchds with iptables on would wipe each other's rules: they all run on one worker. Molecule
scenarios, lint and unit tests spread over the workers, so VM scenarios overlap with the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.xdist_group("daemons"))
