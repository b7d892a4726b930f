"""`esbackup metrics --textfile PATH`: metrics for node_exporter's textfile collector."""
from datetime import datetime, timezone
from pathlib import Path

import click

from esbackup.commands.common import app


@click.command("metrics")
@click.option("--textfile", required=True, metavar="PATH",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The .prom file to write (in node_exporter's textfile directory).")
def cli(textfile: Path) -> None:
    """Write Prometheus metrics: per definition the last success time, duration,
    size and run outcome; per backup node the backups by status and the failed
    verifies. The file is replaced whole (written beside it, then renamed)."""
    from esbackup.domain import auth
    from esbackup.errors import NotFound
    from esbackup.services import metrics

    a = app()
    auth.require_superadmin(a.identity, "metrics")
    if not textfile.parent.is_dir():
        raise NotFound(f"no such directory: {textfile.parent}")
    metrics.write_atomically(textfile, metrics.collect(a.catalog, datetime.now(timezone.utc)))
