"""`run --due`: one scheduler tick, run from cron every minute.

A definition is due when its schedule fired in the last hour and it has not
run since that moment; so a missed tick (a reboot, a slow minute) is caught
up on the next one, and a run is never started twice for one firing.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from esbackup import schedule
from esbackup.catalog import Catalog
from esbackup.errors import EsbackupError
from esbackup.models import Definition

LOOKBACK = timedelta(hours=1)


def due(cat: Catalog, now: datetime) -> list[Definition]:
    found = []
    for d in cat.definitions():
        if not d.active:
            continue
        fired = schedule.runs_between(d.schedule, d.timezone, now - LOOKBACK,
                                      now + timedelta(seconds=1))
        if not fired:
            continue
        last = cat.runs(d.ref, limit=1)
        if last and datetime.fromisoformat(last[0].started) >= fired[-1]:
            continue
        found.append(d)
    return found


def run_due(cat: Catalog, reporter=None, wait: float = 0,
            now: datetime | None = None) -> int:
    """Run every due definition in parallel; returns how many failed."""
    from esbackup.jobs.backup import run_definition

    todo = due(cat, now or datetime.now(timezone.utc))

    def one(d: Definition) -> bool:
        own = Catalog.open(cat.path)  # one SQLite connection per thread
        try:
            run_definition(own, d, trigger="tick", wait=wait, reporter=reporter)
            return True
        except EsbackupError as error:
            if reporter is not None:
                reporter.warn(f"{d.ref}: {error}")
            return False
        finally:
            own.close()

    if not todo:
        return 0
    with ThreadPoolExecutor(max_workers=min(len(todo), 16)) as pool:
        return sum(not ok for ok in pool.map(one, todo))
