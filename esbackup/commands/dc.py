import click

from esbackup.commands.common import app
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.services import inventory

COLUMNS = [Column("name", "Name"), Column("desc", "Description")]


@click.group("dc")
def cli() -> None:
    """Virtual data centers (the DC 'admin' always exists)."""


@cli.command("create")
@click.argument("name")
@click.option("--desc", default="", help="Description.")
def create(name: str, desc: str) -> None:
    """Create a virtual data center."""
    a = app()
    dc = inventory.create_dc(a.catalog, a.identity, name, desc)
    click.echo(f"created dc {dc.name}")


@cli.command("list")
@output_options
def list_(fmt: str, full: bool) -> None:
    """List virtual data centers."""
    a = app()
    a.require_registered()
    echo_records([{"name": d.name, "desc": d.desc} for d in a.catalog.dcs()], COLUMNS, fmt, full)


@cli.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an empty virtual data center."""
    a = app()
    inventory.delete_dc(a.catalog, a.identity, name)
    click.echo(f"deleted dc {name}")
