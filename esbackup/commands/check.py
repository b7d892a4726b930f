"""Nagios-style health: OK (0), WARNING (1), CRITICAL (2), UNKNOWN (3), one
summary line with perfdata, then one line per problem."""
from datetime import datetime, timedelta, timezone

import click

from esbackup import health, schedule
from esbackup.commands.common import app
from esbackup.health import CRITICAL, WARNING, Finding
from esbackup.jobs import sync

LOOKBACK = timedelta(days=8)  # a weekly schedule still shows a missed run


def problems(cat, now: datetime) -> list[Finding]:
    found = []
    for b in cat.backups(status="lost"):
        found.append(Finding(CRITICAL, health.LOST, f"backup {b.ref} is lost"))
    for status in ("pending", "restore"):
        for b in cat.backups(status=status):
            if not sync.disk_busy(cat, b):
                found.append(Finding(WARNING, health.LEFTOVER,
                                     f"backup {b.ref} is {status} but nothing runs: "
                                     "run `esbackup backup sync`"))
    for d in cat.definitions():
        if not d.active:
            continue
        runs = cat.runs(d.ref, limit=1)
        if runs and runs[0].outcome == "failed":
            found.append(Finding(CRITICAL, health.FAILED,
                                 f"{d.ref}: last run failed: {runs[0].error}"))
            continue
        since = max(datetime.fromisoformat(d.created), now - LOOKBACK)
        missed = schedule.runs_between(d.schedule, d.timezone, since, now)
        ok = cat.backups(vm=d.vm, definition=d.name, status="ok")
        if len(missed) >= 2 and (not ok or datetime.fromisoformat(ok[-1].created) < missed[-2]):
            found.append(Finding(WARNING, health.STALE,
                                 f"{d.ref}: no backup since {missed[-2]:%Y-%m-%d %H:%M} UTC"))
    return found


@click.command("check")
def cli() -> None:
    """Health of all definitions and backups, for Nagios/Icinga.

    CRITICAL: a lost backup, a backup that failed verify, or an active
    definition whose last run failed. WARNING: an active definition that
    missed a scheduled backup, or a backup left pending/restore by a run that
    died. UNKNOWN: the catalog is missing or cannot be read. The summary line
    carries perfdata: definitions, ok, lost, failed, stale, verify_failed.
    """
    import sqlite3
    from pathlib import Path

    from esbackup import auth
    from esbackup.catalog import default_path, is_url
    from esbackup.errors import EsbackupError

    a = app()
    path = a.catalog_path or default_path()
    if not is_url(path) and not Path(path).exists():
        code, lines = health.unknown(f"no catalog at {path}")
    else:
        try:
            auth.require_superadmin(a.identity, "check")
            found = problems(a.catalog, datetime.now(timezone.utc))
            found += health.verify_findings(a.catalog)
            code, lines = health.report(len(a.catalog.definitions()),
                                        len(a.catalog.backups(status="ok")), found)
        except (EsbackupError, sqlite3.Error) as error:  # psycopg errors arrive as EsbackupError
            code, lines = health.unknown(f"cannot judge: {error}")
    for line in lines:
        click.echo(line)
    raise click.exceptions.Exit(code)
