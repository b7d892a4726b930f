import sys

import click

from esbackup.commands import complete
from esbackup.commands.common import Seconds, app
from esbackup.errors import InvalidInput
from esbackup.services import definitions


def run_one(ref: str, *, wait: float, force: bool, trigger: str, print_ref: bool = False) -> None:
    """Run one definition and print what it made (shared with `backup now`): a line
    on a terminal; off one nothing (`run`, for cron) or, with `print_ref`, the new
    backup's VM/NAME alone, for scripts."""
    from esbackup.actions import backup as backup_job
    from esbackup.domain import auth

    a = app()
    d = definitions.find(a.catalog, ref)
    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=True)
    b = backup_job.run_definition(a.catalog, d, sessions=a.sessions, trigger=trigger,
                                  wait=wait, force=force, reporter=a)
    from esbackup.commands.output import human_duration, human_size

    a.info(f"backup {b.ref}: {human_size(b.size)} in {human_duration(b.duration)}")
    if sys.stdout.isatty():
        click.echo(f"backup {b.ref} ok: {human_size(b.size)} in {human_duration(b.duration)}")
    elif print_ref:
        click.echo(b.ref)


@click.command("run")
@click.argument("ref", metavar="VM/NAME", required=False,
                shell_complete=complete.definitions)
@click.option("--due", is_flag=True, help="Run every active definition that is due (a tick).")
@click.option("--wait", type=Seconds(), default=None,
              help="Seconds to wait for a busy disk or node (0; with --due 3000).")
@click.option("--force", is_flag=True, help="Run even if the definition is inactive.")
def cli(ref, due, wait, force) -> None:
    """Run a backup definition now: the cron entry point.

    Prints nothing but errors and warnings when not on a terminal. With --due,
    runs (in parallel, queueing for each node's slots up to --wait) every
    active definition whose schedule fired since its last run, looking back
    at most one hour.
    """
    if due == bool(ref):
        raise InvalidInput("give either VM/NAME or --due")
    if ref:
        run_one(ref, wait=wait or 0, force=force,
                trigger="cron" if not sys.stdin.isatty() else "manual")
        return
    from esbackup.actions import tick
    from esbackup.domain import auth

    a = app()
    auth.require_superadmin(a.identity, "run --due")
    failures = tick.run_due(a.catalog, reporter=a, sessions=a.sessions,
                            wait=tick.TICK_WAIT if wait is None else wait)
    if failures:
        raise click.exceptions.Exit(1)
