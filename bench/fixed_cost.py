"""Fixed cost of one run: a small incremental, esbackup against the bare OpenSSH pipe.

    sudo python bench/fixed_cost.py [--size MiB] [--rounds N] [--compare TREE]

Builds a lab of two zfs-fuse nodes (sshd on 127.0.0.x), backs a dataset up once
(full, untimed), then each round writes SIZE MiB (default 1) of new random
data into it and times, on that same change:

- the bare OpenSSH pipe of the increment:
  `ssh c1 "zfs snapshot X && zfs send -i A X" | ssh b1 zfs recv -F T`;
- `esbackup backup now` as a whole process (python startup, imports, catalog,
  every remote call, manifest, trimming), retention high enough never to delete.

Prints the best of N rounds of each and their ratio (target: <= 2.0x). Also
prints the bare startup of the CLI (`esbackup --version`) for scale. With
`--compare TREE` the esbackup of another source tree (an export of main, say)
runs too, on the same changes in the same run: before and after side by side.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.nodes import Lab  # noqa: E402

MiB = 1024 * 1024
# an installed esbackup has its bytecode compiled: let the first run write it
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def esb(catalog: Path, *args: str, tree: Path = ROOT) -> None:
    """esbackup (of source tree `tree`) as its own process, as an operator or cron runs it."""
    proc = subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(catalog), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**ENV, "PYTHONPATH": str(tree)})
    if proc.returncode:
        raise SystemExit(f"esbackup {' '.join(args)}: {proc.stderr.strip()}")


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1, help="MiB changed per round (default 1)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, metavar="TREE",
                        help="also time the esbackup of another source tree (e.g. /work/main) "
                             "on the same changes, its own definition and chain")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esb-fixed-"))
    try:
        run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    with Lab(work / "lab") as lab:
        c1, b1 = lab.add_node("c1"), lab.add_node("b1")
        source, mount = lab.create_dataset(c1, "disk0", {"base.bin": os.urandom(4 * MiB)})
        catalog = work / "catalog.db"
        for n, extra in ((c1, []), (b1, ["--backup", "--no-compute"])):
            esb(catalog, "node", "create", n.name, "--address", f"{n.address}:{n.port}",
                "--key", n.key_path, "--host-key", n.host_key, *extra)
        esb(catalog, "storage", "create", "b1", "tank", "--zpool", b1.pool)
        esb(catalog, "vm", "create", "vm", "--node", "c1", "--disk", f"1={source}")
        trees = {"esbackup": ROOT, **({"compared": args.compare} if args.compare else {})}
        for name, tree in trees.items():
            esb(catalog, "definition", "create", f"vm/{name}", "--disk-id", "1", "--type",
                "dataset", "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                "--retention", "1000")
            esb(catalog, "backup", "now", f"vm/{name}", tree=tree)  # the full one, untimed
        bare_target = f"{b1.pool}/bare"
        ssh_c, ssh_b = lab.ssh_argv(c1), lab.ssh_argv(b1)
        subprocess.run(["zfs", "snapshot", f"{source}@bare0"], check=True)
        full = subprocess.Popen(["zfs", "send", f"{source}@bare0"], stdout=subprocess.PIPE)
        subprocess.run(["zfs", "recv", "-u", bare_target], stdin=full.stdout, check=True)
        full.stdout.close()
        full.wait()

        def bare(r: int) -> None:
            snap, base = f"{source}@bare{r}", f"{source}@bare{r - 1}"
            remote = f"zfs snapshot {snap} && zfs send -i {base} {snap}"
            send = subprocess.Popen([*ssh_c, remote], stdout=subprocess.PIPE)
            subprocess.run([*ssh_b, shlex.join(["zfs", "recv", "-F", bare_target])],
                           stdin=send.stdout, check=True)
            send.stdout.close()
            if send.wait():
                raise SystemExit("the bare pipe failed")

        best: dict[str, float] = {}
        for r in range(1, args.rounds + 1):
            with open(mount / f"round{r}.bin", "wb") as f:
                f.write(os.urandom(args.size * MiB))
            subprocess.run(["sync"], check=True)
            figures = {"bare": timed(lambda r=r: bare(r))}
            for name, tree in trees.items():
                figures[name] = timed(lambda n=name, t=tree: esb(catalog, "backup", "now",
                                                                 f"vm/{n}", tree=t))
                figures[f"{name} startup"] = timed(lambda t=tree: esb(catalog, "--version",
                                                                      tree=t))
            for key, seconds in figures.items():
                best[key] = min(best.get(key, seconds), seconds)
        print(f"{args.size} MiB incremental, best of {args.rounds} rounds")
        print(f"bare OpenSSH pipe            {best['bare']:6.3f} s")
        for name, tree in trees.items():
            print(f"{name:9} backup now       {best[name]:6.3f} s   ratio "
                  f"{best[name] / best['bare']:.2f}x (target <= 2.0x)   [{tree}]")
            print(f"  of which CLI startup       {best[f'{name} startup']:6.3f} s   "
                  f"(esbackup --version)")


if __name__ == "__main__":
    main()
