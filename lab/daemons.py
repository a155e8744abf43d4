"""Private container daemons for the module tests and benchmarks: Debian's dockerd and pouchd.

Each daemon gets its own state directory, socket, pidfile and bridge, so it never touches a
system daemon and several can run side by side. ``stop()`` removes what ``start()`` created:
containers, the daemon and its containerd, mounts under the state directory, the bridge.

    with DockerDaemon(registry="127.0.0.1:5000") as daemon:
        daemon.host  # "unix:///tmp/pa-docker-xxxx/docker.sock"
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

DOCKERD = "/usr/sbin/dockerd"
# pouchd writes its containerd's config with this debug socket, shared by every containerd on the host.
CONTAINERD_DEBUG_SOCKET = "/run/containerd/debug.sock"


class DaemonError(RuntimeError):
    """A daemon did not start; the message names its log file."""


def dockerd_missing_reason() -> str | None:
    if not Path(DOCKERD).is_file():
        return f"dockerd not available: install Debian's docker.io package ({DOCKERD} is missing)"
    return None


def _unix_get(socket_path: Path, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: d\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _unix_request(socket_path: Path, method: str, path: str) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(str(socket_path))
        sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: d\r\nContent-Length: 0\r\n\r\n".encode())
        data = sock.recv(65536)
    return int(data.split()[1])


def _free_subnet() -> str:
    """A 10.213.N.0/24 not used by any interface here, for this daemon's bridge."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for third in range(10, 250):
        if f"10.213.{third}." not in used:
            return f"10.213.{third}"
    raise DaemonError("no free 10.213.N.0/24 subnet for a private bridge")


def _unmount_under(root: Path) -> None:
    """Unmount everything the daemon left mounted under root (deepest first)."""
    prefix = str(root.resolve())
    for _attempt in range(3):
        mounts = []
        with open("/proc/self/mounts") as handle:
            for line in handle:
                target = line.split()[1].replace("\\040", " ")
                if target == prefix or target.startswith(prefix + "/"):
                    mounts.append(target)
        if not mounts:
            return
        for target in sorted(mounts, key=len, reverse=True):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)


