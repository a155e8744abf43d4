"""ansible-doc renders pouch_container (DOCUMENTATION with the pouch doc fragment, EXAMPLES, RETURN)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")
    )
    return subprocess.run(
        [str(BIN / "ansible-doc"), "-M", "library", *args, "pouch_container"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ansible_doc_renders() -> None:
    result = ansible_doc()
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    text = result.stdout
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES", "ATTRIBUTES"):
        assert section in text, section
    # Connection options come from plugins/doc_fragments/pouch.py, documented once.
    for option in ("pouch_host", "validate_certs", "POUCH_HOST", "enable_lxcfs", "comparisons"):
        assert option in text, option


def test_documented_options_match_the_argument_spec() -> None:
    result = ansible_doc("--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["pouch_container"]
    documented = set(doc["doc"]["options"])
    spec = importlib.util.spec_from_file_location(
        "pouch_container_options", ROOT / "module_utils" / "pouch_container_options.py"
    )
    assert spec and spec.loader
    options = importlib.util.module_from_spec(spec)
    sys.modules["pouch_container_options"] = options
    spec.loader.exec_module(options)
    option_names = {option.name for option in options.OPTIONS}
    assert option_names <= documented, option_names - documented
    examples = yaml.safe_load(doc["examples"])
    assert all("pouch_container" in task for task in examples)
    assert {"container", "actions"} <= set(doc["return"])
