"""`run --due`: one scheduler tick, run from cron every minute.

A definition is due when its schedule fired in the last hour and it has not
run since that moment; so a missed tick (a reboot, a slow minute) is caught
up on the next one, and a run is never started twice for one firing: its run
row names the firing, and the catalog keeps one row per definition and firing,
so of several admin hosts ticking in the same minute exactly one claims it.
Copy definitions with a schedule (issue 20) are ticked alike, claimed by
their start time.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from esbackup.catalog.core import Catalog
from esbackup.domain import schedule
from esbackup.domain.models import CopyDefinition, Definition, Run, saved_id
from esbackup.drivers.session import Reporter, Sessions
from esbackup.errors import EsbackupError, InvalidInput

LOOKBACK = timedelta(hours=1)
TICK_WAIT = 50 * 60  # a due run waits this long for its disk or a node slot


def due(cat: Catalog, now: datetime) -> list[tuple[Definition, datetime]]:
    """Active definitions whose schedule fired since their newest run, and since
    their schedule began (created, activated, rescheduled), with that firing: one
    light query over all of them, one more for the records of those due."""
    fired_at: dict[int, datetime] = {}
    until = now + timedelta(microseconds=1)  # a firing at `now` is due, one a second ahead is not
    for def_id, expr, tz, last, since in cat.last_starts(active=True):
        fired = schedule.runs_between(expr, tz, now - LOOKBACK, until)
        if not fired or (last and datetime.fromisoformat(last) >= fired[-1]):
            continue
        if since and datetime.fromisoformat(since) > fired[-1]:
            continue  # a firing from before the definition or its schedule existed
        fired_at[def_id] = fired[-1]
    if not fired_at:
        return []
    return [(d, fired_at[saved_id(d.id, f"definition {d.ref}")])
            for d in cat.definitions(ids=tuple(fired_at))]


def claim(cat: Catalog, found: list[tuple[Definition, datetime]]
          ) -> list[tuple[Definition, Run]]:
    """The run rows of these firings, in one commit; a firing that another tick
    (another admin host) already has is left out: its claim rolls back alone."""
    from esbackup.actions.backup import start_run

    claimed = []
    with cat.transaction():
        for d, fired in found:
            try:
                with cat.transaction():  # a savepoint: a taken firing undoes only itself
                    claimed.append((d, start_run(cat, d, "tick", firing=fired.isoformat())))
            except InvalidInput:
                continue
    return claimed


def run_due(cat: Catalog, reporter: Reporter | None = None, wait: float = TICK_WAIT,
            now: datetime | None = None, *, sessions: Sessions) -> int:
    """Run every due definition in parallel; returns how many failed.

    Each gets its run row at once, so the next tick does not pick it again
    while it waits (up to `wait` seconds) for its disk or a node slot.
    """
    from esbackup.actions.backup import run_definition

    todo = claim(cat, due(cat, now or datetime.now(timezone.utc)))

    def one(item: tuple[Definition, Run]) -> bool:
        d, run = item
        return in_own_catalog(cat, d.ref, reporter, lambda own: run_definition(
            own, d, sessions=sessions, trigger="tick", wait=wait, reporter=reporter, run=run))

    copies = claim_copies(cat, now or datetime.now(timezone.utc))
    if not todo and not copies:
        return 0
    with ThreadPoolExecutor(max_workers=min(len(todo) + len(copies), 64)) as pool:
        failed = sum(not ok for ok in pool.map(one, todo))
        return failed + sum(not ok for ok in pool.map(
            lambda c: copy_one(cat, c, reporter, wait, sessions=sessions), copies))


def claim_copies(cat: Catalog, now: datetime) -> list[CopyDefinition]:
    """Active copies whose schedule fired since their last start, each claimed by
    its start time (of several admin hosts' ticks, one wins each)."""
    until = now + timedelta(microseconds=1)
    claimed = []
    for copy_id, expr, tz, last in cat.copy_starts():
        fired = schedule.runs_between(expr, tz, now - LOOKBACK, until)
        if fired and not (last and datetime.fromisoformat(last) >= fired[-1]) and \
                cat.claim_copy(copy_id, fired[-1].isoformat(), now.isoformat()):
            claimed.append(copy_id)
    return cat.copy_definitions(ids=tuple(claimed)) if claimed else []


def copy_one(cat: Catalog, c: CopyDefinition, reporter: Reporter | None, wait: float, *,
             sessions: Sessions) -> bool:
    from esbackup.actions.copy_backups import run_copy

    return in_own_catalog(cat, f"copy {c.ref}", reporter, lambda own: run_copy(
        own, own.definitions(ids=(c.definition_id or 0,))[0], c, sessions=sessions, wait=wait,
        reporter=reporter))


def in_own_catalog(cat: Catalog, label: str, reporter: Reporter | None,
                   job: Callable[[Catalog], object]) -> bool:
    """Run `job` on a catalog connection of its own (one per thread); False, with
    a warning naming `label`, when it fails."""
    own = Catalog.open(cat.path)
    try:
        job(own)
        return True
    except EsbackupError as error:
        if reporter is not None:
            reporter.warn(f"{label}: {error}")
        return False
    finally:
        own.close()
