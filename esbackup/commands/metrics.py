"""`esbackup metrics --textfile PATH|-`: metrics for node_exporter's textfile collector."""
from datetime import datetime, timezone
from pathlib import Path

import click

from esbackup.commands.common import app


@click.command("metrics")
@click.option("--textfile", required=True, metavar="PATH",
              type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
              help="The .prom file to write (in node_exporter's textfile directory); "
                   "- for stdout.")
def cli(textfile: Path) -> None:
    """Write Prometheus metrics: per definition the last success time, duration,
    size and run outcome; per backup node the backups by status and the failed
    verifies; how many definitions there are. Every series is there for every
    definition (NaN or 0 without data). The file is replaced whole (written
    beside it, then renamed)."""
    from esbackup.domain import auth
    from esbackup.errors import NotFound
    from esbackup.services import metrics

    a = app()
    auth.require_superadmin(a.identity, "metrics")
    to_stdout = str(textfile) == "-"
    if not to_stdout and not textfile.parent.is_dir():
        raise NotFound(f"no such directory: {textfile.parent}")
    text = metrics.collect(a.catalog, datetime.now(timezone.utc))
    if to_stdout:
        click.echo(text, nl=False)
    else:
        metrics.write_atomically(textfile, text)
