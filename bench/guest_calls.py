"""Where an OpenZFS integration test's time goes: each kind of call into a TCG guest.

    sudo python bench/guest_calls.py [--rounds N]

Boots one OpenZFS guest (lab/openzfs_guest.py; the image must be cached or is
built) and times, per round, the calls a test makes into it: an OpenSSH
session over the lab's shared connection and a fresh one, a paramiko login
(esbackup's transport) and a command on it, `zfs list`, pool create/destroy,
a zvol's create + `udevadm settle`, 4 MiB written over ssh, a digest of the
zvol, a snapshot's clone and destroy, and 4 MiB down through paramiko with
each cipher. Each figure is the best of the rounds (the machine is shared);
ratios are against a bare `true` over the shared connection.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.drivers.transport import CIPHERS, SSHTransport  # noqa: E402
from lab.nodes import Lab  # noqa: E402


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = os.urandom(4 << 20)
    with tempfile.TemporaryDirectory(prefix="esb-guest-calls-") as tmp, Lab(Path(tmp)) as lab:
        start = time.perf_counter()
        node = lab.add_node("g1", openzfs=True)
        print(f"boot + pool: {time.perf_counter() - start:.1f} s", flush=True)
        run = lambda *argv, **kw: lab.run(node, *argv, **kw)  # noqa: E731
        argv = lab.ssh_argv(node)
        shared = {i for i, a in enumerate(argv) if a.startswith(("ControlMaster", "ControlPath"))}
        fresh = [a for i, a in enumerate(argv) if i not in shared and i + 1 not in shared]
        zvol = f"{node.pool}/bench"

        def paramiko_login(ciphers=CIPHERS) -> SSHTransport:
            transport = SSHTransport(node.node(), ciphers=ciphers)
            transport.run(["true"])
            return transport

        def down(ciphers: tuple[str, ...]) -> None:
            transport = paramiko_login(ciphers)
            try:
                with transport.open_stream(["head", "-c", str(4 << 20), "/dev/zero"]) as stream:
                    while stream.read():
                        pass
            finally:
                transport.close()

        def zvol_cycle() -> None:
            run("zfs", "create", "-V", "32M", zvol)
            run("udevadm", "settle")

        cases: dict[str, Callable[[], object]] = {
            "ssh true (shared connection)": lambda: run("true"),
            "ssh true (fresh connection)": lambda: subprocess.run(
                [*fresh, "true"], check=True, capture_output=True),
            "paramiko login + true": lambda: paramiko_login().close(),
            "zfs list": lambda: run("zfs", "list"),
            "zpool create + destroy (file vdev)": lambda: (
                run("truncate", "-s", "64M", "/tmp/benchpool.img"),
                run("zpool", "create", "benchpool", "/tmp/benchpool.img"),
                run("zpool", "destroy", "benchpool")),
            "zvol create + udevadm settle": zvol_cycle,
            "dd 4 MiB onto the zvol over ssh": lambda: run(
                "dd", f"of=/dev/zvol/{zvol}", "bs=64k", "conv=notrunc,fsync", "status=none",
                input=data),
            "sha256sum of the 32 MiB zvol": lambda: run("sha256sum", f"/dev/zvol/{zvol}"),
            "udevadm settle (idle)": lambda: run("udevadm", "settle"),
            "snapshot + clone + settle + destroy": lambda: (
                run("zfs", "snapshot", f"{zvol}@s"), run("zfs", "clone", f"{zvol}@s",
                                                          f"{node.pool}/c"),
                run("udevadm", "settle"), run("zfs", "destroy", "-R", f"{zvol}@s")),
            "zfs destroy zvol": lambda: run("zfs", "destroy", "-r", zvol),
            **{f"4 MiB down, {c}": (lambda c=c: down((c,))) for c in (
                "aes128-gcm@openssh.com", "aes128-ctr", "chacha20-poly1305@openssh.com")},
        }
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, fn in cases.items():
                try:
                    seconds = timed(fn)
                except Exception as exc:  # noqa: BLE001 - a bench reports and goes on
                    print(f"{name}: {exc}", flush=True)
                    continue
                best[name] = min(best.get(name, seconds), seconds)
        base = best["ssh true (shared connection)"]
        for name, seconds in best.items():
            print(f"{name:40s} {seconds:7.3f} s  {seconds / base:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
