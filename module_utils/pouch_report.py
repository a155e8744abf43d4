"""Fleet reports for playbooks/preflight.yml and playbooks/audit.yml: Markdown and standalone HTML.

Pure Python, no Ansible imports, so tests/unit loads it directly. library/pouch_fleet_report.py
(run on the controller) calls ``build_report`` and the two renderers and writes the files.

Input per node, as the playbooks assemble it from hostvars (every host of the play, reached or not):

* preflight: ``{"status": "ok"|"unreachable"|"failed", "msg": str, "pouch_kernel": <the fact of
  module_utils/pouch_kernel.decide()>, "plan": {"crun_enabled", "kata_artifact", "runlxc_force"}}``
* audit: ``{"status": ..., "msg": str, "checks": [<module_utils/pouch_audit.evaluate() items>]}``

``status`` says whether the node could be read: ``unreachable`` (no connection; ``msg`` is the
connection error), ``failed`` (connected, but the probe failed; ``msg`` is its error) or ``ok``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

Node = dict[str, Any]

# Cell tones: how a value is coloured in HTML and marked in Markdown.
OK = "ok"
BAD = "bad"
WARN = "warn"
MUTED = "muted"

_MD_MARK = {OK: "", BAD: "**", WARN: "", MUTED: "_"}


@dataclass
class Cell:
    """One table cell: lines of text (joined by line breaks) and a tone for colouring."""

    lines: list[str]
    tone: str = ""

    @classmethod
    def of(cls, text: str, tone: str = "") -> Cell:
        return cls([text], tone)


@dataclass
class Report:
    title: str
    generated: str
    intro: str
    columns: list[str]
    rows: list[list[Cell]]
    summary: list[str]
    # (heading, lines) sections printed under the table: details that do not fit a cell.
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    # Non-zero counts the caller turns into a failed run (blocked/unreachable nodes, failed checks).
    counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# preflight
# --------------------------------------------------------------------------------------------------

PREFLIGHT_COLUMNS = [
    "Node",
    "Status",
    "Distribution",
    "Kernel",
    "Snapshotter",
    "Runtimes available",
    "lxcfs",
    "Blockers",
]


def _error(node: Node) -> str:
    """The node's error, without the "Task failed: " ansible-core puts before connection errors."""
    msg = str(node.get("msg") or "no result").strip()
    return msg[len("Task failed: ") :] if msg.startswith("Task failed: ") else msg


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def _status_cell(node: Node) -> Cell | None:
    """The Status cell of a node that could not be read, else None."""
    status = node.get("status", "ok")
    if status == "unreachable":
        return Cell(["unreachable", _error(node)], BAD)
    if status != "ok" or not node.get("pouch_kernel"):
        return Cell(["probe failed", _error(node)], BAD)
    return None


def planned_runtimes(kernel: Node, plan: Node) -> list[str]:
    """The OCI runtimes the runtimes role would register on this node, default first, then why not
    others: the role's choices (crun, runlxc, Kata) applied to kernel_compat's decisions."""
    default = kernel.get("default_runtime") or "runc"
    names: list[str] = []
    notes: list[str] = []
    if kernel.get("runlxc_required"):
        notes.append("runc: no (kernel below 3.10)")
        if kernel.get("runlxc_source"):
            names.append("runlxc")
        else:
            notes.append("runlxc: not supplied")
    else:
        names.append("runc")
        if plan.get("crun_enabled"):
            names.append("crun")
        if plan.get("runlxc_force") and kernel.get("runlxc_source"):
            names.append("runlxc")
    if kernel.get("kata_capable"):
        if plan.get("kata_artifact"):
            names.append("kata")
        else:
            notes.append("kata: capable, no runtimes_kata_artifact")
    else:
        reason = (kernel.get("disabled_reasons") or {}).get("kata") or "no hardware virtualization"
        notes.append(f"kata: no ({reason})")
    labelled = [f"{name} (default)" if name == default else name for name in names]
    return [", ".join(labelled) or "none", *notes]


