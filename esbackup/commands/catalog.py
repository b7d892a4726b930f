"""`esbackup catalog`: create, rebuild from the nodes, copy elsewhere."""
import click

from esbackup.commands.common import app


@click.group("catalog")
def cli() -> None:
    """Catalog maintenance."""


@cli.command("init")
@click.argument("location", required=False, metavar="[PATH|URL]")
def init(location: str | None) -> None:
    """Create the catalog: a SQLite file (mode 0600, in a directory others cannot
    write) or esbackup's schema in an empty PostgreSQL database. The only command
    that creates one; on an existing catalog it only applies newer migrations.
    Default: --catalog, ESBACKUP_CATALOG, or the default path."""
    import os

    from esbackup.catalog.core import Catalog
    from esbackup.catalog.location import default_path, is_url
    from esbackup.catalog.postgresql import redact
    from esbackup.domain.auth import via_sudo
    from esbackup.errors import PermissionDenied

    a = app()
    if via_sudo():
        raise PermissionDenied("catalog init: root creates the catalog (not through sudo)")
    where = location or a.catalog_path or default_path()
    existed = not is_url(where) and os.path.lexists(where)
    catalog = Catalog.open(where, create=True)
    try:
        version = catalog.schema_version()
    finally:
        catalog.close()
    state = "already exists" if existed else "ready"
    click.echo(f"catalog {redact(str(where))} {state} (schema version {version})")


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
