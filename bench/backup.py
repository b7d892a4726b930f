"""Full-backup throughput of esbackup's data paths, against the plain pipes they wrap.

    sudo python bench/backup.py [--size MiB] [--rounds N] [--cases relay,...]

Builds a lab of two nodes (zfs-fuse pools on files, sshd on 127.0.0.x), fills a
dataset with SIZE MiB of random data, and times full backups of it, each round
in a fresh target; rounds interleave the cases, so that load from elsewhere on
this shared machine hits them alike. The cases (all by default):

- local: `zfs send | zfs recv` piped on this host (no SSH, no esbackup);
- openssh: the OpenSSH two-leg pipe `ssh c1 zfs send | ssh b1 zfs recv`;
- relay: esbackup dataset backup, relay (source and backup node differ, the
  stream passes through this host);
- same-node: esbackup dataset backup where the pipe stays on the node;
- file, gzip: esbackup file backup, relay, compression off and gzip.

Every esbackup figure is a whole `esbackup backup now` process: start-up,
snapshot, catalog, manifest, cleanup. Each case prints its best and median
MiB/s and ratios against the local pipe and the OpenSSH pipe (median of the
per-round ratios, rounds pair each case with the pipes of the same round).
Issue 10's target: relay >= 0.95x openssh.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.cli import cli  # noqa: E402
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


CASES = {  # key: (label, esbackup definition (type, node, storage, compression) or None)
    "local": ("zfs send | zfs recv (local pipe)", None),
    "openssh": ("OpenSSH: ssh c1 zfs send | ssh b1 zfs recv", None),
    "relay": ("esbackup dataset, relay", ("dataset", "b1", "tank", "off")),
    "same-node": ("esbackup dataset, same node", ("dataset", "c1", "local", "off")),
    "file": ("esbackup file, relay", ("file", "b1", "tank", "off")),
    "gzip": ("esbackup file gzip, relay", ("file", "b1", "tank", "gzip")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400, help="MiB of data (default 400)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (default all)")
    args = parser.parse_args()
    args.cases = [case.strip() for case in args.cases.split(",")]
    unknown = [case for case in args.cases if case not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}")
    work = Path(tempfile.mkdtemp(prefix="esb-bench-"))
    try:
        run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def esbackup_now(catalog: Path, ref: str) -> None:
    """One whole `esbackup backup now` process, as cron or a user would start it."""
    proc = subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(catalog),
                           "backup", "now", ref], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode:
        raise SystemExit(f"esbackup backup now {ref}: {proc.stdout}{proc.stderr}")


def run(work: Path, args: argparse.Namespace) -> None:
    with Lab(work / "lab") as lab:
        c1, b1 = lab.add_node("c1", pool_size="3G"), lab.add_node("b1", pool_size="3G")
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
        for key in args.cases:
            definition = CASES[key][1]
            if definition:
                kind, node, storage, compression = definition
                esb(catalog, "definition", "create", f"vm/{key}", "--disk-id", "1", "--type",
                    kind, "--node", node, "--storage", storage, "--schedule", "0 1 * * *",
                    "--retention", "1", *(["--compression", compression] if kind == "file"
                                          else []))
        target = f"{b1.pool}/bench"
        ssh_c, ssh_b = lab.ssh_argv(c1), lab.ssh_argv(b1)
        actions = {
            "local": lambda: sh("sh", "-c", f"zfs send {source}@bench | zfs recv -u {target}"),
            "openssh": lambda: openssh_pipe([*ssh_c, "zfs", "send", f"{source}@bench"],
                                            [*ssh_b, "zfs", "recv", "-u", target]),
        }
        times: dict[str, list[float]] = {key: [] for key in args.cases}
        for _ in range(args.rounds):
            for key in args.cases:
                action = actions.get(key) or (lambda key=key: esbackup_now(catalog, f"vm/{key}"))
                times[key].append(timed(action))
                subprocess.run(["zfs", "destroy", "-r", target], capture_output=True)
                fresh_start(source, c1.pool, b1.pool)
        report(args, times)


def openssh_pipe(send: list[str], receive: list[str]) -> None:
    sender = subprocess.Popen(send, stdout=subprocess.PIPE)
    subprocess.run(receive, stdin=sender.stdout, check=True)
    sender.stdout.close()
    if sender.wait():
        raise SystemExit(f"{' '.join(send)} failed")


def report(args: argparse.Namespace, times: dict[str, list[float]]) -> None:
    print(f"{args.size} MiB of random data, {args.rounds} interleaved rounds; ratios: the "
          "median of the per-round ratios (best: best rate over best rate)")
    bases = [key for key in ("local", "openssh") if key in times]
    header = "".join(f" {'vs ' + key:>17}" for key in bases)
    print(f"{'path':46} {'best MiB/s':>10} {'median':>7}{header}")
    for key, seconds in times.items():
        line = (f"{CASES[key][0]:46} {args.size / min(seconds):10.1f} "
                f"{args.size / statistics.median(seconds):7.1f}")
        for base in bases:
            ratios = [b / s for s, b in zip(seconds, times[base], strict=True)]
            best = min(times[base]) / min(seconds)
            line += f" {statistics.median(ratios):7.2f} (best {best:4.2f})"
        print(line)
    if "relay" in times and "openssh" in times:
        ratios = [b / s for s, b in zip(times["relay"], times["openssh"], strict=True)]
        print(f"relay / OpenSSH pipe: median {statistics.median(ratios):.2f}, best round "
              f"{max(ratios):.2f}, rounds {' '.join(f'{r:.2f}' for r in ratios)} "
              "(issue 10 target >= 0.95)")


if __name__ == "__main__":
    main()
