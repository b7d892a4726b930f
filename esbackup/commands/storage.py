import click

from esbackup.commands import complete
from esbackup.commands.common import app
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.domain import auth
from esbackup.services import inventory

COLUMNS = [Column("node", "Node"), Column("name", "Name"), Column("zpool", "Zpool")]


@click.group("storage")
def cli() -> None:
    """Storages on backup nodes: a ZFS pool or dataset root each."""


@cli.command("create")
@click.argument("node", shell_complete=complete.nodes)
@click.argument("name")
@click.option("--zpool", required=True, help="Pool or dataset root on the node.")
def create(node: str, name: str, zpool: str) -> None:
    """Add a storage to a backup node."""
    a = app()
    storage = inventory.create_storage(a.catalog, a.identity, node, name, zpool)
    click.echo(f"created storage {storage.name} on node {storage.node} ({storage.zpool})")


@cli.command("list")
@click.argument("node", required=False, shell_complete=complete.nodes)
@output_options
def list_(node: str | None, fmt: str, full: bool) -> None:
    """List storages, optionally of one node."""
    a = app()
    a.require_registered()
    used = inventory.used_by(a.catalog, a.identity)
    records = [s.to_dict() for s in a.catalog.storages(node)
               if used is None or (s.node, s.name) in used[1]]
    for r in records:
        r.pop("id")
    echo_records(records, COLUMNS, fmt, full)


@cli.command("delete")
@click.argument("node", shell_complete=complete.nodes)
@click.argument("name")
def delete(node: str, name: str) -> None:
    """Remove a storage that no definition or backup uses."""
    a = app()
    auth.require_superadmin(a.identity, "storage delete")
    a.catalog.delete_storage(node, name)
    click.echo(f"deleted storage {name} on node {node}")
