"""Catalog work on PostgreSQL against SQLite (the baseline), in the same run.

    sudo python bench/catalog.py [--backups N] [--rounds R]

Starts a throwaway PostgreSQL server (lab/postgres.py), fills a SQLite catalog
with N backups of one definition and their runs, copies it into PostgreSQL
with `catalog copy`'s code, then times on both: opening the catalog, listing
all backups, a tick's due check, and taking and releasing a lock. Each figure
is the best of R rounds (both backends alternate, so load from elsewhere hits
them alike); ratios are PostgreSQL over SQLite.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.actions import copy, tick
from esbackup.catalog.core import Catalog  # noqa: E402
from esbackup.domain.models import VM, Backup, Definition, Node, Run, Storage  # noqa: E402
from esbackup.engine import locks  # noqa: E402
from lab.postgres import Server  # noqa: E402


def fill(cat: Catalog, backups: int) -> None:
    cat.add_node(Node(name="c1", address="c1", compute=True, backup=True))
    cat.add_storage(Storage(node="c1", name="tank", zpool="tank"))
    cat.add_vm(VM(hostname="web01", uuid="u-1", dc="admin", node="c1", brand="kvm",
                  disks={1: "zones/web01-disk0"}))
    d = cat.add_definition(Definition(vm="web01", name="daily", disk_id=1, type="dataset",
                                      node="c1", storage="tank", schedule="0 1 * * *",
                                      timezone="UTC", keep_last=0))
    start = datetime(2020, 1, 1, 1, tzinfo=timezone.utc)
    with cat.transaction():
        for i in range(backups):
            when = start + timedelta(days=i)
            name = f"daily-{when:%Y%m%d_%H%M%S}"
            cat.add_backup(Backup(name=name, vm="web01", vm_uuid="u-1", disk_id=1,
                                  type="dataset", created=when.isoformat(), status="ok",
                                  node="c1", storage="tank", size=1 << 30, definition="daily"),
                           definition_id=d.id)
            cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick",
                            started=when.isoformat(), outcome="ok", backup=name, host="admin1"))


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(location) -> dict[str, float]:
    figures = {"open": timed(lambda: Catalog.open(location).close())}
    cat = Catalog.open(location)
    figures["backup list"] = timed(cat.backups)
    figures["tick due check"] = timed(lambda: tick.due(cat, datetime.now(timezone.utc)))

    def lock_cycle() -> None:
        cat.take_lock("disk:u-1:1", "bench", os.getpid(), locks.host_id(), locks.lease_until())
        cat.release_lock("disk:u-1:1", os.getpid(), locks.host_id())

    figures["lock take+release"] = timed(lock_cycle)
    cat.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with Server() as server, tempfile.TemporaryDirectory() as folder:
        os.environ["PGPASSFILE"] = str(server.passfile)
        sqlite = Path(folder) / "catalog.db"
        cat = Catalog.open(sqlite, create=True)
        fill(cat, options.backups)
        postgresql = server.new_database()
        copy_s = timed(lambda: copy.copy(cat, postgresql))
        cat.close()
        best: dict[str, dict[str, float]] = {"sqlite": {}, "postgresql": {}}
        for _ in range(options.rounds):
            for backend, location in (("sqlite", sqlite), ("postgresql", postgresql)):
                for what, seconds in measure(location).items():
                    best[backend][what] = min(best[backend].get(what, seconds), seconds)
        print(f"{options.backups} backups and runs; catalog copy SQLite -> PostgreSQL: "
              f"{copy_s:.2f} s")
        print(f"{'':20} {'SQLite ms':>10} {'PostgreSQL ms':>14} {'ratio':>7}")
        for what, seconds in best["sqlite"].items():
            pg = best["postgresql"][what]
            print(f"{what:20} {seconds * 1000:10.2f} {pg * 1000:14.2f} {pg / seconds:7.1f}")


if __name__ == "__main__":
    main()
