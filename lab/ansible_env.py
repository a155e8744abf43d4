"""The environment for running Ansible commands (ansible-playbook, ansible-doc, ansible-lint, molecule)
from Python: this repo's ansible.cfg, the venv's programs first on PATH, no colour."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lab.paths import default_state_dir

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def ansible_env(bin_dir: Path = BIN, **overrides: str) -> dict[str, str]:
    """os.environ plus the settings every caller needs, then ``overrides``."""
    # A dict display, not dict(**): an override may replace any key, PATH included.
    return {
        **os.environ,
        # The venv's ansible (and the python its shebangs name) even when the venv is not activated.
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        # Callers parse or log the output: no escape sequences in it.
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
        # Where the lab keeps its CA and test images: the lab inventory and scenarios read it.
        "LAB_STATE_DIR": str(default_state_dir()),
        **overrides,
    }


def ansible_command(name: str, bin_dir: Path = BIN) -> str:
    """``name`` in ``bin_dir`` if it is there, else ``name`` for a PATH lookup."""
    path = bin_dir / name
    return str(path) if path.exists() else name


def local_role_play(name: str, hosts: str, role: Path) -> str:
    """The head of a one-play playbook run on this machine with ``role``'s defaults and vars loaded
    as play vars (what tests use to render a role's templates without running the role)."""
    return (
        f"- name: {name}\n  hosts: {hosts}\n  connection: local\n  gather_facts: false\n"
        f"  vars_files:\n    - {role}/defaults/main.yml\n    - {role}/vars/main.yml\n"
    )
