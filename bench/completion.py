"""Shell completion at 10,000 definitions: real TAB processes against a baseline.

    python bench/completion.py [--rounds R] [--catalog PATH]

Fills a SQLite catalog (through esbackup's own Catalog methods, as
bench/scale.py does) with 5,000 VMs, 10,000 definitions and 20,000 backups,
then times what bash's completion hook runs on each TAB: an `esbackup` process
with `_ESBACKUP_COMPLETE=bash_complete COMP_WORDS=... COMP_CWORD=...`, for VM,
definition and backup references with an empty, a short and a long prefix.
The baseline in the same run is `esbackup --version` (the cost of starting at
all). Each figure is the best of R rounds (commands alternate, so load from
elsewhere hits them alike); the budget is 200 ms a TAB.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esbackup.catalog.core import Catalog  # noqa: E402
from esbackup.domain.models import VM, Backup, Definition, Node, Storage  # noqa: E402

VMS, NAMES, BACKUPS_PER_DEF = 5000, ("daily", "weekly"), 2
BUDGET_MS = 200
ESBACKUP = [sys.executable, "-m", "esbackup"]


def fill(path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cat = Catalog.open(path, create=True)
    cat.add_node(Node(name="c1", address="10.1.0.1", compute=True, backup=True))
    cat.add_storage(Storage(node="c1", name="tank", zpool="tank"))
    with cat.transaction():
        for i in range(VMS):
            vm_uuid = str(uuid.UUID(int=i + 1))
            cat.add_vm(VM(hostname=f"vm{i:05d}", uuid=vm_uuid, dc="admin", node="c1",
                          disks={1: f"zones/{vm_uuid}-disk0", 2: f"zones/{vm_uuid}-disk1"}))
            for k, name in enumerate(NAMES):
                d = cat.add_definition(Definition(
                    vm=f"vm{i:05d}", name=name, disk_id=k + 1, type="dataset", node="c1",
                    storage="tank", schedule=f"{i % 60} {i % 24} * * *", timezone="UTC",
                    keep_last=BACKUPS_PER_DEF))
                for j in range(BACKUPS_PER_DEF):
                    created = now - timedelta(days=BACKUPS_PER_DEF - j, minutes=i % 1440)
                    cat.add_backup(Backup(
                        name=f"{name}-{created:%Y%m%d_%H%M%S}", vm=d.vm, vm_uuid=vm_uuid,
                        disk_id=k + 1, type="dataset", created=created.isoformat(),
                        status="ok", node="c1", storage="tank", definition=name),
                        definition_id=d.id)
    counts = cat.summary_counts()
    assert counts["definitions"] == VMS * len(NAMES), counts
    cat.close()


def tab(catalog: Path, words: str) -> tuple[float, list[str]]:
    """One TAB after `esbackup --catalog CATALOG WORDS`: seconds, candidates."""
    line = f"esbackup --catalog {catalog} {words}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), _ESBACKUP_COMPLETE="bash_complete",
               COMP_WORDS=line, COMP_CWORD=str(len(line.split()) - (not words.endswith(" "))))
    started = time.perf_counter()
    done = subprocess.run(ESBACKUP, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.splitlines()


def baseline() -> float:
    started = time.perf_counter()
    subprocess.run([*ESBACKUP, "--version"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                   capture_output=True, check=True)
    return time.perf_counter() - started


CASES = ("vm show ", "vm show vm0", "vm show vm0421", "definition show ",
         "definition show vm042", "definition show vm04217/w", "run vm0999",
         "backup show ", "backup show vm0421", "backup show vm04217/daily-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--catalog", type=Path, help="reuse (or build) this catalog")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        catalog = options.catalog or Path(folder) / "catalog.db"
        if not catalog.exists():
            started = time.perf_counter()
            fill(catalog)
            print(f"filled {catalog}: {VMS * len(NAMES)} definitions, "
                  f"{VMS * len(NAMES) * BACKUPS_PER_DEF} backups in "
                  f"{time.perf_counter() - started:.1f} s")
        best = {"esbackup --version": float("inf")} | {case: float("inf") for case in CASES}
        offered: dict[str, int] = {}
        for _ in range(options.rounds):
            best["esbackup --version"] = min(best["esbackup --version"], baseline())
            for case in CASES:
                seconds, candidates = tab(catalog, case)
                best[case], offered[case] = min(best[case], seconds), len(candidates)
        base = best["esbackup --version"]
        print(f"{'TAB after':32} {'ms':>7} {'ratio':>6} {'offered':>8}  (budget {BUDGET_MS} ms)")
        for what, seconds in best.items():
            mark = "" if seconds * 1000 <= BUDGET_MS else "  OVER BUDGET"
            print(f"{what:32} {seconds * 1000:7.1f} {seconds / base:6.2f} "
                  f"{offered.get(what, ''):>8}{mark}")


if __name__ == "__main__":
    main()
