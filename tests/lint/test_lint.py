"""Lint gates: ruff, yamllint and ansible-lint (production profile) must all pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900)


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
    result = run(ansible_command(argv[0]), *argv[1:])
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
