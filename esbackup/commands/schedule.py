from datetime import datetime, timedelta, timezone

import click

from esbackup import definitions, schedule
from esbackup.commands.common import app, known
from esbackup.errors import InvalidInput
from esbackup.models import parse_ref
from esbackup.output import Column, echo_records, output_options

NEXT_COLUMNS = [Column("local", "Run (definition's zone)"), Column("run", "UTC", "time")]
OVERVIEW_COLUMNS = [
    Column("node", "Backup node"), Column("vm", "VM"), Column("name", "Definition"),
    Column("type", "Type"), Column("schedule", "Schedule"), Column("timezone", "Time zone"),
    Column("schedule_utc", "Schedule (UTC)"), Column("retention", "Retention"),
    Column("active", "Active", "bool"), Column("next_runs", "Next runs", "times"),
    Column("compute_node", "Compute node", full_only=True),
    Column("disk_id", "Disk ID", full_only=True), Column("desc", "Description", full_only=True),
    Column("created", "Created", "time", full_only=True),
]


def parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"invalid time {value!r}: use ISO 8601, e.g. 2026-11-26T10:00Z") \
            from None
    return moment if moment.tzinfo else moment.astimezone()


@click.group("schedule")
def cli() -> None:
    """When backups run: next runs, overview per node, load per hour."""


@cli.command("next")
@click.argument("ref", metavar="VM/NAME")
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--after", help="Start from this time (ISO 8601; default now).")
@output_options
def next_(ref, count, after, fmt, full) -> None:
    """The next runs of a definition, as Debian's cron would fire them."""
    from esbackup import auth

    a = app()
    d = a.catalog.definition(*parse_ref(ref, "definition"))
    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=False)
    runs = schedule.next_runs(d.schedule, d.timezone, parse_time(after), count)
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(d.timezone)
    records = [{"run": r.isoformat(),
                "local": r.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")} for r in runs]
    echo_records(records, NEXT_COLUMNS, fmt, full)


@cli.command("overview")
@click.option("--dc", help="Only this DC.")
@click.option("--node", help="Only this backup node.")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True,
              help="How many next runs to show.")
@output_options
def overview(dc, node, runs, fmt, full) -> None:
    """Definitions per backup node with their next runs (the seed's overview)."""
    a = app()
    known(a.catalog, dc=dc, node=node)
    now = datetime.now(timezone.utc)
    compute_of = {vm.hostname: vm.node for vm in a.catalog.vms_without_disks()}
    records = []
    for d in sorted(definitions.visible(a.catalog, a.identity, dc=dc, node=node),
                    key=lambda d: (d.node, d.vm, d.name)):
        nexts = schedule.next_runs(d.schedule, d.timezone, now, runs) if d.active else []
        record = definitions.record(d, now) | {
            "next_runs": [r.isoformat() for r in nexts],
            "compute_node": compute_of[d.vm]}
        records.append(record)
    echo_records(records, OVERVIEW_COLUMNS, fmt, full)


@cli.command("load")
@click.option("--node", help="Only this node.")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True,
              help="Look this many days ahead.")
@output_options
def load(node, days, fmt, full) -> None:
    """Backups starting per node and hour of day (UTC), averaged over --days;
    a definition counts on its compute node and on its backup node."""
    from esbackup import auth

    a = app()
    auth.require_superadmin(a.identity, "schedule load")
    known(a.catalog, node=node)
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    compute_of = {vm.hostname: vm.node for vm in a.catalog.vms_without_disks()}
    items = []
    for d in a.catalog.definitions(active=True):
        for name in {d.node, compute_of[d.vm]}:
            items.append((name, d.schedule, d.timezone))
    counts = schedule.hourly_load(items, start, start + timedelta(days=days))
    names = sorted({k for k, _ in counts} | ({node} if node else set()))
    records = []
    for name in names:
        if node and name != node:
            continue
        per_hour = {f"{h:02d}": round(counts.get((name, h), 0) / days, 2) for h in range(24)}
        records.append({"node": name, **per_hour,
                        "peak": max(per_hour.values()) if per_hour else 0})
    columns = [Column("node", "Node"), *(Column(f"{h:02d}", f"{h:02d}") for h in range(24)),
               Column("peak", "Peak")]
    echo_records(records, columns, fmt, full)


@cli.command("balance")
@click.option("--node", help="Only move definitions that touch this node.")
@click.option("--apply", "apply_", is_flag=True, help="Change the definitions (else: a plan).")
@output_options
def balance(node, apply_, fmt, full) -> None:
    """Spread nightly/weekly start times to cut overlap on nodes.

    Only schedules with one fixed hour and minute move, by at most two hours
    within their day; the rest count as load. Prints the plan; --apply
    changes the definitions.
    """
    from esbackup import auth
    from esbackup import balance as balancer

    a = app()
    auth.require_superadmin(a.identity, "schedule balance")
    known(a.catalog, node=node)
    active = a.catalog.definitions(active=True)
    compute_of = {vm.hostname: vm.node for vm in a.catalog.vms_without_disks()}
    items = []
    for d in active:
        nodes = frozenset({d.node, compute_of[d.vm]})
        items.append(balancer.Item(d.ref, d.schedule, d.timezone, nodes,
                                   fixed=node is not None and node not in nodes))
    moves = balancer.balance(items, datetime.now(timezone.utc))
    records = []
    for d in active:
        if d.ref in moves:
            records.append({"definition": d.ref, "timezone": d.timezone, "old": d.schedule,
                            "new": moves[d.ref]})
            if apply_:
                definitions.update(a.catalog, a.identity, d, {"schedule": moves[d.ref]})
    columns = [Column("definition", "Definition"), Column("timezone", "Time zone"),
               Column("old", "Schedule"), Column("new", "Balanced")]
    if records or fmt == "json":
        echo_records(records, columns, fmt, full)
    else:
        click.echo("schedules are already spread")
