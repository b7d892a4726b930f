import click

from esbackup.commands import complete
from esbackup.commands.common import (
    WholeNumber,
    app,
    confirm_destructive,
    keep_option_list,
    known,
)
from esbackup.commands.output import Column, echo_record, echo_records, output_options
from esbackup.domain.models import (
    BACKUP_TYPES,
    COMPRESSIONS,
    MAX_DISK_ID,
    MAX_RETENTION,
    Definition,
    parse_ref,
)
from esbackup.errors import InvalidInput
from esbackup.services import definitions

COLUMNS = [
    Column("vm", "VM"), Column("name", "Name"), Column("disk_id", "Disk ID", wide=True),
    Column("type", "Type"), Column("node", "Node"), Column("storage", "Storage", wide=True),
    Column("schedule", "Schedule"), Column("timezone", "Time zone", full_only=True),
    Column("next_run", "Next run (UTC)", "utc", full_only=True),
    Column("next_run", "Next run", "time"), Column("policy", "Retention"),
    Column("active", "Active", "bool"), Column("compression", "Compression", full_only=True),
    Column("bwlimit", "Bandwidth limit", "rate", full_only=True),
    Column("fsfreeze", "Freeze", "bool", full_only=True), Column("desc", "Description", wide=True),
    Column("created", "Created", "time", full_only=True),
]


def definition_options(create: bool):
    """The definition's parameters; required on create, optional on update."""
    def decorate(func):
        for option in reversed([
            click.option("--disk-id", type=WholeNumber(1, MAX_DISK_ID), required=create,
                         help="Virtual server disk ID."),
            click.option("--type", "type_", type=click.Choice(BACKUP_TYPES), required=create,
                         help="dataset (incremental, recommended) or file (full stream)."),
            click.option("--node", required=create, help="Backup node.",
                         shell_complete=complete.nodes),
            click.option("--storage", required=create, help="Storage on the backup node."),
            click.option("--schedule", required=create, metavar="CRON",
                         help="Five-field cron line in the definition's time zone."),
            click.option("--timezone", help="IANA time zone (default: this host's)."),
            click.option("--retention", type=WholeNumber(0, MAX_RETENTION),
                         help="Keep this many newest backups: --keep-last (0 = all)."),
            *keep_option_list(),
            click.option("--active/--inactive", default=None, help="Run on schedule."),
            click.option("--desc", help="Description."),
            click.option("--compression", type=click.Choice(COMPRESSIONS),
                         help="File backups: off, gzip or bzip2."),
            click.option("--bwlimit", metavar="BYTES",
                         help="Bandwidth limit in bytes/s (K, M, G suffixes; 0 = none)."),
            click.option("--freeze/--no-freeze", default=None,
                         help="Freeze the guest's filesystems (kvm/bhyve, needs qemu-ga)."),
        ]):
            func = option(func)
        return func
    return decorate


def changes_from(options: dict) -> dict:
    """The options given, as Definition fields; `--retention N` is `--keep-last N`
    (no retention option at all keeps every backup, as 0 does)."""
    retention = options.pop("retention", None)
    if retention is not None:
        if options.get("keep_last") not in (None, retention):
            raise InvalidInput("--retention is --keep-last: give one of them")
        options["keep_last"] = retention
    names = {"type_": "type", "freeze": "fsfreeze"}
    return {names.get(k, k): v for k, v in options.items() if v is not None}


@click.group("definition")
def cli() -> None:
    """Backup definitions: what to back up, where, when, and how many to keep."""


@cli.command("create")
@click.argument("ref", metavar="VM/NAME")
@definition_options(create=True)
def create(ref: str, **options) -> None:
    """Create a backup definition."""
    from esbackup.domain.schedule import local_timezone

    a = app()
    vm, name = parse_ref(ref, "definition")
    values = changes_from(options)
    values.setdefault("timezone", local_timezone())
    d = definitions.create(a.catalog, a.identity, Definition(vm=vm, name=name, **values))
    click.echo(f"created definition {d.ref}")


@cli.command("list")
@click.option("--vm", help="Only this virtual server.", shell_complete=complete.vms)
@click.option("--dc", help="Only this DC.")
@click.option("--node", help="Only this backup node.", shell_complete=complete.nodes)
@output_options
def list_(vm, dc, node, fmt, full) -> None:
    """List backup definitions (the overview: -f plain --full)."""
    a = app()
    known(a.catalog, dc=dc, node=node)
    found = definitions.visible(a.catalog, a.identity, vm=vm, dc=dc, node=node)
    echo_records([definitions.record(d) for d in found], COLUMNS, fmt, full)


def lookup(ref: str):
    a = app()
    d = definitions.find(a.catalog, ref)
    from esbackup.domain import auth

    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=False)
    return d


@cli.command("show")
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@output_options
def show(ref, fmt, full) -> None:
    """Show one backup definition."""
    echo_record(definitions.record(lookup(ref)), COLUMNS, fmt)


@cli.command("update")
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@click.option("--name", "new_name", help="Rename the definition.")
@definition_options(create=False)
@click.option("--dry-run", is_flag=True,
              help="Change nothing; show which backups the new retention would remove.")
@output_options
def update(ref, new_name, dry_run, fmt, full, **options) -> None:
    """Change a backup definition's parameters."""
    a = app()
    changes = changes_from(options)
    if new_name:
        changes["name"] = new_name
    if not changes:
        raise InvalidInput(f"nothing to change in {ref}: give the options to change "
                           "(see definition update --help)")
    if dry_run:
        from esbackup.commands.retention import PREVIEW_COLUMNS
        from esbackup.services import retention_view

        proposed = definitions.proposed(a.catalog, a.identity, lookup(ref), changes)
        echo_records(retention_view.of_definition(a.catalog, proposed), PREVIEW_COLUMNS, fmt,
                     full)
        return
    d = definitions.update(a.catalog, a.identity, lookup(ref), changes)
    click.echo(f"updated definition {d.ref}")


@cli.command("delete")
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref, yes) -> None:
    """Delete a backup definition. Its backups are kept."""
    a = app()
    d = lookup(ref)
    from esbackup.domain import auth

    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=True)
    confirm_destructive(f"definition {d.ref} will be deleted (its backups are kept)", yes)
    definitions.delete(a.catalog, a.identity, d)
    click.echo(f"deleted definition {d.ref}")