def preflight_row(name: str, node: Node) -> list[Cell]:
    failed = _status_cell(node)
    if failed is not None:
        blank = Cell.of("—", MUTED)
        return [Cell.of(name), failed, blank, blank, blank, blank, blank, Cell.of("not checked", MUTED)]
    kernel: Node = node["pouch_kernel"]
    plan: Node = node.get("plan") or {}
    dist = kernel.get("distribution") or {}
    dist_text = dist.get("name") or " ".join(filter(None, [dist.get("id"), dist.get("version_id")]))
    supported = bool(kernel.get("supported"))
    cgroup = kernel.get("cgroup_version") or "?"
    snapshotter = kernel.get("snapshotter") or "?"
    snap_lines = [snapshotter]
    if snapshotter != "overlayfs" and kernel.get("snapshotter_reason"):
        snap_lines.append(kernel["snapshotter_reason"])
    if kernel.get("lxcfs_capable"):
        lxcfs = Cell.of("yes", OK)
    else:
        reason = (kernel.get("disabled_reasons") or {}).get("lxcfs") or "FUSE missing"
        lxcfs = Cell(["no", reason], WARN)
    blockers = kernel.get("blockers") or []
    return [
        Cell.of(name),
        Cell.of("ready", OK) if supported else Cell.of("blocked", BAD),
        Cell.of(dist_text or "unknown"),
        Cell([kernel.get("version") or "?", f"cgroup {cgroup}"]),
        Cell(snap_lines, OK if snapshotter == "overlayfs" else WARN),
        Cell(planned_runtimes(kernel, plan)),
        lxcfs,
        Cell(list(blockers), BAD) if blockers else Cell.of("none", OK),
    ]


def preflight_report(nodes: dict[str, Node], generated: str) -> Report:
    names = list(nodes)
    rows = [preflight_row(name, nodes[name]) for name in names]
    unreachable = [n for n in names if nodes[n].get("status") == "unreachable"]
    failed = [n for n in names if n not in unreachable and _status_cell(nodes[n]) is not None]
    read = [n for n in names if n not in unreachable and n not in failed]
    blocked = [n for n in read if not nodes[n]["pouch_kernel"].get("supported")]
    ready = [n for n in read if n not in blocked]
    summary = [
        f"{_nodes(len(names))}: {len(ready)} ready, {len(blocked)} blocked, "
        f"{len(unreachable)} unreachable, {len(failed)} probe failed."
    ]
    warnings = [
        f"{name}: {warning}" for name in read for warning in nodes[name]["pouch_kernel"].get("warnings") or []
    ]
    disabled = [
        f"{name}: {feature} ({reason})"
        for name in read
        for feature, reason in sorted((nodes[name]["pouch_kernel"].get("disabled_reasons") or {}).items())
    ]
    sections = [("Warnings", warnings or ["none"]), ("Container features left off", disabled or ["none"])]
    return Report(
        title="Pouch preflight: fleet report",
        generated=generated,
        intro=(
            "What kernel_compat would decide on each node (read-only probe, nothing changed). "
            "Blocked nodes stop site.yml before anything is changed on them."
        ),
        columns=PREFLIGHT_COLUMNS,
        rows=rows,
        summary=summary,
        sections=sections,
        counts={"blocked": len(blocked), "unreachable": len(unreachable), "failed": len(failed)},
    )


# --------------------------------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------------------------------


