import os
import re
import shlex
import sys
from pathlib import Path

import click

from esbackup.catalog.location import is_url
from esbackup.commands.common import app
from esbackup.domain.models import CONTROL_RE
from esbackup.errors import InvalidInput

USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)  # useradd's rule, no trailing $


def crontab_command(argv: list[str]) -> str:
    """A crontab command field that runs exactly `argv`: every value quoted for
    sh, and '%' (cron's newline) escaped; a control character would end the line,
    so it is refused."""
    if any(CONTROL_RE.search(arg) for arg in argv):
        raise InvalidInput(f"cannot write a crontab line for {argv!r}: control characters")
    return " ".join(shlex.quote(arg) for arg in argv).replace("%", "\\%")


def running_esbackup() -> list[str]:
    """The esbackup that is running, by absolute path: its console script when it
    was started as one, else this Python with `-m esbackup` (never the first
    esbackup on cron's PATH, which may be another one)."""
    script = Path(sys.argv[0])
    if script.name == "esbackup" and script.is_file() and os.access(script, os.X_OK):
        return [str(script.resolve())]
    return [str(Path(sys.executable).absolute()), "-m", "esbackup"]


def catalog_location(path: Path | str) -> str:
    """The catalog cron is to open: this one, by absolute path (cron's working
    directory would decide a relative one), or its URL."""
    return path if isinstance(path, str) and is_url(path) else str(Path(path).absolute())


@click.command("cron")
@click.option("--user", default="root", show_default=True, help="User field of the lines.")
def cli(user: str) -> None:
    """Print /etc/cron.d lines: a tick every minute runs what is due (each
    definition in its own time zone), a nightly sync finds lost backups, and a
    weekly verify reads back the backups not verified for a week, and a nightly
    prune keeps the run history to its last 90 days."""
    if not USER_RE.fullmatch(user):
        raise InvalidInput(f"invalid user {user!r}: a plain user name (a-z, 0-9, '_', '-')")
    a = app()
    exe = running_esbackup()
    catalog = ["--catalog", catalog_location(a.catalog.path)]
    click.echo("# esbackup: install as /etc/cron.d/esbackup")
    click.echo("SHELL=/bin/sh")
    click.echo(f"* * * * * {user} {crontab_command([*exe, *catalog, '-q', 'run', '--due'])}")
    click.echo(f"17 4 * * * {user} {crontab_command([*exe, *catalog, '-q', 'backup', 'sync'])}")
    click.echo(f"37 4 * * * {user} {crontab_command([*exe, *catalog, '-q', 'history', '--prune'])}")
    verify = [*exe, *catalog, "-q", "backup", "verify", "--older-than", "6", "--wait", "3600"]
    click.echo(f"37 5 * * 6 {user} {crontab_command(verify)}")
