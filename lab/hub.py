"""The lab's private VM-to-VM network: a learning Ethernet hub over UDP on 127.0.0.1 (run as a module).

Each VM's second NIC is a qemu ``-netdev dgram`` whose remote end is this hub; every datagram is one
Ethernet frame. The hub learns which port each source MAC lives behind, forwards unicast frames to
that port and floods the rest to every other VM port. Nothing leaves this machine.

    python -m lab.hub --listen PORT --peers PORT1,PORT2,... [--tag TEXT]
"""

from __future__ import annotations

import argparse
import contextlib
import socket

Address = tuple[str, int]


class Hub:
    def __init__(self, listen_port: int, peer_ports: list[int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", listen_port))
        self.peers: list[Address] = [("127.0.0.1", p) for p in peer_ports]
        self.mac_table: dict[bytes, Address] = {}

    def targets(self, frame: bytes, source: Address) -> list[Address]:
        """Where one frame goes: the learned port of its destination, or every other port."""
        if len(frame) < 14:
            return []
        destination, source_mac = frame[0:6], frame[6:12]
        if source not in self.peers:  # only the lab's own VMs take part
            return []
        self.mac_table[source_mac] = source
        learned = self.mac_table.get(destination)
        if learned is not None and not destination[0] & 1:  # unicast to a known port
            return [learned] if learned != source else []
        return [peer for peer in self.peers if peer != source]

    def serve_forever(self) -> None:
        while True:
            frame, source = self.sock.recvfrom(65535)
            for target in self.targets(frame, (source[0], source[1])):
                # A VM that is not up yet: drop the frame, like a cable that is unplugged.
                with contextlib.suppress(OSError):
                    self.sock.sendto(frame, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--peers", required=True, help="comma-separated UDP ports of the VMs' NICs")
    parser.add_argument("--tag", default="", help="free text that identifies this hub in ps")
    args = parser.parse_args()
    Hub(args.listen, [int(p) for p in args.peers.split(",") if p]).serve_forever()


if __name__ == "__main__":
    main()
