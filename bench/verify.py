"""Read-back speed of `backup verify`, against the plain commands it wraps.

    sudo python bench/verify.py [--size MiB] [--rounds N]

Builds a lab of two nodes, backs up SIZE MiB of random data once as a dataset
backup and once as a file backup (both on b1), then times, best of N rounds:

- baseline: `zfs send SNAP > /dev/null` on this host (no SSH, no esbackup);
- baseline: `sha256sum FILE` on this host;
- esbackup verify of the dataset backup (send into nothing over SSH, then
  `zpool status`), and of the file backup (hash on the node over SSH).

Ratios are of each esbackup figure against its own baseline in the same run;
every esbackup figure includes the whole command: catalog, locks, SSH, record.
"""
from __future__ import annotations

import argparse
import json
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


def esb(catalog: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--catalog", str(catalog), *args])
    if result.exit_code:
        raise SystemExit(f"esbackup {' '.join(args)}: {result.output}")
    return result.stdout


def best_of(rounds: int, action) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
        transport.close_all()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="MiB of data (default 128)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esb-bench-verify-"))
    try:
        with Lab(work / "lab") as lab:
            run(lab, work / "catalog.db", args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(lab: Lab, catalog: Path, args: argparse.Namespace) -> None:
    c1, b1 = lab.add_node("c1", pool_size="2G"), lab.add_node("b1", pool_size="2G")
    source, mount = lab.create_dataset(c1, "disk0", {})
    with open(mount / "data.bin", "wb") as f:
        for _ in range(args.size):
            f.write(os.urandom(MiB))
    for n, extra in ((c1, []), (b1, ["--backup", "--no-compute"])):
        esb(catalog, "node", "create", n.name, "--address", f"{n.address}:{n.port}",
            "--key", n.key_path, "--host-key", n.host_key, *extra)
    esb(catalog, "storage", "create", "b1", "tank", "--zpool", b1.pool)
    esb(catalog, "vm", "create", "vm", "--node", "c1", "--disk", f"1={source}")
    for kind in ("dataset", "file"):
        esb(catalog, "definition", "create", f"vm/{kind}", "--disk-id", "1", "--type", kind,
            "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *", "--retention", "1")
        esb(catalog, "run", f"vm/{kind}")
    rows = {b["definition"]: b for b in json.loads(esb(catalog, "backup", "list", "-f", "json"))}
    snap, path = rows["dataset"]["location"], rows["file"]["location"]
    figures = {
        "zfs send SNAP > /dev/null (local)": best_of(args.rounds, lambda: subprocess.run(
            ["zfs", "send", snap], stdout=subprocess.DEVNULL, check=True)),
        "esbackup verify, dataset": best_of(args.rounds, lambda: esb(
            catalog, "backup", "verify", f"vm/{rows['dataset']['name']}")),
        "sha256sum FILE (local)": best_of(args.rounds, lambda: subprocess.run(
            ["sha256sum", path], check=True, capture_output=True)),
        "esbackup verify, file": best_of(args.rounds, lambda: esb(
            catalog, "backup", "verify", f"vm/{rows['file']['name']}")),
    }
    print(f"{args.size} MiB of random data, best of {args.rounds} rounds")
    print(f"{'read-back':40} {'MiB/s':>8} {'ratio':>7}")
    base = None
    for label, seconds in figures.items():
        rate = args.size / seconds
        base = rate if "(local)" in label else base
        print(f"{label:40} {rate:8.1f} {rate / base:7.2f}")


if __name__ == "__main__":
    main()
