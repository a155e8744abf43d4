"""preflight.yml on one lab VM plus one unreachable inventory host: the report on the controller."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

VM = "preflight1"
UNREACHABLE = "unreachable1"
REPORT_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"


def report_rows() -> dict[str, list[str]]:
    """Node name -> the cells of its row in the Markdown table."""
    rows = {}
    for line in (REPORT_DIR / "preflight.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| Node "):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_report_files_exist() -> None:
    for name in ("preflight.md", "preflight.html", "preflight.json"):
        path = REPORT_DIR / name
        assert path.is_file() and path.stat().st_size > 500, path
    page = (REPORT_DIR / "preflight.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http://" not in page and "https://" not in page  # standalone: no external assets


def test_vm_row_has_kernel_and_snapshotter(host) -> None:
    if host.backend.get_hostname() != VM:
        pytest.skip("the VM's row is checked against the VM itself")
    nodes = json.loads((REPORT_DIR / "preflight.json").read_text())
    kernel = nodes[VM]["pouch_kernel"]
    assert nodes[VM]["status"] == "ok"
    assert kernel["version"] == host.check_output("uname -r")
    # The lab VM: Debian 12 on ext4 with overlay as a module, so nothing blocks Pouch.
    assert kernel["snapshotter"] == "overlayfs"
    assert kernel["supported"] is True
    row = report_rows()[VM]
    assert row[1] == "ready"
    assert "Debian GNU/Linux 12" in row[2]
    assert row[3].startswith(kernel["version"] + "<br>cgroup v2")
    assert row[4] == "overlayfs"
    assert row[5].startswith("runc (default)")
    assert row[7] == "none"


def test_unreachable_host_is_listed_as_unreachable() -> None:
    nodes = json.loads((REPORT_DIR / "preflight.json").read_text())
    assert nodes[UNREACHABLE]["status"] == "unreachable"
    row = report_rows()[UNREACHABLE]
    assert row[1].startswith("**unreachable**<br>")
    assert "port 1" in row[1] and "refused" in row[1].lower()
    assert "1 unreachable" in (REPORT_DIR / "preflight.md").read_text()


def test_nothing_changed_on_the_vm(host) -> None:
    if host.backend.get_hostname() != VM:
        pytest.skip("only the VM can be inspected")
    # What kernel_compat writes on a real run is absent, and the d_type probe cleaned up after itself.
    assert not host.file("/etc/sysctl.d/60-pouch.conf").exists
    assert not host.file("/etc/modules-load.d/pouch.conf").exists
    leftovers = host.run("find /var/lib -maxdepth 1 -name '.pouch-dtype-probe-*'")
    assert leftovers.rc == 0 and leftovers.stdout.strip() == ""
