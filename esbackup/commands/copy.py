"""`esbackup copy`: second copies of a definition's backups on another backup node."""
import click

from esbackup.commands.common import Seconds, app, confirm_destructive, keep_option_list
from esbackup.commands.output import Column, echo_record, echo_records, output_options
from esbackup.errors import InvalidInput
from esbackup.services import copy_definitions as copies

COLUMNS = [
    Column("copy", "Copy"), Column("storage", "Storage"), Column("schedule", "Schedule"),
    Column("after_backup", "After backup", "bool"), Column("next_run", "Next run", "time"),
    Column("policy", "Retention"), Column("active", "Active", "bool"),
    Column("bwlimit", "Bandwidth limit", "rate", full_only=True),
    Column("last_ok", "Last ok", "time"), Column("last_error", "Last error", full_only=True),
    Column("created", "Created", "time", full_only=True),
]


def copy_options(create: bool):
    def decorate(func):
        for option in reversed([
            *([click.option("--node", required=True, help="The backup node the copies go to.")]
              if create else []),
            click.option("--storage", required=create, help="Storage on that node."),
            click.option("--schedule", metavar="CRON",
                         help="Five-field cron line in the definition's time zone."),
            click.option("--after-backup/--no-after-backup", default=None,
                         help="Copy right after each successful backup of the definition."),
            *keep_option_list(),
            click.option("--bwlimit", metavar="BYTES",
                         help="Bandwidth limit in bytes/s (K, M, G suffixes; 0 = none)."),
            click.option("--active/--inactive", default=None, help="Run on schedule."),
        ]):
            func = option(func)
        return func
    return decorate


def changes_from(options: dict) -> dict:
    return {k: v for k, v in options.items() if v is not None}


@click.group("copy")
def cli() -> None:
    """Second copies: a definition's backups sent on to another backup node,
    kept there by their own retention, restorable from there."""


@cli.command("create")
@click.argument("ref", metavar="VM/DEFINITION")
@copy_options(create=True)
def create(ref: str, **options) -> None:
    """Copy the backups of a definition to another backup node."""
    a = app()
    c = copies.create(a.catalog, a.identity, ref, changes_from(options))
    click.echo(f"created copy {c.ref}")


@cli.command("list")
@click.option("--vm", help="Only this virtual server.")
@click.option("--node", help="Only copies to this backup node.")
@output_options
def list_(vm, node, fmt, full) -> None:
    """List copy definitions."""
    a = app()
    if node is not None:
        a.catalog.node(node)
    found = copies.visible(a.catalog, a.identity, vm=vm, node=node)
    echo_records([copies.record(c) for c in found], COLUMNS, fmt, full)


@cli.command("show")
@click.argument("ref", metavar="VM/DEFINITION/NODE")
@output_options
def show(ref, fmt, full) -> None:
    """Show one copy definition."""
    a = app()
    _, c = copies.lookup(a.catalog, a.identity, ref, write=False)
    echo_record(copies.record(c), COLUMNS, fmt)


@cli.command("update")
@click.argument("ref", metavar="VM/DEFINITION/NODE")
@copy_options(create=False)
def update(ref, **options) -> None:
    """Change a copy definition (--schedule '' removes its schedule: then it
    needs --after-backup)."""
    a = app()
    changes = changes_from(options)
    if not changes:
        raise InvalidInput(f"nothing to change in {ref}: give the options to change "
                           "(see copy update --help)")
    c = copies.update(a.catalog, a.identity, ref, changes)
    click.echo(f"updated copy {c.ref}")


@cli.command("delete")
@click.argument("ref", metavar="VM/DEFINITION/NODE")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref, yes) -> None:
    """Delete a copy definition. The copies it made are kept."""
    a = app()
    copies.lookup(a.catalog, a.identity, ref, write=True)
    confirm_destructive(f"copy {ref} will be deleted (the copies it made are kept)", yes)
    c = copies.delete(a.catalog, a.identity, ref)
    click.echo(f"deleted copy {c.ref}")


@cli.command("run")
@click.argument("ref", metavar="VM/DEFINITION/NODE")
@click.option("--wait", type=Seconds(), default=0,
              help="Seconds to wait for a free slot on either backup node.")
def run(ref, wait) -> None:
    """Copy now every ok backup of the definition that the copy's node lacks,
    oldest first, incrementally from the newest backup both nodes hold."""
    from esbackup.actions import copy_backups

    a = app()
    d, c = copies.lookup(a.catalog, a.identity, ref, write=True)
    sent = copy_backups.run_copy(a.catalog, d, c, sessions=a.sessions, wait=wait, reporter=a)
    click.echo(f"copy {c.ref}: {len(sent)} backup(s) copied"
               + (": " + ", ".join(b.name for b in sent) if sent else ""))
