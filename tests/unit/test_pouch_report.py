"""Fleet report rendering (module_utils/pouch_report.py) from recorded kernel fact sets and audits."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KERNEL_FIXTURES = sorted(path.name for path in (FIXTURES / "kernel_facts").glob("*.json"))
GENERATED = "2026-11-29 12:00 UTC"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "module_utils" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


pk = _load("pouch_kernel")
pr = _load("pouch_report")
pa = _load("pouch_audit")


def kernel_node(fixture: str, settings: dict[str, Any] | None = None, **plan: bool) -> dict[str, Any]:
    """A preflight node entry as preflight.yml builds it, from a recorded probe."""
    probe = json.loads((FIXTURES / "kernel_facts" / fixture).read_text())
    decisions = pk.decide(probe, settings)
    decisions["probe"] = probe
    return {"status": "ok", "msg": "", "pouch_kernel": decisions, "plan": plan}


UNREACHABLE = {
    "status": "unreachable",
    "msg": "Task failed: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: "
    "Connection refused",
    "pouch_kernel": {},
    "plan": {},
}


def texts(row: list[Any]) -> list[str]:
    return [" / ".join(cell.lines) for cell in row]


# --- preflight rows -------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", KERNEL_FIXTURES)
def test_preflight_row_of_every_recorded_fact_set(fixture: str) -> None:
    node = kernel_node(fixture)
    kernel = node["pouch_kernel"]
    row = pr.preflight_row("n1", node)
    cells = texts(row)
    assert len(row) == len(pr.PREFLIGHT_COLUMNS)
    assert cells[0] == "n1"
    assert cells[1] == ("ready" if kernel["supported"] else "blocked")
    assert row[1].tone == (pr.OK if kernel["supported"] else pr.BAD)
    assert cells[2] == kernel["distribution"]["name"]
    assert row[3].lines == [kernel["version"], f"cgroup {kernel['cgroup_version']}"]
    assert row[4].lines[0] == kernel["snapshotter"]
    assert cells[6].startswith("yes" if kernel["lxcfs_capable"] else "no")
    if kernel["blockers"]:
        assert row[7].lines == kernel["blockers"] and row[7].tone == pr.BAD
    else:
        assert cells[7] == "none"


def test_lab_vm_row() -> None:
    row = texts(pr.preflight_row("node1", kernel_node("recorded_labvm_debian12_6.1.0-50-amd64.json")))
    assert row[1:5] == ["ready", "Debian GNU/Linux 12 (bookworm)", "6.1.0-50-amd64 / cgroup v2", "overlayfs"]
    # The recorded VM has /dev/kvm (qemu -cpu max): Kata is possible once an artifact is given.
    assert row[5] == "runc (default) / kata: capable, no runtimes_kata_artifact"
    assert row[7] == "none"


def test_centos6_row_is_blocked_with_the_reason() -> None:
    row = pr.preflight_row("old", kernel_node("centos6_2.6.32-754.el6.json"))
    assert texts(row)[1] == "blocked"
    assert "below 3.10" in row[7].lines[0] and "kernel_compat_runlxc_archive" in row[7].lines[0]
    assert row[4].lines[0] == "native" and "overlayfs is not available" in row[4].lines[1]
    assert row[5].lines[:3] == ["none", "runc: no (kernel below 3.10)", "runlxc: not supplied"]


def test_centos6_with_runlxc_supplied_runs_runlxc() -> None:
    node = kernel_node("centos6_2.6.32-754.el6.json", {"runlxc_source": "archive"})
    row = pr.preflight_row("old", node)
    assert texts(row)[1] == "ready"
    assert row[5].lines[:2] == ["runlxc (default)", "runc: no (kernel below 3.10)"]


def test_unparsable_kernel_is_blocked() -> None:
    row = pr.preflight_row("odd", kernel_node("custom_4.19_unparsable.json"))
    assert texts(row)[1] == "blocked" and "cannot be parsed by pouchd" in texts(row)[7]


def test_planned_runtimes_follow_the_runtimes_role_settings() -> None:
    kernel = kernel_node("debian12_6.1.0-50-amd64.json")["pouch_kernel"]
    assert pr.planned_runtimes(kernel, {"crun_enabled": True})[0] == "runc (default), crun"
    capable = dict(kernel, kata_capable=True)
    assert pr.planned_runtimes(capable, {})[1] == "kata: capable, no runtimes_kata_artifact"
    assert pr.planned_runtimes(capable, {"kata_artifact": True}) == ["runc (default), kata"]


def test_unreachable_and_failed_rows() -> None:
    row = pr.preflight_row("ghost", UNREACHABLE)
    assert row[1].lines == [
        "unreachable",
        "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused",
    ]
    assert row[1].tone == pr.BAD and texts(row)[7] == "not checked"
    failed = pr.preflight_row("broken", {"status": "failed", "msg": "/usr/bin/python3: not found"})
    assert failed[1].lines == ["probe failed", "/usr/bin/python3: not found"]


def test_preflight_summary_and_counts() -> None:
    nodes = {
        "lab": kernel_node("recorded_labvm_debian12_6.1.0-50-amd64.json"),
        "c7": kernel_node("centos7_3.10.0-327.el7.json"),
        "c6": kernel_node("centos6_2.6.32-754.el6.json"),
        "ghost": UNREACHABLE,
    }
    report = pr.build_report("preflight", nodes, GENERATED)
    assert [row[0].lines[0] for row in report.rows] == ["lab", "c7", "c6", "ghost"]
    assert report.summary == ["4 nodes: 2 ready, 1 blocked, 1 unreachable, 0 probe failed."]
    assert report.counts == {"blocked": 1, "unreachable": 1, "failed": 0}
    warnings = dict(report.sections)["Warnings"]
    assert any(line.startswith("c7: snapshotter native") for line in warnings)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report kind"):
        pr.build_report("inventory", {}, GENERATED)


# --- audit report ---------------------------------------------------------------------------------


def audit_node(fixture: str, **settings: Any) -> dict[str, Any]:
    obs = json.loads((FIXTURES / "audit" / fixture).read_text())
    return {"status": "ok", "msg": "", "checks": pa.evaluate(obs, settings), "observations": obs}


def test_audit_report_pass_fail_per_check_per_node() -> None:
    bad = json.loads((FIXTURES / "audit" / "lab_provisioned.json").read_text())
    bad["sockets"][0]["mode"] = "0666"
    nodes = {
        "good": audit_node("lab_provisioned.json", allowed_insecure_registries=["10.0.2.101:5000"]),
        "bad": {"status": "ok", "msg": "", "checks": pa.evaluate(bad, {})},
        "ghost": UNREACHABLE,
    }
    report = pr.build_report("audit", nodes, GENERATED)
    ids = [check[0] for check in pa.CHECKS]
    assert report.columns == ["Node", "Result", *ids]
    good, badrow, ghost = (texts(row) for row in report.rows)
    assert good[1:] == ["all pass"] + ["pass"] * len(ids)
    assert badrow[1] == "2 failed"
    assert badrow[2 + ids.index("socket")].startswith("FAIL / /var/run/pouchd.sock has mode 0666")
    assert badrow[2 + ids.index("insecure-registries")].startswith("FAIL / insecure (plain HTTP)")
    assert ghost[1].startswith("unreachable / Failed to connect") and ghost[2:] == ["—"] * len(ids)
    assert report.counts == {"failed_checks": 2, "unreachable": 1, "failed": 0}
    findings = dict(report.sections)["Findings"]
    assert len(findings) == 3 and findings[2].startswith("ghost: not audited (unreachable")


def test_audit_report_all_pass() -> None:
    nodes = {"n1": audit_node("tcp_tls_dragonfly.json")}
    report = pr.build_report("audit", nodes, GENERATED)
    assert sum(report.counts.values()) == 0
    assert report.summary[0].startswith("1 node: 1 pass every check, 0 with findings")
    assert dict(report.sections)["Findings"] == ["none"]


# --- rendering ------------------------------------------------------------------------------------


class _Table(HTMLParser):
    """Collects table rows (cell texts) and every URL-bearing attribute of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.urls: list[str] = []
        self._cell: list[str] | None = None
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "action")]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def mixed_fleet() -> dict[str, Any]:
    nodes = {name.split("_")[0] + f"-{i}": kernel_node(name) for i, name in enumerate(KERNEL_FIXTURES)}
    nodes["ghost"] = UNREACHABLE
    return nodes