class PrivateDaemon:
    kind = ""
    socket_name = ""

    def __init__(
        self, state_dir: Path | None = None, registry: str | None = None, keep_state: bool = False
    ) -> None:
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix=f"pa-{self.kind}-", dir="/tmp"))
        self.registry = registry
        self.keep_state = keep_state
        self.socket = self.state_dir / self.socket_name
        self.pidfile = self.state_dir / f"{self.kind}.pid"
        self.log = self.state_dir / f"{self.kind}.log"
        self.bridge = f"pa{self.kind[0]}{os.getpid() % 100000}{abs(hash(str(self.state_dir))) % 100:02d}"[:15]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> PrivateDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- to implement ------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle ---------------------------------------------------------------------------
    def _create_bridge(self) -> None:
        subnet = _free_subnet()
        self.bridge_address = f"{subnet}.1/24"
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", self.bridge_address, "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def start(self, timeout: float = 60.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._create_bridge()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise DaemonError(
                    f"{self.kind} exited with {self.process.returncode}; see {self.log}:\n{tail}"
                )
            try:
                if _unix_get(self.socket, "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DaemonError(f"{self.kind} did not answer /_ping in {timeout:.0f}s; see {self.log}")

    def version(self) -> dict[str, Any]:
        return json.loads(_unix_get(self.socket, "/v1.24/version")[1])

    def remove_all_containers(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            status, body = _unix_get(self.socket, "/v1.24/containers/json?all=1")
            if status != 200:
                return
            for item in json.loads(body):
                _unix_request(self.socket, "DELETE", f"/v1.24/containers/{item['Id']}?force=1&v=1")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.remove_all_containers()
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._kill_leftovers()
        self._stop_helpers()
        _unmount_under(self.state_dir)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        if not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        self._kill_leftovers_except(None)

    def _stop_helpers(self) -> None:
        """Stop side processes (lxcfs) once the daemon and its containers are gone."""

    def _kill_leftovers_except(self, spared: int | None) -> None:
        """Container shims and a spawned containerd outlive the daemon when it is killed: end the
        processes whose command line names this daemon's state directory."""
        marker = str(self.state_dir).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) in (os.getpid(), spared):
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)


class DockerDaemon(PrivateDaemon):
    """Debian's dockerd (API 1.41, accepts 1.24) with its own containerd, bridge and state."""

    kind = "docker"
    socket_name = "docker.sock"

    def command(self) -> list[str]:
        return [
            DOCKERD,
            f"--data-root={self.state_dir / 'data'}",
            f"--exec-root={self.state_dir / 'exec'}",
            f"--host={self.host}",
            f"--pidfile={self.pidfile}",
            f"--bridge={self.bridge}",
            # No iptables/NAT: nothing leaves the machine, published ports use docker-proxy on the host.
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            # Root here lacks CAP_SYS_RESOURCE: a negative OOM score adjustment would fail.
            "--oom-score-adjust=0",
            "--storage-driver=overlay2",
            # A second runtime name lets the tests change `runtime` on a container.
            "--add-runtime=runc2=/usr/sbin/runc",
        ]


class PouchDaemon(PrivateDaemon):
    """pouchd with its own containerd, lxcfs, bridge, namespace and home.

    ``trust_bundle``: the CA bundle pouchd verifies registries with (``SSL_CERT_FILE``; the 1.3.0
    release pulls over HTTPS only). ``insecure_registries``: plain-HTTP registries, for builds that
    have the setting (the caller checks: the release silently ignores it).
    """

    kind = "pouch"
    socket_name = "pouchd.sock"

    def __init__(
        self,
        bin_dir: Path,
        state_dir: Path | None = None,
        registry: str | None = None,
        trust_bundle: Path | None = None,
        insecure_registries: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(state_dir=state_dir, registry=registry, **kwargs)
        self.bin_dir = bin_dir
        self.trust_bundle = trust_bundle
        self.insecure_registries = list(insecure_registries or [])
        self.namespace = f"pouch-{self.bridge}"
        self.lxcfs_home = self.state_dir / "lxc" / "lxcfs"
        self.lxcfs: subprocess.Popen[bytes] | None = None
        self._had_docker_user_jump = False

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        if self.trust_bundle:
            env["SSL_CERT_FILE"] = str(self.trust_bundle)
        return env

    def containerd_wrapper(self) -> Path:
        """A containerd launcher that moves the debug socket pouchd's generated config names into this
        daemon's state dir, so several private pouchds (and a host containerd) can run side by side."""
        binary = self.bin_dir / "containerd"
        containerd = str(binary) if binary.exists() else (shutil.which("containerd") or "containerd")
        wrapper = self.state_dir / "containerd-wrapper"
        debug = self.state_dir / "run" / "containerd-debug.sock"
        wrapper.write_text(
            "#!/bin/sh\n"
            "# pouchd runs: containerd --config FILE ...; FILE is rewritten at every pouchd start.\n"
            f'[ "$1" = --config ] && sed -i "s#{CONTAINERD_DEBUG_SOCKET}#{debug}#" "$2"\n'
            f'exec {containerd} "$@"\n'
        )
        wrapper.chmod(0o755)
        return wrapper

    def _create_bridge(self) -> None:
        # pouchd creates (and keeps) its bridge itself; only pick a free subnet for it.
        self.subnet = _free_subnet()
        self.bridge_address = f"{self.subnet}.1/24"
        self._had_docker_user_jump = _iptables_has_forward_jump()
        self._start_lxcfs()

    def _start_lxcfs(self) -> None:
        self.lxcfs_home.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "lxcfs.log").open("ab") as log:
            self.lxcfs = subprocess.Popen(
                # Its own pidfile: lxcfs locks /run/lxcfs.pid by default, so a second instance would exit.
                ["lxcfs", "-p", str(self.state_dir / "lxcfs.pid"), str(self.lxcfs_home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if f" {self.lxcfs_home} " in Path("/proc/self/mountinfo").read_text():
                return
            time.sleep(0.1)
        raise DaemonError(f"lxcfs did not mount {self.lxcfs_home}; see {self.state_dir / 'lxcfs.log'}")

    def config(self) -> dict[str, Any]:
        run = self.state_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "home-dir": str(self.state_dir / "home"),
            "listen": [self.host],
            "containerd": str(run / "containerd.sock"),
            "containerd-path": str(self.containerd_wrapper()),
            "pidfile": str(self.pidfile),
            "default-namespace": self.namespace,
            "debug": False,
            "default-runtime": "runc",
            # A second runtime name lets the tests change `runtime` on a container.
            "add-runtime": {"runc2": {"path": "runc"}},
            "snapshotter": "overlayfs",
            "cgroup-driver": "cgroupfs",
            "enable-lxcfs": True,
            "lxcfs-home": str(self.lxcfs_home),
            "enable-cri": False,
            "network-config": {
                "exec-root-dir": str(run / "net"),
                "bridge-config": {
                    "bridge-name": self.bridge,
                    "bip": self.bridge_address,
                    "default-gateway": f"{self.subnet}.1",
                    "fixed-cidr": f"{self.subnet}.0/24",
                    "mtu": 1500,
                    # Every boolean explicitly: pouchd resets unset booleans (NOTES Q4).
                    "iptables": False,
                    "ipforward": False,
                    "userland-proxy": False,
                },
            },
        }
        if self.insecure_registries:
            config["insecure-registries"] = list(self.insecure_registries)
        return config

    def command(self) -> list[str]:
        config_file = self.state_dir / "config.json"
        config_file.write_text(json.dumps(self.config(), indent=2))
        # --config-file, never -c (that is the containerd address); --oom-score-adj=0 because
        # 0 in the file counts as unset and root here cannot lower OOM scores.
        return [str(self.bin_dir / "pouchd"), f"--config-file={config_file}", "--oom-score-adj=0"]

    def _stop_helpers(self) -> None:
        if self.lxcfs is not None and self.lxcfs.poll() is None:
            self.lxcfs.terminate()  # SIGTERM unmounts; SIGKILL would leave a dead FUSE mount
            try:
                self.lxcfs.wait(10)
            except subprocess.TimeoutExpired:
                subprocess.run(["fusermount3", "-u", str(self.lxcfs_home)], capture_output=True)

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        shutil.rmtree(f"/run/{self.namespace}", ignore_errors=True)
        if not self._had_docker_user_jump:
            # libnetwork adds this jump even with iptables off (NOTES N3); leave FORWARD as found.
            subprocess.run(["iptables", "-D", "FORWARD", "-j", "DOCKER-USER"], capture_output=True)

    def _kill_leftovers(self) -> None:
        # Keep lxcfs alive until the containers using it are gone; stop() ends it afterwards.
        lxcfs, self.lxcfs = self.lxcfs, None
        try:
            super()._kill_leftovers_except(lxcfs.pid if lxcfs else None)
        finally:
            self.lxcfs = lxcfs


def _iptables_has_forward_jump() -> bool:
    result = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    return "-j DOCKER-USER" in result.stdout
