"""Full-backup throughput of esbackup's data paths, against the plain pipes they wrap.

    sudo python bench/backup.py [--size MiB] [--rounds N]

Builds a lab of two nodes (zfs-fuse pools on files, sshd on 127.0.0.x), fills a
dataset with SIZE MiB of random data, and times full backups of it, each round
in a fresh target, best of N rounds:

- baseline: `zfs send | zfs recv` piped on this host (no SSH, no esbackup);
- baseline over OpenSSH: `ssh c1 zfs send | ssh b1 zfs recv`;
- esbackup dataset backup, relay (two paramiko channels through this host);
- esbackup dataset backup, same node (the pipe stays on the node);
- esbackup file backup, relay, compression off and gzip.

Ratios are against the local-pipe baseline in the same run. Every esbackup
figure includes its whole run: snapshot, catalog, manifest, cleanup.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.cli import cli  # noqa: E402
from esbackup.drivers import transport  # noqa: E402
from lab.nodes import Lab  # noqa: E402

MiB = 1024 * 1024


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def esb(catalog: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--catalog", str(catalog), *args])
    if result.exit_code:
        raise SystemExit(f"esbackup {' '.join(args)}: {result.output}")


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fresh_start(source: str, *pools: str) -> None:
    """Untimed: drop what the last run kept, so that every run is a full backup."""
    for pool in pools:
        subprocess.run(["zfs", "destroy", "-r", f"{pool}/backups/ds"], capture_output=True)
    snaps = subprocess.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", source],
                           capture_output=True, text=True).stdout.split()
    for snap in snaps:
        if "@esb-" in snap:
            sh("zfs", "destroy", snap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="MiB of data (default 128)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esb-bench-"))
    try:
        run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    with Lab(work / "lab") as lab:
        c1, b1 = lab.add_node("c1", pool_size="2G"), lab.add_node("b1", pool_size="2G")
        source, mount = lab.create_dataset(c1, "disk0", {})
        with open(mount / "data.bin", "wb") as f:
            for _ in range(args.size):
                f.write(os.urandom(MiB))
        sh("zfs", "snapshot", f"{source}@bench")
        catalog = work / "catalog.db"
        for n, extra in ((c1, ["--backup"]), (b1, ["--backup", "--no-compute"])):
            esb(catalog, "node", "create", n.name, "--address", f"{n.address}:{n.port}",
                "--key", n.key_path, "--host-key", n.host_key, *extra)
        esb(catalog, "storage", "create", "b1", "tank", "--zpool", b1.pool)
        esb(catalog, "storage", "create", "c1", "local", "--zpool", c1.pool)
        esb(catalog, "vm", "create", "vm", "--node", "c1", "--disk", f"1={source}")
        cases = {
            "zfs send | zfs recv (local pipe)": None,
            "OpenSSH: ssh c1 zfs send | ssh b1 zfs recv": None,
            "esbackup dataset, relay": ("dataset", "b1", "tank", "off"),
            "esbackup dataset, same node": ("dataset", "c1", "local", "off"),
            "esbackup file, relay": ("file", "b1", "tank", "off"),
            "esbackup file gzip, relay": ("file", "b1", "tank", "gzip"),
        }
        for i, case in enumerate(cases.values()):
            if case:
                kind, node, storage, compression = case
                esb(catalog, "definition", "create", f"vm/d{i}", "--disk-id", "1", "--type",
                    kind, "--node", node, "--storage", storage, "--schedule", "0 1 * * *",
                    "--retention", "1", *(["--compression", compression] if kind == "file"
                                          else []))
        best: dict[str, float] = {}
        for r in range(args.rounds):
            for i, label in enumerate(cases):
                target = f"{b1.pool}/bench{r}x{i}"
                if label.startswith("zfs send"):
                    def action(target=target):
                        sh("sh", "-c", f"zfs send {source}@bench | zfs recv -u {target}")
                elif label.startswith("OpenSSH"):
                    def action(target=target):
                        ssh_c, ssh_b = lab.ssh_argv(c1), lab.ssh_argv(b1)
                        send = subprocess.Popen([*ssh_c, "zfs", "send", f"{source}@bench"],
                                                stdout=subprocess.PIPE)
                        subprocess.run([*ssh_b, "zfs", "recv", "-u", target],
                                       stdin=send.stdout, check=True)
                        send.wait()
                else:
                    def action(i=i):
                        esb(catalog, "run", f"vm/d{i}")
                seconds = timed(action)
                best[label] = min(best.get(label, seconds), seconds)
                transport.close_all()
                fresh_start(source, c1.pool, b1.pool)
        base = args.size / best["zfs send | zfs recv (local pipe)"]
        print(f"{args.size} MiB of random data, best of {args.rounds} rounds")
        print(f"{'path':46} {'MiB/s':>8} {'ratio':>7}")
        for label, seconds in best.items():
            rate = args.size / seconds
            print(f"{label:46} {rate:8.1f} {rate / base:7.2f}")


if __name__ == "__main__":
    main()
