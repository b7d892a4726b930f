"""Nagios-style health: OK (0), WARNING (1), CRITICAL (2), UNKNOWN (3), one
summary line with perfdata, then one line per problem."""
import json
from datetime import datetime, timezone

import click

from esbackup.commands.common import app
from esbackup.services import health


@click.command("check")
@click.option("--allow-empty", is_flag=True,
              help="No active definitions is OK (else WARNING: nothing is backed up).")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text: Nagios lines; json: the same verdict and problems for machines.")
def cli(allow_empty: bool, fmt: str) -> None:
    """Health of all definitions and backups, for Nagios/Icinga.

    CRITICAL: a lost backup, a backup that failed verify, or an active
    definition whose last run failed or that has had no ok backup since it was
    created and one period of its schedule passed. WARNING: no active
    definitions at all (see --allow-empty), an active definition that missed a
    scheduled backup, or a backup left pending/restore by a run that died.
    UNKNOWN: the catalog is missing or cannot be read. The summary line
    carries perfdata: definitions, ok, lost, failed, stale, verify_failed.
    """
    import sqlite3
    from pathlib import Path

    from esbackup.catalog.location import default_path, is_url
    from esbackup.domain import auth
    from esbackup.errors import EsbackupError

    a = app()
    path = a.catalog_path or default_path()
    why = f"no catalog at {path}" if not is_url(path) and not Path(path).exists() else None
    if why is None:
        try:
            auth.require_superadmin(a.identity, "check")
            judged = health.assess(a.catalog, datetime.now(timezone.utc), allow_empty)
        except (EsbackupError, sqlite3.Error) as error:  # psycopg errors arrive as EsbackupError
            why = f"cannot judge: {error}"
    if why is not None:
        code, lines = health.unknown(why)
        unknown = health.Finding(health.UNKNOWN, "unknown", why)
        verdict = health.as_json(None, None, [unknown])
    else:
        code, lines = health.report(*judged)
        verdict = health.as_json(*judged)
    if fmt == "json":
        click.echo(json.dumps(verdict, indent=2))
    else:
        for line in lines:
            click.echo(line)
    raise click.exceptions.Exit(code)
