#!/usr/bin/python3
"""An OCI runtime for the test daemons: runc, minus the capabilities this machine cannot grant.

A privileged container asks for every capability the daemon knows. Root on this test machine runs
without CAP_SYS_RESOURCE in its bounding set, so runc cannot give it and refuses to start the container
("unable to apply caps: operation not permitted"). Registered as an extra runtime of the private
daemons (tests/integration/conftest.py), this wrapper drops from the bundle's config.json the
capabilities outside the bounding set of the calling process, then runs runc with the same arguments.
Everything else a privileged container gets (host devices, unconfined /sys, no seccomp) is unchanged,
and a container that asks only for capabilities the machine has passes through untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # fmt: skip


def bounding_set() -> set[str]:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1}
    return {f"CAP_{name}" for name in CAPABILITIES}


def bundle_dir(argv: list[str]) -> Path | None:
    """The --bundle of a `create` or `run` command (runc's default: the working directory)."""
    if not {"create", "run"} & set(argv):
        return None
    for index, arg in enumerate(argv):
        if arg in ("--bundle", "-b") and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--bundle="):
            return Path(arg.split("=", 1)[1])
    return Path.cwd()


def bound_capabilities(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    capabilities = (config.get("process") or {}).get("capabilities") or {}
    allowed = bounding_set()
    changed = False
    for kind, names in capabilities.items():
        kept = [name for name in names or [] if name in allowed]
        if kept != (names or []):
            capabilities[kind] = kept
            changed = True
    if changed:
        config_path.write_text(json.dumps(config))


def main() -> None:
    argv = sys.argv[1:]
    bundle = bundle_dir(argv)
    if bundle is not None and (bundle / "config.json").is_file():
        bound_capabilities(bundle / "config.json")
    runc = os.environ.get("BOUNDED_RUNC_RUNC") or shutil.which("runc") or "/usr/sbin/runc"
    os.execv(runc, [runc, *argv])


if __name__ == "__main__":
    main()
