"""Hardening audit of a Pouch node: CIS Docker Benchmark daemon checks adapted to pouchd.

Two halves, free of Ansible imports so tests/unit loads this file directly (used by
library/pouch_audit.py):

* ``collect()`` reads what the checks need from the node, changing nothing: pouchd's config.json
  (owner, group, mode, parsed content), the unix sockets it listens on and the TLS files it names.
  Recorded observations for unit tests have the same shape.
* ``evaluate()`` turns observations plus the audit settings into one result per check:
  ``{"id", "title", "reference", "passed", "detail"}``.

Runs on the managed node's Python (3.8+), hence ``typing`` names instead of newer syntax at runtime.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    Facts = dict[str, Any]

DEFAULT_SOCKET = "/var/run/pouchd.sock"

# id, title, the CIS Docker Benchmark recommendation(s) it adapts. The order is the report's order.
CHECKS = [
    (
        "tcp-tls",
        "No TCP API without TLS and client verification",
        "CIS Docker: Ensure TLS authentication for Docker daemon is configured",
    ),
    (
        "socket",
        "API socket 0660 (or stricter), owned root:pouch",
        "CIS Docker: Docker socket file ownership root:docker, permissions 660 or more restrictive",
    ),
    (
        "config-file",
        "config.json owned root:root, 0644 (or stricter)",
        "CIS Docker: daemon.json ownership root:root, permissions 644 or more restrictive",
    ),
    (
        "tls-files",
        "TLS key 0600 root:root; CA and certificate root-owned, not writable by others",
        "CIS Docker: TLS CA/server certificate and key file ownership and permissions",
    ),
    (
        "log-rotation",
        "Container logs rotated (json-file max-size and max-file)",
        "CIS Docker: log rotation / centralized logging; pouchd default-log-config",
    ),
    (
        "insecure-registries",
        "No insecure registries except the local P2P mirror and allowed ones",
        "CIS Docker: Ensure that insecure registries are not used",
    ),
]

DEFAULT_SETTINGS: Facts = {
    "socket_group": "pouch",
    # Plain-HTTP registries that are acceptable: the node-local Dragonfly dfdaemon mirror ...
    "p2p_mirrors": ["127.0.0.1:65001"],
    # ... and whatever the inventory allows (audit_allowed_insecure_registries).
    "allowed_insecure_registries": [],
}


# --------------------------------------------------------------------------------------------------
# collect (on the node)
# --------------------------------------------------------------------------------------------------


def _file_type(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def stat_path(path: str) -> Facts:
    """Owner, group and permission bits of a path (not following a final symlink)."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return {"path": path, "exists": False, "error": error.strerror}
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return {
        "path": path,
        "exists": True,
        "type": _file_type(info.st_mode),
        "mode": format(stat.S_IMODE(info.st_mode), "04o"),
        "owner": owner,
        "group": group,
    }


def unix_sockets(config: Facts | None) -> list[str]:
    """The unix socket paths pouchd listens on: config.json `listen`, else pouchd's default."""
    listen = (config or {}).get("listen") or ["unix://" + DEFAULT_SOCKET]
    return [
        entry[len("unix://") :] for entry in listen if isinstance(entry, str) and entry.startswith("unix://")
    ]


