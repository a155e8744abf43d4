"""The private network's hub, for real: UDP sockets on 127.0.0.1 standing in for two VM NICs."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.hub import Hub
from lab.procs import free_udp_port

ROOT = Path(__file__).resolve().parents[2]
MAC_A = bytes.fromhex("525400770011")
MAC_B = bytes.fromhex("525400770012")
BROADCAST = b"\xff" * 6


def frame(dst: bytes, src: bytes, payload: bytes = b"x" * 50) -> bytes:
    return dst + src + b"\x08\x00" + payload


def test_learning_and_flooding() -> None:
    hub = Hub(free_udp_port(), [1001, 1002, 1003])
    a, b, c = ("127.0.0.1", 1001), ("127.0.0.1", 1002), ("127.0.0.1", 1003)
    try:
        # Unknown destination: flooded to every other port.
        assert hub.targets(frame(MAC_B, MAC_A), a) == [b, c]
        # B answers A: A was learned, so it goes to A only.
        assert hub.targets(frame(MAC_A, MAC_B), b) == [a]
        assert hub.targets(frame(MAC_B, MAC_A), a) == [b]
        # Broadcast always floods; runt frames and strangers are dropped.
        assert hub.targets(frame(BROADCAST, MAC_A), a) == [b, c]
        assert hub.targets(b"short", a) == []
        assert hub.targets(frame(MAC_B, MAC_A), ("127.0.0.1", 9999)) == []
    finally:
        hub.sock.close()


@pytest.fixture
def nic_pair():
    socks = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        socks.append(sock)
    yield socks
    for sock in socks:
        sock.close()


def test_hub_process_carries_frames_between_ports(nic_pair) -> None:
    nic_a, nic_b = nic_pair
    hub_port = free_udp_port()
    peers = f"{nic_a.getsockname()[1]},{nic_b.getsockname()[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.hub", "--listen", str(hub_port), "--peers", peers], cwd=ROOT
    )
    try:
        time.sleep(0.5)
        nic_a.sendto(frame(BROADCAST, MAC_A, b"hello"), ("127.0.0.1", hub_port))
        data, _ = nic_b.recvfrom(2048)
        assert data.endswith(b"hello")
        nic_b.sendto(frame(MAC_A, MAC_B, b"reply"), ("127.0.0.1", hub_port))
        data, _ = nic_a.recvfrom(2048)
        assert data.endswith(b"reply")
    finally:
        proc.terminate()
        proc.wait(5)
