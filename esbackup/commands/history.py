import click

from esbackup.commands import complete
from esbackup.commands.common import WholeNumber, app
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.engine import runlog
from esbackup.engine.runlog import KEEP_DAYS
from esbackup.errors import InvalidInput
from esbackup.services import definitions

COLUMNS = [
    Column("started", "Started", "time"), Column("definition", "Definition"),
    Column("trigger", "Trigger"), Column("outcome", "Outcome"), Column("backup", "Backup"),
    Column("size", "Size", "size"), Column("duration", "Duration", "duration"),
    Column("resumed", "Resumed", "size"),
    Column("error", "Error"), Column("host", "Host", wide=True),
    Column("finished", "Finished", "time", full_only=True), Column("pid", "PID", full_only=True),
    Column("firing", "Firing", "time", full_only=True),
    Column("sent", "Sent", "size", full_only=True),
]


@click.command("history")
@click.argument("ref", metavar="[VM/NAME]", required=False,
                shell_complete=complete.definitions)
@click.option("--failed", is_flag=True, help="Only failed runs.")
@click.option("--limit", type=WholeNumber(0, 10**9), default=None,
              help="At most this many runs, newest first.")
@click.option("--prune", is_flag=True,
              help="Forget runs older than --keep-days (each definition's last ok and last "
                   "failed run stay).")
@click.option("--keep-days", type=WholeNumber(0, 36500), default=None,
              help=f"With --prune: keep every run of this many days (default {KEEP_DAYS}).")
@output_options
def cli(ref, failed, limit, prune, keep_days, fmt, full) -> None:
    """Every run of a definition: ok, failed, skipped, and why. Newest first.

    With --prune, forgets old runs instead (the nightly cron line does this).
    """
    from esbackup.domain import auth

    a = app()
    if keep_days is not None and not prune:
        raise InvalidInput("--keep-days goes with --prune")
    if prune:
        if ref or failed or limit is not None:
            raise InvalidInput("--prune takes no VM/NAME, --failed or --limit")
        auth.require_superadmin(a.identity, "history --prune")
        gone = runlog.prune(a.catalog, KEEP_DAYS if keep_days is None else keep_days)
        if a.verbosity >= 0:
            click.echo(f"pruned {gone} run(s)")
        return
    if ref:
        d = definitions.find(a.catalog, ref)
        auth.require_vm(a.identity, a.catalog.vm(d.vm), write=False)
        runs = a.catalog.runs((d.id,), failed=failed, limit=limit)
    elif a.identity.is_superadmin:  # every run, a deleted definition's too
        runs = a.catalog.runs(failed=failed, limit=limit)
    else:  # the runs of the definitions this user sees, by id: never another VM's
        mine = tuple(d.id for d in definitions.visible(a.catalog, a.identity))
        runs = a.catalog.runs(mine, failed=failed, limit=limit)
    records = [dict(vars(r)) for r in runs]  # flat fields: no need for asdict's deep copy
    for r in records:
        r.pop("id")
        r.pop("definition_id")
        if r["backup"]:  # the full reference, VM/BACKUP, as `backup show` takes it
            r["backup"] = f"{r['definition'].split('/', 1)[0]}/{r['backup']}"
    echo_records(records, COLUMNS, fmt, full)
