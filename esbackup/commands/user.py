import click

from esbackup.commands.common import app
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.domain import auth
from esbackup.domain.models import ROLES
from esbackup.services import inventory

COLUMNS = [Column("name", "Name"), Column("role", "Role"), Column("dcs", "DCs", "list")]


@click.group("user")
def cli() -> None:
    """Users (OS user names) and their roles: superadmin, dcadmin, vmowner."""


@cli.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--dc", "dcs", multiple=True, help="DC a dcadmin administers (repeatable).")
def create(name: str, role: str, dcs: tuple[str, ...]) -> None:
    """Register a user with a role."""
    a = app()
    user = inventory.create_user(a.catalog, a.identity, name, role, dcs)
    click.echo(f"created user {user.name} ({user.role})")


@cli.command("list")
@output_options
def list_(fmt: str, full: bool) -> None:
    """List users."""
    a = app()
    auth.require_superadmin(a.identity, "user list")
    records = [{"name": u.name, "role": u.role, "dcs": u.dcs} for u in a.catalog.users()]
    echo_records(records, COLUMNS, fmt, full)


@cli.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Remove a user."""
    a = app()
    auth.require_superadmin(a.identity, "user delete")
    a.catalog.delete_user(name)
    click.echo(f"deleted user {name}")