def collect(config_file: str) -> Facts:
    config_stat = stat_path(config_file)
    config: Facts | None = None
    config_error = None
    if config_stat["exists"]:
        try:
            with open(config_file, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if isinstance(loaded, dict):
                config = loaded
            else:
                config_error = "not a JSON object"
        except (OSError, ValueError) as error:
            config_error = str(error)
    tls = (config or {}).get("TLS") or {}
    tls_files = {
        key: stat_path(tls[key])
        for key in ("tlscacert", "tlscert", "tlskey")
        if isinstance(tls.get(key), str) and tls.get(key)
    }
    return {
        "config_file": config_stat,
        "config": config,
        "config_error": config_error,
        "sockets": [stat_path(path) for path in unix_sockets(config)],
        "tls_files": tls_files,
    }


# --------------------------------------------------------------------------------------------------
# evaluate (pure)
# --------------------------------------------------------------------------------------------------


def _mode_within(mode: str, allowed: int) -> bool:
    """True when no permission bit outside ``allowed`` is set (setuid/setgid/sticky count too)."""
    return (int(mode, 8) & ~allowed) == 0


def _ownership(observed: Facts, owner: str, group: str | None, allowed: int) -> list[str]:
    """Problems of one file: missing, owner, group, mode. Empty when it is as wanted."""
    if not observed.get("exists"):
        return [f"{observed['path']} is missing ({observed.get('error') or 'not found'})"]
    problems = []
    if observed["owner"] != owner:
        problems.append(f"{observed['path']} is owned by {observed['owner']}, not {owner}")
    if group is not None and observed["group"] != group:
        problems.append(f"{observed['path']} has group {observed['group']}, not {group}")
    if not _mode_within(observed["mode"], allowed):
        problems.append(f"{observed['path']} has mode {observed['mode']}, wanted {allowed:04o} or stricter")
    return problems


def _config_problem(observations: Facts) -> str | None:
    config_file = observations.get("config_file") or {}
    if not config_file.get("exists"):
        return f"{config_file.get('path', 'config.json')} is missing: pouchd's settings cannot be verified"
    if observations.get("config") is None:
        return f"{config_file['path']} is not readable JSON ({observations.get('config_error')})"
    return None


def check_tcp_tls(observations: Facts, settings: Facts) -> tuple[bool, str]:
    problem = _config_problem(observations)
    if problem:
        return False, problem
    config: Facts = observations["config"]
    listen = config.get("listen") or []
    tcp = [entry for entry in listen if isinstance(entry, str) and not entry.startswith("unix://")]
    if not tcp:
        return True, "only unix sockets: " + (", ".join(listen) or "pouchd's default " + DEFAULT_SOCKET)
    tls = config.get("TLS") or {}
    missing = [key for key in ("tlscacert", "tlscert", "tlskey") if not tls.get(key)]
    problems = []
    if missing:
        problems.append("TLS." + "/".join(missing) + " not set")
    if tls.get("tlsverify") is not True:
        problems.append("TLS.tlsverify is not true (no client certificate verification)")
    if problems:
        return False, f"TCP listener {', '.join(tcp)}: " + "; ".join(problems)
    return True, f"TCP listener {', '.join(tcp)} with TLS and client verification"


def check_socket(observations: Facts, settings: Facts) -> tuple[bool, str]:
    sockets = observations.get("sockets") or []
    if not sockets:
        return False, "no unix socket in config.json listen"
    problems: list[str] = []
    for observed in sockets:
        if observed.get("exists") and observed.get("type") != "socket":
            problems.append(f"{observed['path']} is a {observed['type']}, not a socket")
            continue
        problems += _ownership(observed, "root", settings["socket_group"], 0o660)
    if problems:
        return False, "; ".join(problems)
    return True, ", ".join(f"{s['path']} {s['mode']} {s['owner']}:{s['group']}" for s in sockets)


def check_config_file(observations: Facts, settings: Facts) -> tuple[bool, str]:
    observed = observations.get("config_file") or {}
    problems = _ownership(observed, "root", "root", 0o644) if observed else ["config.json not observed"]
    if observed.get("exists") and observed.get("type") != "file":
        problems.append(f"{observed['path']} is a {observed['type']}, not a regular file")
    if problems:
        return False, "; ".join(problems)
    return True, f"{observed['path']} {observed['mode']} {observed['owner']}:{observed['group']}"


def check_tls_files(observations: Facts, settings: Facts) -> tuple[bool, str]:
    problem = _config_problem(observations)
    if problem:
        return False, problem
    files: Facts = observations.get("tls_files") or {}
    if not files:
        return True, "no TLS files configured (no TCP listener needs them)"
    problems: list[str] = []
    for key, observed in sorted(files.items()):
        # The key is a secret: root only. Certificates are public but must not be replaceable.
        problems += _ownership(observed, "root", "root", 0o600 if key == "tlskey" else 0o644)
    if problems:
        return False, "; ".join(problems)
    return True, ", ".join(f"{f['path']} {f['mode']}" for _, f in sorted(files.items()))


def check_log_rotation(observations: Facts, settings: Facts) -> tuple[bool, str]:
    problem = _config_problem(observations)
    if problem:
        return False, problem
    log_config = observations["config"].get("default-log-config") or {}
    driver = log_config.get("Type") or "json-file"
    options = log_config.get("Config") or {}
    if driver == "none":
        return True, "log driver none: containers keep no log files"
    if driver == "syslog":
        return True, "log driver syslog: the system logger rotates"
    if driver != "json-file":
        return False, f"log driver {driver!r}: pouchd implements json-file, syslog and none only"
    max_size = str(options.get("max-size") or "")
    max_file = str(options.get("max-file") or "")
    problems = []
    if not max_size or max_size.strip().startswith("-"):
        problems.append("max-size is not set: json-file logs grow without limit")
    if max_file and (not max_file.isdigit() or int(max_file) < 1):
        problems.append(f"max-file {max_file!r} is not a positive number")
    if problems:
        return False, "json-file: " + "; ".join(problems)
    return True, f"json-file max-size {max_size}, max-file {max_file or '1 (pouchd default)'}"


def check_insecure_registries(observations: Facts, settings: Facts) -> tuple[bool, str]:
    problem = _config_problem(observations)
    if problem:
        return False, problem
    registries = observations["config"].get("insecure-registries") or []
    allowed = set(settings.get("p2p_mirrors") or []) | set(settings.get("allowed_insecure_registries") or [])
    extra = [registry for registry in registries if registry not in allowed]
    if extra:
        return False, "insecure (plain HTTP) registries not allowed: " + ", ".join(map(str, extra))
    if registries:
        return True, "only allowed ones: " + ", ".join(registries)
    return True, "none"


_EVALUATORS = {
    "tcp-tls": check_tcp_tls,
    "socket": check_socket,
    "config-file": check_config_file,
    "tls-files": check_tls_files,
    "log-rotation": check_log_rotation,
    "insecure-registries": check_insecure_registries,
}


def evaluate(observations: Facts, settings: Facts | None = None) -> list[Facts]:
    merged = dict(DEFAULT_SETTINGS)
    merged.update(settings or {})
    results = []
    for check_id, title, reference in CHECKS:
        passed, detail = _EVALUATORS[check_id](observations, merged)
        results.append(
            {"id": check_id, "title": title, "reference": reference, "passed": passed, "detail": detail}
        )
    return results