def test_html_is_standalone_with_one_row_per_node() -> None:
    nodes = mixed_fleet()
    page = pr.render_html(pr.build_report("preflight", nodes, GENERATED))
    parser = _Table()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert parser.urls == [] and not parser.tags & {"link", "script", "img", "iframe"}
    header, *rows = parser.rows
    assert header == pr.PREFLIGHT_COLUMNS
    assert [row[0] for row in rows] == list(nodes)
    assert all(len(row) == len(header) for row in rows)
    assert rows[-1][1].startswith("unreachable")


def test_html_escapes_node_data() -> None:
    node = copy.deepcopy(UNREACHABLE)
    node["msg"] = "<script>alert(1)</script> & more"
    page = pr.render_html(pr.build_report("preflight", {"<b>x</b>": node}, GENERATED))
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page


def test_markdown_table_shape_and_escaping() -> None:
    nodes = mixed_fleet()
    nodes["pipe"] = dict(UNREACHABLE, msg="a | b\nc")
    text = pr.render_markdown(pr.build_report("preflight", nodes, GENERATED))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| " + " | ".join(pr.PREFLIGHT_COLUMNS) + " |"
    assert len(table) == 2 + len(nodes)
    # Every row has exactly the header's columns: pipes inside cells are escaped, newlines flattened.
    for line in table:
        assert len(line.replace("\\|", "").split("|")) == len(pr.PREFLIGHT_COLUMNS) + 2, line
    assert "a \\| b c" in text
    assert text.startswith("# Pouch preflight: fleet report\n\nGenerated 2026-11-29 12:00 UTC.")
