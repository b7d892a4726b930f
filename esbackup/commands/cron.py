import shutil
import sys

import click

from esbackup.commands.common import app


@click.command("cron")
@click.option("--user", default="root", show_default=True, help="User field of the lines.")
def cli(user: str) -> None:
    """Print /etc/cron.d lines: a tick every minute runs what is due (each
    definition in its own time zone), a nightly sync finds lost backups, and a
    nightly prune keeps the run history to its last 90 days."""
    a = app()
    exe = shutil.which("esbackup") or f"{sys.executable} -m esbackup"
    catalog = f" --catalog {a.catalog.path}" if a.catalog_path else ""
    click.echo("# esbackup: install as /etc/cron.d/esbackup")
    click.echo("SHELL=/bin/sh")
    click.echo(f"* * * * * {user} {exe}{catalog} -q run --due")
    click.echo(f"17 4 * * * {user} {exe}{catalog} -q backup sync")
    click.echo(f"37 4 * * * {user} {exe}{catalog} -q history --prune")
