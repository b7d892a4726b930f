"""Nagios-style health: OK (0), WARNING (1), CRITICAL (2), one summary line."""
from datetime import datetime, timedelta, timezone

import click

from esbackup import schedule
from esbackup.commands.common import app
from esbackup.jobs import locks

OK, WARNING, CRITICAL = 0, 1, 2
LOOKBACK = timedelta(days=8)  # a weekly schedule still shows a missed run
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


def problems(cat, now: datetime) -> list[tuple[int, str]]:
    """What is wrong, from a few whole-catalog queries (not one per definition)."""
    found = []
    odd = cat.backups(status=("lost", "pending", "restore"))
    busy = {h["resource"] for h in cat.locks("disk:") if not locks.is_stale(h)}
    for b in odd:
        if b.status == "lost":
            found.append((CRITICAL, f"backup {b.ref} is lost"))
    for status in ("pending", "restore"):
        for b in odd:
            if b.status == status and locks.disk_resource(b.vm_uuid, b.disk_id) not in busy:
                found.append((WARNING, f"backup {b.ref} is {status} but nothing runs: "
                                       "run `esbackup backup sync`"))
    for d, last_run, last_ok in cat.definition_states(active=True):
        if last_run is not None and last_run.outcome == "failed":
            found.append((CRITICAL, f"{d.ref}: last run failed: {last_run.error}"))
            continue
        since = max(datetime.fromisoformat(d.created), now - LOOKBACK)
        missed = schedule.runs_between(d.schedule, d.timezone, since, now)
        if len(missed) >= 2 and (not last_ok or datetime.fromisoformat(last_ok) < missed[-2]):
            found.append((WARNING, f"{d.ref}: no backup since {missed[-2]:%Y-%m-%d %H:%M} UTC"))
    return found


@click.command("check")
def cli() -> None:
    """Health of all definitions and backups, for Nagios/Icinga.

    CRITICAL: a lost backup, or an active definition whose last run failed.
    WARNING: an active definition that missed a scheduled backup, or a backup
    left pending/restore by a run that died.
    """
    from esbackup import auth

    a = app()
    auth.require_superadmin(a.identity, "check")
    found = problems(a.catalog, datetime.now(timezone.utc))
    status = max((level for level, _ in found), default=OK)
    counts = a.catalog.counts()
    summary = (f"{len(found)} problem(s)" if found
               else f"{counts['definitions']} definitions, {counts['ok_backups']} ok backups")
    click.echo(f"ESBACKUP {LABELS[status]} - {summary}")
    for level, text in found:
        click.echo(f"{LABELS[level]}: {text}")
    raise click.exceptions.Exit(status)
