#!/usr/bin/python
"""Ansible module (run on the controller): write a fleet report as Markdown and standalone HTML."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pouch_fleet_report
short_description: Write the preflight or audit fleet report (Markdown and standalone HTML)
description:
  - "Meant for C(delegate_to: localhost) with C(run_once): takes one entry per node of the play
    (reached or not) and writes C(<dest>/<basename>.md), C(<dest>/<basename>.html) (inline CSS, no
    external assets) and C(<dest>/<basename>.json) (the input, for tooling)."
  - Rendering lives in module_utils/pouch_report.py.
  - Writes only when the content changed; files are replaced atomically.
options:
  kind:
    description: Which report.
    type: str
    required: true
    choices: [preflight, audit]
  nodes:
    description:
      - Node name to its result, in report order. Each has C(status) (C(ok), C(unreachable) or
        C(failed)) and C(msg), plus C(pouch_kernel) and C(plan) (preflight) or C(checks) (audit).
    type: dict
    required: true
  dest:
    description: Directory for the report files; created if missing.
    type: path
    required: true
  basename:
    description: File name without extension; defaults to the kind.
    type: str
author: pouch-ansible
"""

EXAMPLES = r"""
- name: Write the fleet report
  pouch_fleet_report:
    kind: preflight
    nodes: "{{ nodes }}"
    dest: "{{ playbook_dir }}/../reports"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: Paths written (markdown, html, json).
  returned: always
  type: dict
summary:
  description: The report's summary lines.
  returned: always
  type: list
  elements: str
counts:
  description: Problem counts (blocked, unreachable, failed; audit also failed_checks).
  returned: always
  type: dict
"""

import datetime
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pouch_report import build_report, render_html, render_markdown


def _write(path: str, content: str) -> bool:
    """Replace path with content atomically; False when it already holds exactly that."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    except OSError:
        pass
    handle_fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-")
    try:
        with os.fdopen(handle_fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kind": {"type": "str", "required": True, "choices": ["preflight", "audit"]},
            "nodes": {"type": "dict", "required": True},
            "dest": {"type": "path", "required": True},
            "basename": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        report = build_report(params["kind"], params["nodes"], generated)
    except (KeyError, TypeError, ValueError) as error:
        module.fail_json(msg=f"cannot build the {params['kind']} report: {error!r}")
    base = os.path.join(params["dest"], params["basename"] or params["kind"])
    files = {"markdown": base + ".md", "html": base + ".html", "json": base + ".json"}
    changed = False
    if not module.check_mode:
        os.makedirs(params["dest"], exist_ok=True)
        contents = {
            "markdown": render_markdown(report),
            "html": render_html(report),
            "json": json.dumps(params["nodes"], indent=2, sort_keys=True, default=str) + "\n",
        }
        for key, path in files.items():
            changed = _write(path, contents[key]) or changed
    module.exit_json(changed=changed, files=files, summary=report.summary, counts=report.counts)


if __name__ == "__main__":
    main()
