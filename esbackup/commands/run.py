import sys

import click

from esbackup.commands import complete
from esbackup.commands.common import Seconds, app
from esbackup.commands.output import Column, output_options
from esbackup.errors import InvalidInput
from esbackup.services import definitions

dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Only say what would be sent, from which base, and what "
    "retention would then remove (the nodes are only asked to list).")
MADE_COLUMNS = [
    Column("outcome", "Outcome"), Column("backup", "Backup"), Column("name", "Name"),
    Column("definition", "Definition"), Column("type", "Type"), Column("status", "Status"),
    Column("size", "Size", "size"), Column("sent", "Sent", "size"),
    Column("resumed", "Resumed", "size"), Column("duration", "Duration", "duration"),
    Column("freeze", "Freeze", "bool"), Column("error", "Error"),
]


def made(run, b) -> dict:
    """What a run made (`-f`): the backup, or with none its outcome and why."""
    record = {"outcome": run.outcome, "backup": None, "name": None,
              "definition": run.definition, "type": None, "status": None, "size": None,
              "sent": run.sent, "resumed": run.resumed, "duration": run.duration,
              "freeze": None, "error": run.error}
    if b is not None:
        record |= {"backup": b.ref, "name": b.name, "type": b.type, "status": b.status,
                   "size": b.size, "duration": b.duration, "freeze": b.fsfreeze}
    return record


def run_one(ref: str, *, wait: float, force: bool, trigger: str, print_ref: bool = False,
            fmt: str = "table", dry_run: bool = False) -> None:
    """Run one definition and print what it made (shared with `backup now`): a line
    on a terminal; off one nothing (`run`, for cron) or, with `print_ref`, the new
    backup's VM/NAME alone, for scripts. Any other format than the table prints the
    run's record (`made`), also of a run that made nothing; the exit code stays
    the error's."""
    from esbackup.actions import backup as backup_job
    from esbackup.commands.output import echo_record, human_duration, human_size
    from esbackup.domain import auth

    a = app()
    d = definitions.find(a.catalog, ref)
    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=True)
    if dry_run:
        echo_preview(backup_job.preview(a.catalog, d, sessions=a.sessions, force=force), fmt)
        return
    run = backup_job.start_run(a.catalog, d, trigger)
    try:
        b = backup_job.run_definition(a.catalog, d, sessions=a.sessions, trigger=trigger,
                                      wait=wait, force=force, reporter=a, run=run)
    except BaseException:
        if fmt != "table" and run.finished:
            echo_record(made(run, None), MADE_COLUMNS, fmt)
        raise
    a.info(f"backup {b.ref}: {human_size(b.size)} in {human_duration(b.duration)}")
    if fmt != "table":
        echo_record(made(run, b), MADE_COLUMNS, fmt)
    elif sys.stdout.isatty():
        click.echo(f"backup {b.ref} ok: {human_size(b.size)} in {human_duration(b.duration)}")
    elif print_ref:
        click.echo(b.ref)


def echo_preview(p: dict, fmt: str) -> None:
    """A run's --dry-run: the record as JSON, else in words."""
    if fmt == "json":
        import json

        click.echo(json.dumps(p, indent=2))
        return
    if fmt != "table":
        raise InvalidInput("--dry-run prints words or -f json")
    target = f"{p['target']} on node {p['backup_node']}"
    lines = [f"a run of {p['definition']} would back up {p['source']} on node "
             f"{p['compute_node']} into {target} as {p['name']}:"]
    if p["resume"]:
        lines.append("  first try to finish the interrupted transfer the target holds")
    if p["base"]:
        lines.append(f"  incremental from backup {p['base_backup']} ({p['base']})")
    else:
        lines.append(f"  whole (a full send): {p['whole']}")
    removes = p["retention_removes"]
    lines.append("  then retention would remove " + (", ".join(removes) if removes
                                                      else "nothing"))
    click.echo("\n".join(lines))


@click.command("run")
@click.argument("ref", metavar="VM/NAME", required=False,
                shell_complete=complete.definitions)
@click.option("--due", is_flag=True, help="Run every active definition that is due (a tick).")
@click.option("--wait", type=Seconds(), default=None,
              help="Seconds to wait for a busy disk or node (0; with --due 3000).")
@click.option("--force", is_flag=True, help="Run even if the definition is inactive.")
@dry_run_option
@output_options
def cli(ref, due, wait, force, dry_run, fmt, full) -> None:
    """Run a backup definition now: the cron entry point.

    Prints nothing but errors and warnings when not on a terminal, unless -f
    asks for the run's record (json, csv, tsv: the backup made, or the outcome
    of a run that made none). With --due, runs (in parallel, queueing for each
    node's slots up to --wait) every active definition whose schedule fired
    since its last run, looking back at most one hour.
    """
    if due == bool(ref):
        raise InvalidInput("give either VM/NAME or --due")
    if due and (fmt != "table" or dry_run):
        raise InvalidInput("-f and --dry-run are for one run: give VM/NAME, not --due")
    if ref:
        run_one(ref, wait=wait or 0, force=force,
                trigger="cron" if not sys.stdin.isatty() else "manual", fmt=fmt,
                dry_run=dry_run)
        return
    from esbackup.actions import tick
    from esbackup.domain import auth

    a = app()
    auth.require_superadmin(a.identity, "run --due")
    failures = tick.run_due(a.catalog, reporter=a, sessions=a.sessions,
                            wait=tick.TICK_WAIT if wait is None else wait)
    if failures:
        raise click.exceptions.Exit(1)
