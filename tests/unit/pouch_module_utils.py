"""Import the project's module_utils under the names Ansible gives them (ansible.module_utils.NAME)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    """module_utils/NAME.py as ansible.module_utils.NAME (its project imports are loaded the same way)."""
    full = f"ansible.module_utils.{name}"
    if full in sys.modules:
        return sys.modules[full]
    for dependency in ("pouch_client", "pouch_common"):
        if dependency != name and f"ansible.module_utils.{dependency}" not in sys.modules:
            if dependency == "pouch_common" and name == "pouch_client":
                continue
            load(dependency)
    spec = importlib.util.spec_from_file_location(full, ROOT / "module_utils" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    return module
