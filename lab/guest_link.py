"""Guest to guest: the program a guest's QEMU runs for each connection to 10.0.2.100:22.

    python -m lab.guest_link PEER_FILE

QEMU's user network (`restrict=on`) lets a guest reach nothing but its
`guestfwd` rules; the rule of an OpenZFS lab guest runs this with the
connection on stdin and stdout. It reads "address port" from PEER_FILE (the
loopback forward of the other guest's sshd, written by `Lab.link_guests` since
guests are reused across tests) and joins the two. With no peer the
connection is closed at once. It dials only 127.0.0.x: nothing leaves the
machine.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def peer(peer_file: Path) -> tuple[str, int] | None:
    try:
        address, port = peer_file.read_text().split()
    except (OSError, ValueError):
        return None
    if not ipaddress.ip_address(address).is_loopback:
        return None
    return address, int(port)


def pump(read_fd: int, write: Callable[[bytes], object], done: Callable[[], object]) -> None:
    while data := os.read(read_fd, 1 << 16):
        write(data)
    done()


def main(argv: list[str]) -> int:
    target = peer(Path(argv[1]))
    if target is None:
        return 1
    with open(f"{argv[1]}.log", "a") as log:  # Lab.peer_dials counts these
        log.write(f"{target[0]} {target[1]}\n")
    with socket.create_connection(target, timeout=10) as sock:
        sock.settimeout(None)
        up = threading.Thread(target=pump, daemon=True, args=(
            0, sock.sendall, lambda: sock.shutdown(socket.SHUT_WR)))
        up.start()

        def write_out(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]

        pump(sock.fileno(), write_out, lambda: None)
        up.join(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
