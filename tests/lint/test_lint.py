"""Lint gates: ruff, yamllint and ansible-lint (production profile) must all pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")
    )
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "argv",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("yamllint", "--strict", "."),
        ("ansible-lint", "--profile", "production", "--offline"),
    ],
    ids=["ruff-check", "ruff-format", "yamllint", "ansible-lint"],
)
def test_lint(argv: tuple[str, ...]) -> None:
    result = run(str(BIN / argv[0]), *argv[1:])
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
