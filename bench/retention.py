"""Retention's catalog work on one definition with 10,000 backups, against the
bare query of its backups (the baseline), in the same run.

    python bench/retention.py [--backups N] [--rounds R]

Fills a SQLite catalog with N hourly ok backups of one definition (some
protected), then times, best of R rounds: the query alone (`cat.backups` of
the definition), and `engine/retention.due` with a keep-last 3, keep-daily 7,
keep-weekly 4, keep-monthly 12, keep-yearly 5 policy in Europe/Prague (the
query, the parse of every time and the rule). Target: due within 0.5 s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.catalog.core import Catalog  # noqa: E402
from esbackup.domain.models import VM, Backup, Definition, Node, Storage  # noqa: E402
from esbackup.engine import retention  # noqa: E402

BUDGET_S = 0.5


def fill(cat: Catalog, backups: int) -> Definition:
    cat.add_node(Node(name="c1", address="c1", compute=True, backup=True))
    cat.add_storage(Storage(node="c1", name="tank", zpool="tank"))
    cat.add_vm(VM(hostname="web01", uuid="u-1", dc="admin", node="c1", brand="kvm",
                  disks={1: "zones/web01-disk0"}))
    d = cat.add_definition(Definition(
        vm="web01", name="hourly", disk_id=1, type="dataset", node="c1", storage="tank",
        schedule="0 * * * *", timezone="Europe/Prague", keep_last=3, keep_daily=7,
        keep_weekly=4, keep_monthly=12, keep_yearly=5))
    start = datetime(2026, 12, 1, tzinfo=timezone.utc) - timedelta(hours=backups)
    with cat.transaction():
        for i in range(backups):
            when = start + timedelta(hours=i)
            name = f"hourly-{when:%Y%m%d_%H%M%S}"
            cat.add_backup(Backup(name=name, vm="web01", vm_uuid="u-1", disk_id=1,
                                  type="dataset", created=when.isoformat(), status="ok",
                                  node="c1", storage="tank", definition="hourly",
                                  location=f"tank/backups/ds/u-1-disk1@esb-{name}",
                                  protected=i % 1000 == 0), definition_id=d.id)
    return d


def best(action, rounds: int) -> tuple[float, object]:
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = action()
        figures.append(time.perf_counter() - started)
    return min(figures), result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backups", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cat = Catalog.open(Path(tempfile.mkdtemp(prefix="esb-retention-")) / "catalog.db",
                       create=True)
    d = fill(cat, args.backups)
    query, found = best(lambda: cat.backups(definition_id=d.id, disk_id=d.disk_id), args.rounds)
    due, going = best(lambda: retention.due(cat, d), args.rounds)
    print(f"{len(found)} backups; the policy removes {len(going)}, keeps "
          f"{len(found) - len(going)}")
    print(f"query alone (baseline)   {query:7.3f} s")
    print(f"retention.due            {due:7.3f} s   x{due / query:.1f} baseline   "
          f"{'ok' if due <= BUDGET_S else 'OVER'} (budget {BUDGET_S} s)")
    return 0 if due <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
