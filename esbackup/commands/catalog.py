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
    from esbackup import auth
    from esbackup.jobs import rebuild as rebuild_job

    a = app()
    auth.require_superadmin(a.identity, "catalog rebuild")
    counts = rebuild_job.rebuild(a.catalog, node, reporter=a)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items() if k != "skipped")
               + f" added from node {node}"
               + (f"; {counts['skipped']} manifests skipped" if counts["skipped"] else ""))
