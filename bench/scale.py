"""Control-plane speed at scale: whole commands, as processes, against budgets.

    python bench/scale.py [--catalog PATH] [--reuse]

Builds (through esbackup's own Catalog methods) a catalog of 200 nodes
(150 compute, 50 backup), 5,000 VMs, 10,000 definitions, 100,000 backups and
100,000 runs, then runs each command as its own `python -m esbackup` process
and prints its wall time next to its budget, with its CPU time (what the wall
would be on an idle machine: this one is shared), its ratio to the baseline of
the same run (`esbackup --version`, the cost of starting at all) and its peak
memory (max RSS).

`run --due` is timed in a driver process that runs the real CLI with
`run_definition` replaced by a double that only notes the moment the first
transfer would start: with nothing due the whole process counts, with 500
due the time from process start to that first transfer.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esbackup.catalog.core import Catalog  # noqa: E402
from esbackup.domain.models import VM, Backup, Definition, Node, Run, Storage  # noqa: E402

COMPUTE_NODES, BACKUP_NODES, VMS, DEFS_PER_VM, BACKUPS_PER_DEF, RUNS_PER_DEF = (
    150, 50, 5000, 2, 10, 10)
DUE, DUE_ROUNDS = 500, 3  # definitions made due for the second `run --due`, per round
MEMORY_BUDGET_MB = 300


def build(path: Path) -> None:
    """The catalog, built fast: one transaction per table where the method allows."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cat = Catalog.open(path, create=True)
    with cat.transaction():
        for i in range(COMPUTE_NODES):
            cat.add_node(Node(name=f"c{i:03d}", address=f"10.1.{i // 250}.{i % 250}",
                              compute=True, backup=False))
        for i in range(BACKUP_NODES):
            cat.add_node(Node(name=f"b{i:03d}", address=f"10.2.{i // 250}.{i % 250}",
                              compute=False, backup=True, max_backups=4))
            cat.add_storage(Storage(node=f"b{i:03d}", name="tank", zpool="tank"))
    for i in range(VMS):  # add_vm commits on its own
        vm_uuid = str(uuid.UUID(int=i + 1))
        cat.add_vm(VM(hostname=f"vm{i:05d}", uuid=vm_uuid, dc="admin",
                      node=f"c{i % COMPUTE_NODES:03d}", owner=f"user{i % 300}",
                      disks={1: f"zones/{vm_uuid}-disk0", 2: f"zones/{vm_uuid}-disk1"}))
    defs = []
    with cat.transaction():
        for i in range(VMS):
            for k in range(DEFS_PER_VM):
                n = i * DEFS_PER_VM + k
                due = n % (VMS * DEFS_PER_VM // (DUE * DUE_ROUNDS)) == 0  # made due later
                schedule = "* * * * *" if due else f"{n % 60} {n % 24} * * {'*' if k else '0'}"
                defs.append(cat.add_definition(Definition(
                    vm=f"vm{i:05d}", name="daily" if k == 0 else "weekly", disk_id=k + 1,
                    type="dataset" if k == 0 else "file", node=f"b{n % BACKUP_NODES:03d}",
                    storage="tank", schedule=schedule, timezone="Europe/Prague",
                    keep_last=BACKUPS_PER_DEF, active=not due)))
    with cat.transaction():
        for n, d in enumerate(defs):
            vm_uuid = str(uuid.UUID(int=n // DEFS_PER_VM + 1))
            for j in range(BACKUPS_PER_DEF):
                created = now - timedelta(days=BACKUPS_PER_DEF - j, minutes=n % 1440)
                name = f"{d.name}-{created:%Y%m%d_%H%M%S}"
                status = "lost" if (n, j) == (7, 0) else "ok"
                cat.add_backup(Backup(
                    name=name, vm=d.vm, vm_uuid=vm_uuid, disk_id=d.disk_id, type=d.type,
                    created=created.isoformat(), status=status, node=d.node, storage="tank",
                    duration=12.5, size=1 << 30, definition=d.name,
                    location=f"tank/backups/ds/{vm_uuid}-disk{d.disk_id}@esb-{name}",
                    checksum="0" * 64, manifest=f"/tank/backups/manifests/{name}.json"),
                    definition_id=d.id)
    with cat.transaction():
        for n, d in enumerate(defs):
            last = now - (timedelta(hours=2) if not d.active else timedelta(0))
            for j in range(RUNS_PER_DEF):
                started = (last - timedelta(days=RUNS_PER_DEF - 1 - j)).isoformat()
                failed = (n + j) % 97 == 0
                cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick",
                                started=started,
                                finished=started, outcome="failed" if failed else "ok",
                                error="node unreachable" if failed else None,
                                backup=None if failed else f"{d.name}-x", duration=12.5))
    cat.close()


def make_due(path: Path, round_: int) -> None:
    """Activate this round's DUE every-minute definitions (each round its own, as a
    tick's run rows keep the last round's from being due again this minute)."""
    cat = Catalog.open(path)
    todo = [d for d in cat.definitions() if d.schedule == "* * * * *"]
    for i, d in enumerate(todo):
        if d.active != (round_ * DUE <= i < (round_ + 1) * DUE):
            d.active = not d.active
            cat.update_definition(d)  # commits on its own
    # as if activated long ago: this minute's firing is theirs (a tick never runs
    # a firing from before a definition's activation)
    cat.conn.execute("UPDATE definitions SET scheduled_since = '2000-01-01T00:00:00+00:00'")
    cat.close()


TICK_DRIVER = """
import os, sys, time
t0 = float(sys.argv[1])
import esbackup.actions.backup as job
import threading
calls, lock = [], threading.Lock()
def run_definition(cat, d, **kw):  # a double: notes when the first transfer would start
    with lock:
        if not calls:
            print(f"first-transfer {time.time() - t0:.3f}", flush=True)
        calls.append(d.ref)
    job.runlog.finish(cat, kw["run"], "skipped", error="bench double")
job.run_definition = run_definition
from esbackup.cli import cli
cli.main(["--catalog", sys.argv[2], "-q", "run", "--due", "--wait", "0"],
         prog_name="esbackup", standalone_mode=False)
print(f"due {len(calls)}", flush=True)
"""


@dataclass(order=True)
class Figure:
    wall: float  # seconds, first: `min` of figures is the fastest round
    cpu: float  # user + system seconds: what the wall would be on an idle machine
    mb: float  # peak RSS
    tail: str = field(compare=False)  # the end of stdout
    records: int = field(compare=False)  # JSON records printed


def measure(argv: list[str], env: dict, timeout: float) -> Figure:
    """One whole process: wall and CPU seconds, peak RSS (its own, from wait4),
    the end of its stdout and how many JSON records it printed. Output is read
    and dropped as it comes: a big parent would inflate the next child's peak
    (a fork starts with the parent's pages)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    tail, records = b"", 0
    while chunk := proc.stdout.read(1 << 20):
        records += (tail[-3:] + chunk).count(b"\n  {")
        tail = (tail + chunk)[-4096:]
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2):
        wall = float("inf") if proc.returncode == -signal.SIGKILL else wall
        if wall != float("inf"):
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode})")
    return Figure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                  tail.decode(errors="replace"), records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="build here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="use an existing catalog as is")
    parser.add_argument("--rounds", type=int, default=3, help="best of N per command")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per process")
    args = parser.parse_args()
    path = args.catalog or Path(tempfile.mkdtemp(prefix="esb-scale-")) / "catalog.db"
    if not (args.reuse and path.exists()):
        path.unlink(missing_ok=True)
        start = time.perf_counter()
        build(path)
        print(f"built {path} in {time.perf_counter() - start:.1f} s", flush=True)
    env = os.environ | {"ESBACKUP_CATALOG": str(path), "PYTHONPATH": str(ROOT)}
    esb = [sys.executable, "-m", "esbackup", "--catalog", str(path)]
    cases = [
        ("check", esb + ["check"], 1.0),
        ("schedule overview -f json", esb + ["schedule", "overview", "-f", "json"], 1.0),
        ("schedule load", esb + ["schedule", "load"], 1.0),
        ("definition list -f json", esb + ["definition", "list", "-f", "json"], 1.0),
        ("backup list --vm vm02500", esb + ["backup", "list", "--vm", "vm02500"], 0.3),
        ("backup list -f json (all)", esb + ["backup", "list", "-f", "json"], 3.0),
        ("history --limit 50", esb + ["history", "--limit", "50"], 1.0),
        ("run --due, nothing due", [sys.executable, "-c", TICK_DRIVER, "0", str(path)], 0.5),
    ]
    floor = min(measure(esb + ["--version"], env, args.timeout) for _ in range(args.rounds))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; baseline: "
          f"`esbackup --version` {floor.wall:.3f} s wall, {floor.cpu:.3f} s CPU")
    print(f"{'command':36} {'wall s':>7} {'budget':>6} {'CPU s':>6} {'x base':>6} {'MB':>5}"
          "  verdict")
    verdicts = []

    def report(label: str, figure: Figure, budget: float, note: str = "") -> None:
        ok = figure.wall <= budget and figure.mb <= MEMORY_BUDGET_MB
        verdicts.append(ok)
        print(f"{label:36} {figure.wall:7.3f} {budget:6.1f} {figure.cpu:6.3f} "
              f"{figure.wall / floor.wall:6.1f} {figure.mb:5.0f}  {'ok' if ok else 'OVER'}{note}",
              flush=True)

    settle = measure([sys.executable, "-c", TICK_DRIVER, "0", str(path)], env, args.timeout)
    print(f"(an untimed tick first ran the {settle.tail.split()[-1]} definitions that came due "
          "since the build, so that the timed ones find nothing due)")
    peak = 0.0
    for label, argv, budget in cases:
        best = min(measure(argv, env, args.timeout) for _ in range(args.rounds))
        peak = max(peak, best.mb)
        note = ""
        if label.startswith("run --due") and best.tail:
            note = f" ({best.tail.split()[-1]} due)"
        elif label.startswith("backup list -f json"):
            note = f" ({best.records} backups)"
        report(label, best, budget, note)
    firsts = []
    for round_ in range(min(args.rounds, DUE_ROUNDS)):
        make_due(path, round_)
        figure = measure([sys.executable, "-c", TICK_DRIVER, str(time.time()), str(path)], env,
                         args.timeout)
        words = figure.tail.split()
        figure.wall = float(words[words.index("first-transfer") + 1])
        firsts.append((figure, words[-1]))
    first, count = min(firsts)
    peak = max(peak, first.mb)
    report(f"run --due, {DUE} due: first transfer", first, 1.0, f" ({count} due; CPU: whole)")
    print(f"peak memory {peak:.0f} MB (budget {MEMORY_BUDGET_MB} MB): "
          f"{'ok' if peak <= MEMORY_BUDGET_MB else 'OVER'}")
    return 0 if all(verdicts) and peak <= MEMORY_BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
