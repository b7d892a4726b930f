"""Throughput of esbackup's SSH transport over loopback, against OpenSSH and a local pipe.

    sudo python bench/transfer.py [--size MiB] [--rounds N]

Starts one lab node (sshd on 127.0.0.x, no pool), then moves SIZE MiB each way:
down = remote `head -c SIZE /dev/zero` read with Stream.read(), up = Stream.write()
into remote `cat > /dev/null`. Baselines in the same run: OpenSSH's `ssh` client
(its default cipher) and the same commands through a local pipe (LocalTransport).
paramiko is measured with its defaults (2 MiB window, 32 KiB packets, aes128-ctr),
with other ciphers, and with esbackup's first cipher at other window and packet
sizes. All contenders run once per
round, rounds repeat (so that load from elsewhere on the machine hits them
alike), and each figure is the best run; ratios are against OpenSSH in the same
direction.

The window and packet size we advertise only govern data the node sends to us
(down: `zfs send`); data we send (up: `zfs recv`) is paced by the window sshd
advertises, so there only the cipher can make a difference.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.domain.models import Node  # noqa: E402
from esbackup.drivers.transport import (  # noqa: E402
    CHUNK,
    CIPHERS,
    MAX_PACKET_SIZE,
    WINDOW_SIZE,
    LocalTransport,
    SSHTransport,
    Transport,
)
from lab.nodes import Lab, LabNode  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
PARAMIKO_DEFAULTS = (2 * MiB, 32 * KiB, "aes128-ctr")
OTHER_CIPHERS = ["aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
SHAPES = [(2 * MiB, 256 * KiB), (8 * MiB, 32 * KiB), (8 * MiB, 256 * KiB), (16 * MiB, 256 * KiB),
          (32 * MiB, 32 * KiB), (32 * MiB, 256 * KiB), (64 * MiB, 256 * KiB)]


def seconds(move: Callable[[], None]) -> float:
    start = time.perf_counter()
    move()
    return time.perf_counter() - start


def down(transport: Transport, size: int) -> Callable[[], None]:
    def move() -> None:
        with transport.open_stream(["head", "-c", str(size), "/dev/zero"]) as stream:
            got = sum(len(chunk) for chunk in iter(lambda: stream.read(CHUNK), b""))
            stream.wait()
        assert got == size, got
    return move


def up(transport: Transport, size: int) -> Callable[[], None]:
    block = os.urandom(CHUNK)

    def move() -> None:
        with transport.open_stream(["sh", "-c", "cat > /dev/null"]) as stream:
            for _ in range(size // CHUNK):
                stream.write(block)
            stream.wait()
    return move


def openssh_down(ssh: list[str], size: int) -> Callable[[], None]:
    def move() -> None:
        proc = subprocess.Popen([*ssh, f"head -c {size} /dev/zero"], stdout=subprocess.PIPE)
        got = sum(len(chunk) for chunk in iter(lambda: os.read(proc.stdout.fileno(), CHUNK), b""))
        assert proc.wait() == 0 and got == size
        proc.stdout.close()
    return move


def openssh_up(ssh: list[str], size: int) -> Callable[[], None]:
    block = os.urandom(CHUNK)

    def move() -> None:
        proc = subprocess.Popen([*ssh, "cat > /dev/null"], stdin=subprocess.PIPE)
        for _ in range(size // CHUNK):
            proc.stdin.write(block)
        proc.stdin.close()
        assert proc.wait() == 0
    return move


def paramiko_transport(lab_node: LabNode, window: int, packet: int,
                       cipher: str) -> tuple[str, SSHTransport]:
    """A connected transport of one configuration, and its label."""
    transport = SSHTransport(lab_node.node(), window_size=window, max_packet_size=packet,
                             ciphers=(cipher,))
    transport.run(["true"])
    negotiated = transport._connection().local_cipher
    label = f"paramiko window {window // MiB} MiB, packet {packet // KiB} KiB, {negotiated}"
    return label, transport


Movers = tuple[Callable[[], None], Callable[[], None]]


def contenders(lab: Lab, lab_node: LabNode, size: int) -> dict[str, Movers]:
    """label -> (down mover, up mover), the OpenSSH baseline first."""
    ssh = lab.ssh_argv(lab_node)
    local = LocalTransport(Node(name="local", address="local"))
    movers = {"OpenSSH ssh client (its default cipher)": (openssh_down(ssh, size),
                                                          openssh_up(ssh, size)),
              "local pipe (LocalTransport)": (down(local, size), up(local, size))}
    window, packet, _ = PARAMIKO_DEFAULTS
    ciphers = [(window, packet, cipher) for cipher in OTHER_CIPHERS]
    shapes = [(window, packet, CIPHERS[0]) for window, packet in SHAPES]
    chosen = (WINDOW_SIZE, MAX_PACKET_SIZE, CIPHERS[0])
    for window, packet, cipher in dict.fromkeys([PARAMIKO_DEFAULTS, *ciphers, *shapes, chosen]):
        label, transport = paramiko_transport(lab_node, window, packet, cipher)
        movers[label] = (down(transport, size), up(transport, size))
    return movers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="MiB moved per run and direction")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds over all contenders (the best run counts)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the lab is taken down
    size = args.size * MiB
    with tempfile.TemporaryDirectory(prefix="esb-bench-") as tmp, \
            Lab(Path(tmp) / "lab", zfs=False) as lab:
        movers = contenders(lab, lab.add_node("bench", pool_size=None), size)
        best = {label: [float("inf"), float("inf")] for label in movers}
        for _ in range(args.rounds):  # interleaved, so that load from elsewhere hits all alike
            for label, pair in movers.items():
                best[label] = [min(old, seconds(move))
                               for old, move in zip(best[label], pair, strict=True)]
    report(args, {label: (size / d / 1e6, size / u / 1e6) for label, (d, u) in best.items()})


def report(args: argparse.Namespace, rates: dict[str, tuple[float, float]]) -> None:
    base = next(iter(rates.values()))
    print(f"{args.size} MiB each way, best of {args.rounds} interleaved rounds; "
          "ratios against OpenSSH")
    print(f"esbackup uses: window {WINDOW_SIZE // MiB} MiB, packet {MAX_PACKET_SIZE // KiB} KiB, "
          f"ciphers {', '.join(CIPHERS)}")
    for label, (rate_down, rate_up) in rates.items():
        print(f"{label:<52} down {rate_down:6.1f} MB/s ({rate_down / base[0]:4.2f}x)"
              f"   up {rate_up:6.1f} MB/s ({rate_up / base[1]:4.2f}x)")


if __name__ == "__main__":
    main()
