"""The root command group. Command modules load lazily, on first use."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from esbackup import __version__
from esbackup.errors import EsbackupError

if TYPE_CHECKING:
    from esbackup.catalog.core import Catalog
    from esbackup.domain.auth import Identity

COMMANDS = {
    "dc": "Virtual data centers.",
    "node": "Compute and backup nodes.",
    "storage": "Storages (ZFS pools) on backup nodes.",
    "vm": "Virtual servers and their disks.",
    "definition": "Backup definitions: what, where, when, how many.",
    "copy": "Second copies of a definition's backups on another backup node.",
    "backup": ("Backups: list, show, now, delete, restore, note, sync, verify, protect, "
               "prune, ls, get."),
    "retention": "Preview retention policies on times, schedules or a definition.",
    "run": "Run a definition now (the cron entry point), or all that are due.",
    "history": "Every run: ok, failed, skipped, and why.",
    "schedule": "Next runs, overview, load per node and hour, balancing.",
    "cron": "Print crontab lines for the scheduler.",
    "check": "Nagios-style health check.",
    "metrics": "Prometheus metrics for node_exporter's textfile collector.",
    "catalog": "Catalog maintenance: rebuild from the backup nodes, copy to another.",
    "user": "Users and their roles.",
}


# Click 8.2+ raises this for a group given no command (older ones print the help)
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class EsbackupClickError(click.ClickException):
    """An `esbackup.errors` exception, shown as one line with its exit code."""

    def __init__(self, error: EsbackupError):
        from esbackup.commands.output import escape_controls

        super().__init__(escape_controls(str(error)))  # it may quote what a user typed
        # click declares exit_code a ClassVar, yet reads it from the instance: each
        # error here carries its own code
        self.exit_code = error.exit_code  # type: ignore[misc]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module_exists(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._module_exists(name):
            return None
        module = importlib.import_module(f"esbackup.commands.{name}")
        return module.cli

    @staticmethod
    def _module_exists(name: str) -> bool:
        return (Path(__file__).parent / "commands" / f"{name}.py").exists()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EsbackupError as error:
            raise EsbackupClickError(error) from None
        except Exception as error:  # noqa: BLE001 - the one place that turns the rest into a line
            one_line = as_esbackup_error(error)
            if one_line is None:
                raise
            raise EsbackupClickError(one_line) from None


def as_esbackup_error(error: Exception, catalog: str = "catalog") -> EsbackupError | None:
    """Catalog trouble and out-of-range values as one line with their exit code
    (never a traceback); None for what is a bug to see whole."""
    from esbackup.errors import Busy, Damaged, InvalidInput, OperationFailed

    sqlite3 = sys.modules.get("sqlite3")  # not loaded: not a catalog error (and --help stays light)
    text = " ".join(str(error).split()) or type(error).__name__
    if sqlite3 and isinstance(error, sqlite3.DatabaseError) and getattr(
            error, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return Damaged(f"{catalog} is damaged: {text} (restore it from a copy, or "
                       "`esbackup catalog rebuild`)")
    if sqlite3 and isinstance(error, sqlite3.OperationalError) and "locked" in text:
        return Busy(f"{catalog} busy: {text} (another esbackup holds it; try again)")
    if sqlite3 and isinstance(error, sqlite3.OperationalError) and "readonly" in text:
        return OperationFailed(f"{catalog} is read-only: {text}")
    if sqlite3 and isinstance(error, sqlite3.Error):
        return OperationFailed(f"{catalog}: {text}")
    if isinstance(error, OverflowError):
        return InvalidInput(f"number out of range: {text}")
    if isinstance(error, ValueError):
        return InvalidInput(f"invalid value: {text}")
    if isinstance(error, OSError):
        return OperationFailed(f"{catalog}: {text}")
    return None


class AppContext:
    """What every command needs: the catalog (opened lazily), the caller, and the
    factory of node sessions that actions receive (drivers/session.py)."""

    def __init__(self, catalog_path: str | None, verbosity: int, sessions=None):
        self.catalog_path, self.verbosity = catalog_path, verbosity
        self._catalog: Catalog | None = None
        self._identity: Identity | None = None
        self._sessions = sessions

    @property
    def sessions(self):
        if self._sessions is None:
            from esbackup.drivers.session import connect

            self._sessions = connect
        return self._sessions

    @property
    def catalog(self):
        if self._catalog is None:
            from esbackup.catalog.core import Catalog
            from esbackup.domain.auth import via_sudo

            try:
                self._catalog = Catalog.open(self.catalog_path, system_only=via_sudo())
            except EsbackupError:
                raise
            except Exception as error:  # noqa: BLE001 - named, as one line
                one_line = as_esbackup_error(error, f"catalog {self.catalog_path or 'default'}")
                if one_line is None:
                    raise
                raise one_line from None
        return self._catalog

    @property
    def identity(self):
        if self._identity is None:
            from esbackup.domain.auth import identify

            self._identity = identify(self.catalog)
        return self._identity

    def require_registered(self):
        """Fail with exit 3 unless the caller may use esbackup at all."""
        return self.identity

    def warn(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(f"warning: {message}", err=True)

    def progress(self, label: str, total=None):
        if self.verbosity < 0:
            return None
        from esbackup.commands.output import progress_bar

        return progress_bar(label, total)

    def info(self, message: str) -> None:
        if self.verbosity > 0:
            click.echo(message, err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False),
              envvar="ESBACKUP_CATALOG", help="Catalog file (default: /var/lib/esbackup/"
              "catalog.db for root, else under the user's app dir), or a PostgreSQL URL "
              "postgresql://USER@HOST:PORT/DB.")
@click.option("-v", "--verbose", count=True, help="More messages.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no warnings.")
@click.version_option(__version__, prog_name="esbackup")
@click.pass_context
def cli(ctx: click.Context, catalog_path: str | None, verbose: int, quiet: bool) -> None:
    """Back up ZFS virtual server disks to backup nodes: scheduled, incremental,
    retention-managed, restorable."""
    # ctx.obj may hold another node-session factory (a test's: invoke(..., obj=...))
    ctx.obj = AppContext(catalog_path, -1 if quiet else verbose, sessions=ctx.obj)
    ctx.call_on_close(lambda: ctx.obj._catalog and ctx.obj._catalog.close())


class GuardedStdout:
    """sys.stdout whose failed writes (a full disk, a closed pipe) say that the
    output could not be written, not that the catalog failed."""

    def __init__(self, stream):
        self._stream, self.failed = stream, False

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def _guard(self, call, *args):
        from esbackup.errors import OutputFailed

        try:
            return call(*args)
        except OSError as error:
            self.failed = True
            raise OutputFailed(f"could not write the output: {error.strerror or error}") from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main() -> None:
    """The console script: click's behaviour, but usage errors on one line, and
    output that could not be written said so (exit 1)."""
    from esbackup.errors import OutputFailed

    guarded = GuardedStdout(sys.stdout)
    sys.stdout = guarded  # type: ignore[assignment]
    try:
        status = run()
        if not guarded.failed:
            guarded.flush()
    except OutputFailed as error:
        click.echo(f"Error: {error}", err=True)
        status = error.exit_code
    if guarded.failed:  # what is still buffered goes nowhere: Python's last flush can't fail
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), guarded.fileno())
    sys.exit(status)


def run() -> int:
    """The root group, with click's exceptions turned into their exit status."""
    try:
        status = cli.main(prog_name="esbackup", standalone_mode=False)
    except NO_ARGS_IS_HELP as error:  # a bare group: its help, as --help gives it
        click.echo(error.ctx.get_help() if error.ctx else cli.get_help(click.Context(cli)))
        return 0
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "esbackup"
        from esbackup.commands.output import escape_controls

        message = escape_controls(" ".join(error.format_message().split()))
        click.echo(f"Error: {message} (see {where} --help)", err=True)
        return error.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return status if isinstance(status, int) else 0
