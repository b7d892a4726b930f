"""Nagios-style health: OK (0), WARNING (1), CRITICAL (2), one summary line."""
from datetime import datetime, timedelta, timezone

import click

from esbackup import schedule
from esbackup.commands.common import app
from esbackup.jobs import sync

OK, WARNING, CRITICAL = 0, 1, 2
LOOKBACK = timedelta(days=8)  # a weekly schedule still shows a missed run
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


def problems(cat, now: datetime) -> list[tuple[int, str]]:
    found = []
    for b in cat.backups(status="lost"):
        found.append((CRITICAL, f"backup {b.ref} is lost"))
    for status in ("pending", "restore"):
        for b in cat.backups(status=status):
            if not sync.disk_busy(cat, b):
                found.append((WARNING, f"backup {b.ref} is {status} but nothing runs: "
                                       "run `esbackup backup sync`"))
    for d in cat.definitions():
        if not d.active:
            continue
        runs = cat.runs(d.ref, limit=1)
        if runs and runs[0].outcome == "failed":
            found.append((CRITICAL, f"{d.ref}: last run failed: {runs[0].error}"))
            continue
        since = max(datetime.fromisoformat(d.created), now - LOOKBACK)
        missed = schedule.runs_between(d.schedule, d.timezone, since, now)
        ok = cat.backups(vm=d.vm, definition=d.name, status="ok")
        if len(missed) >= 2 and (not ok or datetime.fromisoformat(ok[-1].created) < missed[-2]):
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
    definitions = len(a.catalog.definitions())
    backups = len(a.catalog.backups(status="ok"))
    summary = (f"{len(found)} problem(s)" if found
               else f"{definitions} definitions, {backups} ok backups")
    click.echo(f"ESBACKUP {LABELS[status]} - {summary}")
    for level, text in found:
        click.echo(f"{LABELS[level]}: {text}")
    raise click.exceptions.Exit(status)