def audit_report(nodes: dict[str, Node], generated: str) -> Report:
    names = list(nodes)
    # Check columns in the order the first audited node lists them (every node runs the same list).
    check_ids: list[str] = []
    titles: dict[str, str] = {}
    for name in names:
        for check in nodes[name].get("checks") or []:
            if check["id"] not in titles:
                check_ids.append(check["id"])
                titles[check["id"]] = check.get("title", check["id"])
    rows: list[list[Cell]] = []
    findings: list[str] = []
    unreachable = failed_nodes = failing_nodes = failed_checks = 0
    for name in names:
        node = nodes[name]
        status = node.get("status", "ok")
        checks = {check["id"]: check for check in node.get("checks") or []}
        if status != "ok" or not checks:
            label = "unreachable" if status == "unreachable" else "audit failed"
            if status == "unreachable":
                unreachable += 1
            else:
                failed_nodes += 1
            rows.append(
                [Cell.of(name), Cell([label, _error(node)], BAD)] + [Cell.of("—", MUTED) for _ in check_ids]
            )
            findings.append(f"{name}: not audited ({label}: {_error(node)})")
            continue
        cells: list[Cell] = []
        node_failures = 0
        for check_id in check_ids:
            check = checks.get(check_id)
            if check is None:
                cells.append(Cell.of("—", MUTED))
            elif check.get("passed"):
                cells.append(Cell.of("pass", OK))
            else:
                node_failures += 1
                cells.append(Cell(["FAIL", check.get("detail", "")], BAD))
                findings.append(f"{name}: {titles[check_id]}: {check.get('detail', '')}")
        failed_checks += node_failures
        failing_nodes += 1 if node_failures else 0
        result = Cell.of("all pass", OK) if not node_failures else Cell.of(f"{node_failures} failed", BAD)
        rows.append([Cell.of(name), result, *cells])
    passing = len(names) - unreachable - failed_nodes - failing_nodes
    summary = [
        f"{_nodes(len(names))}: {passing} pass every check, {failing_nodes} with findings "
        f"({failed_checks} failed checks), {unreachable} unreachable, {failed_nodes} audit failed."
    ]
    details: list[str] = []
    references = {
        check["id"]: check.get("reference", "") for name in names for check in nodes[name].get("checks") or []
    }
    for check_id in check_ids:
        reference = references.get(check_id)
        details.append(f"{check_id}: {titles[check_id]}" + (f" ({reference})" if reference else ""))
    return Report(
        title="Pouch hardening audit: fleet report",
        generated=generated,
        intro=(
            "pouchd's daemon settings and files checked against the CIS Docker Benchmark daemon items, "
            "adapted to pouchd (read-only)."
        ),
        columns=["Node", "Result", *check_ids],
        rows=rows,
        summary=summary,
        sections=[("Findings", findings or ["none"]), ("Checks", details or ["none"])],
        counts={"failed_checks": failed_checks, "unreachable": unreachable, "failed": failed_nodes},
    )


def build_report(kind: str, nodes: dict[str, Node], generated: str) -> Report:
    if kind == "preflight":
        return preflight_report(nodes, generated)
    if kind == "audit":
        return audit_report(nodes, generated)
    raise ValueError(f"unknown report kind {kind!r} (preflight or audit)")


# --------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _md_cell(cell: Cell) -> str:
    mark = _MD_MARK.get(cell.tone, "")
    parts = [_md_escape(line) for line in cell.lines if line]
    if parts and mark:
        parts[0] = f"{mark}{parts[0]}{mark}"
    return "<br>".join(parts) or " "


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", "", f"Generated {report.generated}. {report.intro}", ""]
    lines += [*report.summary, ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in report.columns) + " |")
    lines.append("|" + "|".join("---" for _ in report.columns) + "|")
    for row in report.rows:
        lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
    for heading, items in report.sections:
        lines += ["", f"## {heading}", ""]
        lines += [f"- {_md_escape(item)}" for item in items]
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 24px;
       color: #1d2330; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
p.meta { color: #5b6475; margin: 0 0 12px; font-size: 13px; }
p.summary { font-weight: 600; margin: 8px 0 16px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #c9cfda; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
tr:nth-child(even) td { background: #fafbfd; }
td.ok { color: #126b2f; background: #e6f4ea !important; }
td.bad { color: #8a1c1c; background: #fbe9e9 !important; }
td.warn { color: #7a5200; background: #fff4d6 !important; }
td.muted { color: #8a93a3; }
td span.sub { display: block; color: inherit; opacity: 0.85; font-size: 12px; margin-top: 2px; }
ul { font-size: 13px; padding-left: 20px; }
"""


def _html_cell(cell: Cell) -> str:
    lines = [line for line in cell.lines if line]
    first = html.escape(lines[0]) if lines else ""
    rest = "".join(f'<span class="sub">{html.escape(line)}</span>' for line in lines[1:])
    css = f' class="{cell.tone}"' if cell.tone else ""
    return f"<td{css}>{first}{rest}</td>"


def render_html(report: Report) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in report.columns)
    body = "\n".join("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>" for row in report.rows)
    sections = "".join(
        f"<h2>{html.escape(heading)}</h2><ul>"
        + "".join(f"<li>{html.escape(item)}</li>" for item in items)
        + "</ul>"
        for heading, items in report.sections
    )
    summary = "".join(f'<p class="summary">{html.escape(line)}</p>' for line in report.summary)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title>"
        f"<style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(report.title)}</h1>\n"
        f'<p class="meta">Generated {html.escape(report.generated)}. {html.escape(report.intro)}</p>\n'
        f"{summary}\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        f"{sections}\n</body></html>\n"
    )
