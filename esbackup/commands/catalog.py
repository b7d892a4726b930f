import click

from esbackup.commands.common import app


@click.group("catalog")
def cli() -> None:
    """Catalog maintenance."""


@cli.command("rebuild")
@click.option("--node", required=True, help="Backup node whose manifests to read.")
def rebuild(node: str) -> None:
    """Recreate backups (and the VMs and definitions they name) from a backup
    node's manifests. Safe to run again: existing rows are kept. Manifests are
    checked like the CLI's own input; a bad one is skipped with a warning, and
    a backup whose data is gone comes back as lost."""
    from esbackup.actions import rebuild as rebuild_job
    from esbackup.domain import auth

    a = app()
    auth.require_superadmin(a.identity, "catalog rebuild")
    counts = rebuild_job.rebuild(a.catalog, node, reporter=a, sessions=a.sessions)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items() if k != "skipped")
               + f" added from node {node}"
               + (f"; {counts['skipped']} manifests skipped" if counts["skipped"] else ""))


@cli.command("copy")
@click.argument("target")
def copy(target: str) -> None:
    """Copy the whole catalog into TARGET: a new SQLite file, or an empty
    PostgreSQL database (postgresql://USER@HOST:PORT/DB). Refuses a target that
    holds data; prints the rows copied per table after checking them there."""
    from esbackup.actions import copy as copy_job
    from esbackup.catalog.postgresql import redact
    from esbackup.domain import auth

    a = app()
    auth.require_superadmin(a.identity, "catalog copy")
    counts = copy_job.copy(a.catalog, target)
    click.echo(", ".join(f"{n} {table}" for table, n in counts.items())
               + f" copied to {redact(target)}")
