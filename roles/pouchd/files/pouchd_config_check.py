#!/usr/bin/python3
"""Check a pouchd config.json before it replaces the live one (used as Ansible `validate:`).

pouchd 1.3 decodes its config file leniently: unknown keys are silently ignored, a registry
mirror written with a scheme breaks image resolution later, and some errors only show at start.
This script rejects such files up front: it parses the JSON, checks every key against the keys
pouchd 1.3 knows and each value's type and format, then (with --pouchd) lets pouchd itself decode
the file (`pouchd --config-file FILE --version` loads the file and exits without starting).

Standard library only: it runs on the managed node. Exit 0 = valid, 1 = invalid (reasons on stderr).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
from typing import Any

STR, BOOL, INT, STR_LIST, STR_MAP = "string", "boolean", "integer", "list of strings", "map of strings"

# Key → type, from pouchd 1.3's config structs (daemon/config, network, cri/config, client TLS).
TOP_LEVEL: dict[str, Any] = {
    "home-dir": STR,
    "listen": STR_LIST,
    "containerd": STR,
    "containerd-path": STR,
    "debug": BOOL,
    "enable-cri": BOOL,
    "default-runtime": STR,
    "add-runtime": "runtimes",
    "enable-lxcfs": BOOL,
    "lxcfs": STR,
    "lxcfs-home": STR,
    "default-registry": STR,
    "default-registry-namespace": STR,
    "image-proxy": STR,
    "registry-mirrors": STR_LIST,
    "insecure-registries": STR_LIST,
    "quota-driver": STR,
    "snapshotter": STR,
    "allow-multi-snapshotter": BOOL,
    "cgroup-parent": STR,
    "cgroup-driver": STR,
    "label": STR_LIST,
    "enable-profiler": BOOL,
    "pidfile": STR,
    "oom-score-adjust": INT,
    "default-namespace": STR,
    "enable-builder": BOOL,
    "TLS": {
        "tlscacert": STR,
        "tlscert": STR,
        "tlskey": STR,
        "tlsverify": BOOL,
        "manager-whitelist": STR,
    },
    "cri-config": {
        "listen": STR,
        "network-plugin-bin-dir": STR,
        "network-plugin-conf-dir": STR,
        "sandbox-image": STR,
        "cri-version": STR,
        "stream-server-port": STR,
        "stream-server-reuse-port": BOOL,
        "cri-stats-collect-period": INT,
        "enable-cri-stats-collect": BOOL,
        "runtime-config-file": STR,
    },
    "volume-config": {
        "volume-driver-alias": STR,
        "volume-timeout": INT,
        "remove-volume": BOOL,
        "volume-default-driver": STR,
    },
    "network-config": {
        "meta-path": STR,
        "exec-root-dir": STR,
        "dns": STR_LIST,
        "dns-options": STR_LIST,
        "dns-search": STR_LIST,
        "bridge-config": {
            "disable-bridge": BOOL,
            "bridge-name": STR,
            "bip": STR,
            "fixed-cidr": STR,
            "default-gateway": STR,
            "enable-ipv6": BOOL,
            "fixed-cidr-v6": STR,
            "default-gateway-v6": STR,
            "preferred-ip": STR,
            "mtu": INT,
            "icc": BOOL,
            "iptables": BOOL,
            "ipforward": BOOL,
            "ipmasq": BOOL,
            "userland-proxy": BOOL,
        },
    },
    "default-log-config": {"Type": STR, "Config": STR_MAP},
}
RUNTIME_KEYS = {"path": STR, "type": STR, "runtimeArgs": STR_LIST, "options": None}
RUNTIME_TYPES = {
    "io.containerd.runtime.v1.linux",
    "io.containerd.runc.v1",
    "io.containerd.runsc.v1",
    "io.containerd.kata.v2",
}
LOG_DRIVERS = {"json-file", "syslog", "none"}
JSON_FILE_LOG_OPTS = {"max-file", "max-size", "compress", "labels", "env", "env-regex", "tag", "mode"}
SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[kKmMgG]?[bB]?$")
# host[:port][/path]: what pouchd joins image references onto (no scheme).
REGISTRY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._/-]+)?$")
HOST_PORT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def type_ok(value: Any, kind: str) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == STR_MAP:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return True


def check_keys(obj: dict[str, Any], schema: dict[str, Any], where: str, errors: list[str]) -> None:
    for key, value in obj.items():
        path = f"{where}{key}"
        if key not in schema:
            errors.append(f"{path}: unknown key (pouchd 1.3 would silently ignore it)")
            continue
        kind = schema[key]
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                errors.append(f"{path}: must be an object")
            else:
                check_keys(value, kind, f"{path}.", errors)
        elif kind == "runtimes":
            check_runtimes(value, path, errors)
        elif not type_ok(value, kind):
            errors.append(f"{path}: must be a {kind}, got {json.dumps(value)}")


def check_runtimes(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{where}: must be an object of runtime name → settings")
        return
    for name, spec in value.items():
        if not isinstance(spec, dict):
            errors.append(f"{where}.{name}: must be an object")
            continue
        check_keys(spec, RUNTIME_KEYS, f"{where}.{name}.", errors)
        rtype = spec.get("type")
        if rtype and rtype not in RUNTIME_TYPES:
            errors.append(f"{where}.{name}.type: {rtype!r} is not one of {sorted(RUNTIME_TYPES)}")
        path = spec.get("path")
        if isinstance(path, str) and path and "/" in path and not os.path.isabs(path):
            errors.append(f"{where}.{name}.path: {path!r} must be absolute or a bare command name")


def check_absolute(cfg: dict[str, Any], keys: list[str], errors: list[str]) -> None:
    for dotted in keys:
        node: Any = cfg
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node and not os.path.isabs(node):
            errors.append(f"{dotted}: {node!r} must be an absolute path")


def check_values(cfg: dict[str, Any], allow_insecure_tcp: bool, errors: list[str]) -> None:
    listen = cfg.get("listen") or []
    tls = cfg.get("TLS") or {}
    for addr in listen if isinstance(listen, list) else []:
        if not isinstance(addr, str):
            continue
        if addr.startswith("unix://"):
            if not os.path.isabs(addr[len("unix://") :]):
                errors.append(f"listen: {addr!r} needs an absolute socket path")
        elif addr.startswith("tcp://"):
            secured = all(tls.get(key) for key in ("tlscert", "tlskey", "tlscacert", "tlsverify"))
            if not secured and not allow_insecure_tcp:
                errors.append(
                    f"listen: {addr!r} is a TCP listener without TLS client verification "
                    "(TLS.tlsverify true with tlscacert, tlscert and tlskey): anyone reaching the port "
                    "would control the node"
                )
        else:
            errors.append(f"listen: {addr!r} must start with unix:// or tcp://")

    for key in ("registry-mirrors", "insecure-registries"):
        entries = cfg.get(key) or []
        pattern = REGISTRY_RE if key == "registry-mirrors" else HOST_PORT_RE
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            if "://" in entry:
                errors.append(
                    f"{key}: {entry!r} has a scheme; pouchd wants host:port without http:// or https://"
                )
            elif not pattern.match(entry):
                form = "host[:port][/path]" if key == "registry-mirrors" else "host:port"
                errors.append(f"{key}: {entry!r} is not {form}")

    registry = cfg.get("default-registry")
    if isinstance(registry, str) and "://" in registry:
        errors.append(f"default-registry: {registry!r} has a scheme; write host[:port]")

    driver = cfg.get("cgroup-driver")
    if driver is not None and driver not in ("cgroupfs", "systemd"):
        errors.append(f"cgroup-driver: {driver!r} must be cgroupfs or systemd")

    for label in cfg.get("label") or []:
        if isinstance(label, str) and (not re.match(r"^[^=]+=.+$", label)):
            errors.append(f"label: {label!r} must be key=value with both parts non-empty")

    runtimes = cfg.get("add-runtime") or {}
    default_runtime = cfg.get("default-runtime")
    if default_runtime and isinstance(runtimes, dict) and runtimes and default_runtime not in runtimes:
        errors.append(f"default-runtime: {default_runtime!r} is not one of add-runtime {sorted(runtimes)}")

    if cfg.get("enable-lxcfs") and not cfg.get("lxcfs-home"):
        errors.append("enable-lxcfs: set lxcfs-home (the default /var/lib/lxcfs exposes the host's /var/lib)")

    log = cfg.get("default-log-config") or {}
    if isinstance(log, dict):
        log_type = log.get("Type")
        if log_type is not None and log_type not in LOG_DRIVERS:
            errors.append(f"default-log-config.Type: {log_type!r} must be one of {sorted(LOG_DRIVERS)}")
        opts = log.get("Config") or {}
        if log_type in (None, "json-file") and isinstance(opts, dict):
            for opt, val in opts.items():
                if opt not in JSON_FILE_LOG_OPTS and opt != "max-buffer-size":
                    errors.append(f"default-log-config.Config.{opt}: not a json-file log option")
                if opt == "max-size" and isinstance(val, str) and not SIZE_RE.match(val):
                    errors.append(f"default-log-config.Config.max-size: {val!r} is not a size like 100m")
                if opt == "max-file" and isinstance(val, str) and not (val.isdigit() and int(val) > 0):
                    errors.append(f"default-log-config.Config.max-file: {val!r} must be a positive integer")

    bridge = (cfg.get("network-config") or {}).get("bridge-config") or {}
    if isinstance(bridge, dict):
        for key in ("bip", "fixed-cidr"):
            value = bridge.get(key)
            if isinstance(value, str) and value:
                try:
                    ipaddress.ip_interface(value)
                    if "/" not in value:
                        raise ValueError
                except ValueError:
                    errors.append(f"network-config.bridge-config.{key}: {value!r} is not an address/prefix")
        mtu = bridge.get("mtu")
        if isinstance(mtu, int) and not isinstance(mtu, bool) and not 68 <= mtu <= 65535:
            errors.append(f"network-config.bridge-config.mtu: {mtu} is out of range")

    score = cfg.get("oom-score-adjust")
    if isinstance(score, int) and not isinstance(score, bool) and not -1000 <= score <= 1000:
        errors.append(f"oom-score-adjust: {score} must be between -1000 and 1000")

    paths = [
        "home-dir",
        "containerd-path",
        "lxcfs-home",
        "pidfile",
        "TLS.tlscacert",
        "TLS.tlscert",
        "TLS.tlskey",
    ]
    check_absolute(cfg, paths, errors)


def validate(text: str, allow_insecure_tcp: bool = False) -> list[str]:
    """Every problem found in a config.json text; empty when it is fine."""
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(cfg, dict) or not cfg:
        return ["the file must hold a non-empty JSON object (pouchd treats an empty file as fatal)"]
    errors: list[str] = []
    check_keys(cfg, TOP_LEVEL, "", errors)
    check_values(cfg, allow_insecure_tcp, errors)
    return errors


def pouchd_decode(pouchd: str, path: str) -> list[str]:
    """Let pouchd decode the file the way it does at start (it exits after printing its version)."""
    try:
        argv = [pouchd, "--config-file", path, "--version"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return [f"cannot run {pouchd}: {exc}"]
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return [f"pouchd rejects the file: {detail[0] if detail else 'exit ' + str(proc.returncode)}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the config.json to check")
    parser.add_argument("--pouchd", help="pouchd binary: also let it decode the file")
    parser.add_argument("--allow-insecure-tcp", action="store_true", help="accept TCP listeners without TLS")
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    errors = validate(text, args.allow_insecure_tcp)
    if not errors and args.pouchd:
        errors = pouchd_decode(args.pouchd, args.config)
    for error in errors:
        print(f"{args.config}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
