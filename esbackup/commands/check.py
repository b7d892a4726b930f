"""Nagios-style health: OK (0), WARNING (1), CRITICAL (2), UNKNOWN (3), one
summary line with perfdata, then one line per problem."""
from datetime import datetime, timedelta, timezone

import click

from esbackup.commands.common import app
from esbackup.domain import schedule
from esbackup.engine import locks
from esbackup.services import health
from esbackup.services.health import CRITICAL, WARNING, Finding

LOOKBACK = timedelta(days=8)  # a weekly schedule still shows a missed run


def problems(cat, now: datetime) -> list[Finding]:
    """What is wrong, from a few whole-catalog queries (not one per definition)."""
    found = []
    odd = cat.backups(status=("lost", "pending", "restore"))
    busy = {h["resource"] for h in cat.locks("disk:") if not locks.is_stale(h)}
    for b in odd:
        if b.status == "lost":
            found.append(Finding(CRITICAL, health.LOST, f"backup {b.ref} is lost"))
    for status in ("pending", "restore"):
        for b in odd:
            if b.status == status and locks.disk_resource(b.vm_uuid, b.disk_id) not in busy:
                found.append(Finding(WARNING, health.LEFTOVER,
                                     f"backup {b.ref} is {status} but nothing runs: "
                                     "run `esbackup backup sync`"))
    for d, last_run, last_ok in cat.definition_states(active=True):
        if last_run is not None and last_run.outcome == "failed":
            found.append(Finding(CRITICAL, health.FAILED,
                                 f"{d.ref}: last run failed: {last_run.error}"))
            continue
        since = max(datetime.fromisoformat(d.created), now - LOOKBACK)
        missed = schedule.runs_between(d.schedule, d.timezone, since, now)
        if len(missed) >= 2 and (not last_ok or datetime.fromisoformat(last_ok) < missed[-2]):
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

    from esbackup.catalog.location import default_path, is_url
    from esbackup.domain import auth
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
            counts = a.catalog.summary_counts()
            code, lines = health.report(counts["definitions"], counts["ok_backups"], found)
        except (EsbackupError, sqlite3.Error) as error:  # psycopg errors arrive as EsbackupError
            code, lines = health.unknown(f"cannot judge: {error}")
    for line in lines:
        click.echo(line)
    raise click.exceptions.Exit(code)
