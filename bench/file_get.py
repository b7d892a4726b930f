"""`backup get` of one file against a plain `ssh node cat FILE`, in the same run.

    sudo python bench/file_get.py [--rounds N]

Builds a lab of two nodes (zfs-fuse pools on files, sshd on 127.0.0.x), a
dataset disk holding a 4 KiB and a 64 MiB file of random data and one dataset
backup of it, then times, rounds interleaved, for each file: a whole
`esbackup backup get` process (start-up, catalog, the one ssh call that
clones the snapshot read-only, tars the file and destroys the clone, the safe
unpacking here) against `ssh b1 cat FILE` of the same bytes in a mounted
dataset of the backup node (no clone: the bare read). Prints the best of each
and the ratio; issue 21's goal: the 4 KiB get's fixed cost under 2x the ssh read.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fixed_cost import ENV, ROOT, esb, timed  # noqa: E402
from lab.nodes import Lab  # noqa: E402

SIZES = {"4 KiB": 4096, "64 MiB": 64 << 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esb-file-get-"))
    try:
        run(work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rounds: int) -> None:
    with Lab(work / "lab") as lab:
        c1, b1 = lab.add_node("c1"), lab.add_node("b1")
        files = {f"f{size}.bin": os.urandom(size) for size in SIZES.values()}
        dataset, _ = lab.create_dataset(c1, "disk", files)
        _, bare_dir = lab.create_dataset(b1, "bare", files)  # the same bytes, read bare
        catalog = work / "catalog.db"
        for n, extra in ((c1, []), (b1, ["--backup", "--no-compute"])):
            esb(catalog, "node", "create", n.name, "--address", f"{n.address}:{n.port}",
                "--key", n.key_path, "--host-key", n.host_key, *extra)
        esb(catalog, "storage", "create", "b1", "tank", "--zpool", b1.pool)
        esb(catalog, "vm", "create", "vm", "--node", "c1", "--disk", f"1={dataset}")
        esb(catalog, "definition", "create", "vm/d", "--disk-id", "1", "--type", "dataset",
            "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *", "--retention", "0")
        esb(catalog, "backup", "now", "vm/d")
        listing = subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(catalog),
                                  "backup", "list", "-f", "plain"], capture_output=True,
                                 text=True, env={**ENV, "PYTHONPATH": str(ROOT)},
                                 check=True).stdout.split()
        ref = f"vm/{next(w for w in listing if w.startswith('d-'))}"
        ssh = lab.ssh_argv(b1)
        best: dict[str, float] = {}
        for r in range(rounds):
            for label, size in SIZES.items():
                name = f"f{size}.bin"
                to = work / f"to-{r}-{size}"
                to.mkdir()
                figures = {
                    f"get {label}": timed(lambda n=name, t=to: esb(
                        catalog, "backup", "get", ref, f"/{n}", "--to", str(t))),
                    f"ssh {label}": timed(lambda n=name: subprocess.run(
                        [*ssh, "cat", str(bare_dir / n)], check=True,
                        stdout=subprocess.DEVNULL)),
                }
                if (to / name).read_bytes() != files[name]:
                    raise SystemExit(f"backup get of {name}: not the same bytes")
                for key, seconds in figures.items():
                    best[key] = min(best.get(key, seconds), seconds)
        startup = min(timed(lambda: esb(catalog, "--version")) for _ in range(rounds))
        print(f"best of {rounds} rounds")
        for label in SIZES:
            get, bare = best[f"get {label}"], best[f"ssh {label}"]
            print(f"{label:>6}: backup get {get:6.3f} s   ssh cat {bare:6.3f} s   "
                  f"ratio {get / bare:.2f}x")
        print(f"esbackup start-up (--version) {startup:.3f} s")


if __name__ == "__main__":
    main()
