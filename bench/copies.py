"""Full-copy throughput of `esbackup copy run` against the plain pipe between two backup nodes
(named copies.py: a bench/copy.py would shadow the standard library's `copy` module).

    sudo python bench/copies.py [--size MiB] [--rounds N]

Builds a lab of three nodes (zfs-fuse pools on files, sshd on 127.0.0.x): c1
with a dataset of SIZE MiB of random data, backup nodes b1 and b2. One backup
of it is made on b1 (untimed). Then, interleaved each round, in a fresh
target on b2:

- openssh: the plain two-leg pipe `ssh b1 zfs send | ssh b2 zfs recv` of b1's
  backup snapshot;
- copy: one whole `esbackup copy run vm/daily/b2` process (start-up, catalog,
  locks, the relayed stream, size, manifest on b2).

Prints each one's best and median MiB/s and the median of the per-round
ratios copy / openssh. Issue 20's goal: >= 0.95 for full copies.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backup import MiB, esb, openssh_pipe, timed  # noqa: E402
from lab.nodes import Lab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def esbackup_process(catalog: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(catalog), *args],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"esbackup {' '.join(args)}: {proc.stdout}{proc.stderr}")


def fresh_copy_node(catalog: Path, pool: str) -> None:
    """Untimed: b2 holds nothing again, and the catalog forgets its copies."""
    subprocess.run(["zfs", "destroy", "-r", f"{pool}/backups/ds"], capture_output=True)
    subprocess.run(["zfs", "destroy", "-r", f"{pool}/bench"], capture_output=True)
    with sqlite3.connect(catalog) as conn:
        conn.execute("DELETE FROM backup_copies")
    conn.close()


def run(work: Path, size: int, rounds: int) -> None:
    with Lab(work / "lab") as lab:
        c1 = lab.add_node("c1", pool_size="2G")
        b1, b2 = lab.add_node("b1", pool_size="2G"), lab.add_node("b2", pool_size="2G")
        source, mount = lab.create_dataset(c1, "disk0", {})
        with open(mount / "data.bin", "wb") as f:
            for _ in range(size):
                f.write(os.urandom(MiB))
        catalog = work / "catalog.db"
        for n, extra in ((c1, []), (b1, ["--backup", "--no-compute"]),
                         (b2, ["--backup", "--no-compute"])):
            esb(catalog, "node", "create", n.name, "--address", f"{n.address}:{n.port}",
                "--key", n.key_path, "--host-key", n.host_key, *extra)
        esb(catalog, "storage", "create", "b1", "tank", "--zpool", b1.pool)
        esb(catalog, "storage", "create", "b2", "vault", "--zpool", b2.pool)
        esb(catalog, "vm", "create", "vm", "--node", "c1", "--disk", f"1={source}")
        esb(catalog, "definition", "create", "vm/daily", "--disk-id", "1", "--type", "dataset",
            "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *")
        esb(catalog, "copy", "create", "vm/daily", "--node", "b2", "--storage", "vault",
            "--schedule", "0 3 * * *")
        esbackup_process(catalog, "backup", "now", "vm/daily")
        snap = subprocess.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r",
                               f"{b1.pool}/backups/ds"], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        ssh_b1, ssh_b2 = lab.ssh_argv(b1), lab.ssh_argv(b2)
        actions = {
            "openssh": lambda: openssh_pipe([*ssh_b1, "zfs", "send", snap],
                                            [*ssh_b2, "zfs", "recv", "-u", f"{b2.pool}/bench"]),
            "copy": lambda: esbackup_process(catalog, "copy", "run", "vm/daily/b2"),
        }
        times: dict[str, list[float]] = {key: [] for key in actions}
        for _ in range(rounds):
            for key, action in actions.items():
                fresh_copy_node(catalog, b2.pool)
                times[key].append(timed(action))
        fresh_copy_node(catalog, b2.pool)
        report(size, rounds, times)


def report(size: int, rounds: int, times: dict[str, list[float]]) -> None:
    print(f"{size} MiB of random data, {rounds} interleaved rounds, full copies b1 -> b2")
    for key, label in (("openssh", "ssh b1 zfs send | ssh b2 zfs recv"),
                       ("copy", "esbackup copy run (relay)")):
        print(f"{label:36} best {size / min(times[key]):7.1f} MiB/s, median "
              f"{size / statistics.median(times[key]):7.1f} MiB/s")
    ratios = [b / s for s, b in zip(times["copy"], times["openssh"], strict=True)]
    print(f"copy / OpenSSH pipe: median {statistics.median(ratios):.2f}, rounds "
          f"{' '.join(f'{r:.2f}' for r in ratios)} (issue 20 goal >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="MiB of data (default 300)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esb-bench-copy-"))
    try:
        run(work, args.size, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
