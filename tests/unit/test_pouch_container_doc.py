"""ansible-doc renders every pouch_* module (DOCUMENTATION with the pouch doc fragments, EXAMPLES, RETURN).

Connection options come from plugins/doc_fragments/pouch.py (`pouch`), check/diff mode attributes from
its `pouch.attributes` / `pouch.attributes_read_only`: documented once, not copied into the modules.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]

ATTRIBUTE_FRAGMENTS = {"pouch.attributes": "full", "pouch.attributes_read_only": "none"}  # -> diff mode


def library_modules() -> list[str]:
    """Every library/pouch_*.py the repository tracks (a colleague's unfinished, untracked one is not
    ours to judge); all of them where git is not there to ask."""
    listed = subprocess.run(
        ["git", "ls-files", "library/pouch_*.py"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    paths = listed.stdout.split() if listed.returncode == 0 else []
    paths = paths or [str(p.relative_to(ROOT)) for p in (ROOT / "library").glob("pouch_*.py")]
    return sorted(Path(path).stem for path in paths)


MODULES = library_modules()


def ansible_doc(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ansible_command("ansible-doc"), "-M", "library", *args, module],
        cwd=ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def raw_documentation(module: str) -> dict[str, Any]:
    """The module's own DOCUMENTATION, before ansible-doc merges the fragments in."""
    tree = ast.parse((ROOT / "library" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "DOCUMENTATION" for target in node.targets
        ):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"{module} has no DOCUMENTATION")


def test_the_modules_are_found() -> None:
    assert {"pouch_container", "pouch_image", "pouch_network", "pouch_volume", "pouch_info"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders(module: str) -> None:
    result = ansible_doc(module)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    text = result.stdout
    own = raw_documentation(module)
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in text, section
    assert ("ATTRIBUTES" in text) is bool(
        set(own.get("extends_documentation_fragment") or []) & set(ATTRIBUTE_FRAGMENTS)
    )
    # Modules that talk to the daemon take the connection options from the `pouch` fragment.
    connection = "pouch" in (own.get("extends_documentation_fragment") or [])
    for option in ("pouch_host", "validate_certs", "POUCH_HOST"):
        assert (option in text) is connection, option


@pytest.mark.parametrize("module", MODULES)
def test_attributes_come_from_the_fragment(module: str) -> None:
    """check_mode/diff_mode are documented once, in a fragment; a module may only refine the details."""
    own = raw_documentation(module)
    fragments = [f for f in own.get("extends_documentation_fragment") or [] if f in ATTRIBUTE_FRAGMENTS]
    for name, attribute in (own.get("attributes") or {}).items():
        assert fragments, f"{module} documents attribute {name} itself: use a pouch.attributes* fragment"
        assert set(attribute) <= {"details"}, (name, attribute)
    if not fragments:
        return
    assert len(fragments) == 1, fragments
    result = ansible_doc(module, "--json")
    assert result.returncode == 0, result.stderr
    attributes = json.loads(result.stdout)[module]["doc"]["attributes"]
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["check_mode"]["details"]
    assert attributes["diff_mode"]["support"] == ATTRIBUTE_FRAGMENTS[fragments[0]]


def test_the_toolkit_modules_use_the_attribute_fragments() -> None:
    expected = {
        "pouch_container": "pouch.attributes",
        "pouch_image": "pouch.attributes",
        "pouch_network": "pouch.attributes",
        "pouch_volume": "pouch.attributes",
        "pouch_info": "pouch.attributes_read_only",
        "pouch_kernel_facts": "pouch.attributes_read_only",
    }
    for module, fragment in expected.items():
        assert fragment in raw_documentation(module)["extends_documentation_fragment"], module


def test_documented_options_match_the_argument_spec() -> None:
    result = ansible_doc("pouch_container", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["pouch_container"]
    text = ansible_doc("pouch_container").stdout
    for option in ("enable_lxcfs", "comparisons"):
        assert option in text, option
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


@pytest.mark.parametrize("module", ["pouch_container", "pouch_image"])
def test_registry_auth_is_documented_once(module: str) -> None:
    assert "pouch.registry_auth" in raw_documentation(module)["extends_documentation_fragment"]
    assert "registry_auth" not in (raw_documentation(module).get("options") or {})
    result = ansible_doc(module, "--json")
    assert result.returncode == 0, result.stderr
    option = json.loads(result.stdout)[module]["doc"]["options"]["registry_auth"]
    assert set(option["suboptions"]) == {"username", "password", "server_address"}
