import click

from esbackup import definitions
from esbackup.commands.common import WholeNumber, app
from esbackup.output import Column, echo_records, output_options

COLUMNS = [
    Column("started", "Started", "time"), Column("definition", "Definition"),
    Column("trigger", "Trigger"), Column("outcome", "Outcome"), Column("backup", "Backup"),
    Column("size", "Size", "size"), Column("duration", "Duration", "duration"),
    Column("error", "Error"), Column("host", "Host"),
    Column("finished", "Finished", "time", full_only=True), Column("pid", "PID", full_only=True),
    Column("firing", "Firing", "time", full_only=True),
]


@click.command("history")
@click.argument("ref", metavar="[VM/NAME]", required=False)
@click.option("--failed", is_flag=True, help="Only failed runs.")
@click.option("--limit", type=WholeNumber(0, 10**9), default=None,
              help="At most this many runs, newest first.")
@output_options
def cli(ref, failed, limit, fmt, full) -> None:
    """Every run of a definition: ok, failed, skipped, and why. Newest first."""
    from esbackup import auth

    a = app()
    if ref:
        d = definitions.find(a.catalog, ref)
        auth.require_vm(a.identity, a.catalog.vm(d.vm), write=False)
        runs = a.catalog.runs(d.ref, failed=failed, limit=limit)
    else:
        runs = a.catalog.runs(failed=failed)
        if not a.identity.is_superadmin:
            mine = {d.ref for d in definitions.visible(a.catalog, a.identity)}
            runs = [r for r in runs if r.definition in mine]
        runs = runs[:limit] if limit is not None else runs
    records = [r.to_dict() for r in runs]
    for r in records:
        r.pop("id")
    echo_records(records, COLUMNS, fmt, full)
