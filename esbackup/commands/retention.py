import click

from esbackup.commands import complete
from esbackup.commands.common import KEEP_HELP, WholeNumber, app, keep_option_list
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.errors import InvalidInput

PREVIEW_COLUMNS = [Column("time", "Time", "time"), Column("backup", "Backup"),
                   Column("mark", "Mark"), Column("rule", "Kept by")]
TIME_COLUMNS = [column for column in PREVIEW_COLUMNS if column.key != "backup"]
MAX_DAYS = 36600


def keep_options(func):
    for option in reversed(keep_option_list()):
        func = option(func)
    return func


@click.group("retention")
def cli() -> None:
    """Retention policies: what a policy keeps, before it removes anything."""


@cli.command("preview")
@click.argument("ref", metavar="VM/DEF", required=False,
                shell_complete=complete.definitions)
@keep_options
@click.option("--timezone", help="IANA zone of the periods (default: the definition's, or UTC).")
@click.option("--times", "times_file", type=click.File("r"), metavar="FILE",
              help="Backup times, ISO-8601, one a line ('-': stdin).")
@click.option("--schedule", metavar="CRON", help="Simulate this schedule's firings...")
@click.option("--days", type=WholeNumber(1, MAX_DAYS), help="... over the last N days.")
@output_options
def preview(ref, timezone, times_file, schedule, days, fmt, full, **counts) -> None:
    """Mark each backup time keep, remove or protected, with the rule that keeps it.

    Give the times (--times), a schedule to simulate (--schedule with --days),
    or a definition (VM/DEF: its backups, and its policy unless --keep-...
    counts are given). Only ok backups count; the newest one always stays.
    """
    from datetime import datetime, timedelta
    from datetime import timezone as tz

    from esbackup.domain import schedule as schedules
    from esbackup.domain.prune import Policy
    from esbackup.services import retention_view

    if sum(x is not None for x in (ref, times_file, schedule)) != 1:
        raise InvalidInput("give one of VM/DEF, --times FILE or --schedule CRON --days N")
    if (schedule is None) != (days is None):
        raise InvalidInput("--schedule and --days go together")
    given = {rule: counts[f"keep_{rule}"] for rule in KEEP_HELP}
    zone = schedules.validate_timezone(timezone) if timezone else None
    if ref is not None:
        from esbackup.domain import auth
        from esbackup.services import definitions

        a = app()
        d = definitions.find(a.catalog, ref)
        auth.require_vm(a.identity, a.catalog.vm(d.vm), write=False)
        rule = Policy.of(**given) if any(v is not None for v in given.values()) else None
        if zone:
            from dataclasses import replace

            d = replace(d, timezone=zone)
        echo_records(retention_view.of_definition(a.catalog, d, rule), PREVIEW_COLUMNS, fmt,
                     full)
        return
    rule = Policy.of(**given)
    zone = zone or "UTC"
    if times_file is not None:
        times = [parse_time(line, zone, n) for n, line in enumerate(times_file, 1)
                 if line.strip()]
    else:
        now = datetime.now(tz.utc)
        times = schedules.runs_between(schedules.validate_cron(schedule), zone,
                                       now - timedelta(days=days), now)
    echo_records(retention_view.of_times(times, rule, zone), TIME_COLUMNS, fmt, full)


def parse_time(line: str, zone: str, number: int):
    """An ISO-8601 time; one without an offset is in `zone`."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        when = datetime.fromisoformat(line.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"line {number}: not an ISO-8601 time: {line.strip()[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(zone))
