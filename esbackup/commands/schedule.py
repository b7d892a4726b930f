import sys
from datetime import datetime, timezone

import click

from esbackup.commands import complete
from esbackup.commands.common import app, known
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.domain import schedule
from esbackup.domain.models import parse_ref
from esbackup.errors import InvalidInput
from esbackup.services import definitions

NEXT_COLUMNS = [Column("local", "Run (definition's zone)"), Column("run", "UTC", "time")]
OVERVIEW_COLUMNS = [
    Column("node", "Node"), Column("vm", "VM"), Column("name", "Definition"),
    Column("type", "Type", wide=True), Column("schedule", "Schedule"),
    Column("timezone", "Time zone"), Column("policy", "Retention", wide=True),
    Column("active", "Active", "bool"),
    Column("next_runs", "Next runs (UTC)", "times"),
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
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--after", help="Start from this time (ISO 8601; default now).")
@output_options
def next_(ref, count, after, fmt, full) -> None:
    """The next runs of a definition, as Debian's cron would fire them."""
    from esbackup.domain import auth

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
@click.option("--node", help="Only this backup node.", shell_complete=complete.nodes)
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True,
              help="How many next runs to show.")
@output_options
def overview(dc, node, runs, fmt, full) -> None:
    """Definitions per backup node with their next runs (the overview)."""
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


HOURS = [f"{h:02d}" for h in range(24)]
MOVE_COLUMNS = [Column("definition", "Definition"), Column("timezone", "Time zone"),
                Column("minutes", "Expected min"), Column("old", "Schedule"),
                Column("new", "Balanced")]
PEAK_COLUMNS = [Column("node", "Node"), Column("slots", "Slots"),
                Column("before", "Peak before"), Column("after", "Peak after")]


@cli.command("load")
@click.option("--node", help="Only this node.", shell_complete=complete.nodes)
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True,
              help="Look this many days ahead.")
@output_options
def load(node, days, fmt, full) -> None:
    """Most backups expected to run at once per node and hour of day (UTC) over
    --days, against the node's slots. A definition occupies its compute node and
    its backup node for its expected duration (median of its last 5 ok runs, else
    estimated from its disk's used size); runs of one disk never overlap (its
    lock makes the next one wait), so they count once."""
    from esbackup.domain import auth
    from esbackup.services import planning as workload

    a = app()
    auth.require_superadmin(a.identity, "schedule load")
    known(a.catalog, node=node)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    loads = workload.active(a.catalog, reporter=a, sessions=a.sessions)
    items = [(name, w.disk, w.definition.schedule, w.definition.timezone, w.minutes)
             for w in loads for name in w.nodes]
    peaks = schedule.concurrent_load(items, start, days)
    records = []
    for n in a.catalog.nodes():
        if node in (None, n.name):
            per_hour = {h: peaks.get((n.name, int(h)), 0) for h in HOURS}
            records.append({"node": n.name, "slots": n.max_backups, **per_hour,
                            "peak": max(per_hour.values())})
    if fmt == "table" and sys.stdout.isatty() and not full:
        show_heatmap(records)
        return
    hours = HOURS if full or fmt != "table" else FOLDED
    records = records if hours is HOURS else [folded(r) for r in records]
    columns = [Column("node", "Node"), Column("slots", "Slots"),
               *(Column(h, h) for h in hours), Column("peak", "Peak")]
    echo_records(records, columns, fmt, full)


HEATMAP_WIDTH = 80
FOLDED = HOURS[::2]  # a default table's column "00" is the hours 00 and 01
LEGEND = ("Column 00: 00:00-01:59 UTC, the most backups running at once. "
          "n= all slots in use, n! more backups than slots.")


def folded(record: dict) -> dict:
    """A load record with two hours per column: the most at once in either."""
    return {"node": record["node"], "slots": record["slots"],
            **{h: max(record[h], record[f"{int(h) + 1:02d}"]) for h in FOLDED},
            "peak": record["peak"]}


def mark(value: int, slots: int) -> str:
    """A count with its state in characters (and colour): "=" all slots in use,
    "!" more than the slots; the legend says so, also under NO_COLOR."""
    if value > slots:
        return f"[red]{value}![/]"
    return f"[yellow]{value}=[/]" if value == slots else f"[green]{value}[/]"


def show_heatmap(records: list[dict], console=None) -> None:
    """The heatmap on the terminal (`console`: rich's), at most 80 columns wide."""
    from rich.console import Console

    console = console or Console()
    console.print(heatmap(records), width=min(console.width, HEATMAP_WIDTH))


def heatmap(records: list[dict]):
    """A rich table of 80 columns: two hours per column, each node's peak marked
    (bold) where it is reached and in its own column."""
    from rich.table import Table

    table = Table(title="Backups running at once (UTC, two hours per column)",
                  caption=LEGEND, box=None, collapse_padding=True, pad_edge=False)
    table.add_column("Node", overflow="ellipsis", no_wrap=True, max_width=24)
    for header in ("Slots", *FOLDED, "Peak"):
        table.add_column(header, justify="right", no_wrap=True)
    for r in map(folded, records):
        slots, peak = r["slots"], r["peak"]
        cells = [mark(r[h], slots) for h in FOLDED]
        cells = [f"[bold]{c}[/]" if r[h] == peak and peak else c
                 for c, h in zip(cells, FOLDED, strict=True)]
        table.add_row(r["node"], str(slots), *cells, f"[bold]{mark(peak, slots)}[/]")
    return table


@cli.command("balance")
@click.option("--node", help="Only move definitions that touch this node.",
              shell_complete=complete.nodes)
@click.option("--window", metavar="HH:MM-HH:MM",
              help="Move start times only into this window, in each definition's zone "
                   "(e.g. 22:00-06:00; default: the whole day).")
@click.option("--apply", "apply_", is_flag=True, help="Change the definitions (else: a plan).")
@click.option("--dry-run", is_flag=True, help="With --apply: only show the plan.")
@click.option("--yes", is_flag=True, help="Apply without asking (needed off a terminal).")
@output_options
def balance(node, window, apply_, dry_run, yes, fmt, full) -> None:
    """Move fixed-time schedules so no node runs more backups at once than its slots.

    A definition occupies its compute and backup node for its expected
    duration. Only schedules with one fixed hour and minute move, by as few and
    as small moves as remove every overloaded minute that can be removed; the
    rest count as load. Prints the plan and each node's peak before and after;
    --apply changes the definitions (asking first on a terminal, --yes off one)
    and prints the commands that undo it.
    """
    import json

    from esbackup.commands.common import confirm_destructive
    from esbackup.domain import auth
    from esbackup.services import planning

    a = app()
    auth.require_superadmin(a.identity, "schedule balance")
    known(a.catalog, node=node)
    moves, peaks = planning.rebalance(a.catalog, datetime.now(timezone.utc), node=node,
                                      window=window, reporter=a, sessions=a.sessions)
    applied = apply_ and not dry_run and bool(moves)
    if applied:
        confirm_destructive(f"{len(moves)} definition(s) will get a new schedule", yes)
        planning.apply(a.catalog, a.identity, moves)
    undo = [undo_command(m) for m in moves] if applied else []
    if fmt == "json":
        click.echo(json.dumps({"moves": moves, "peaks": peaks, "applied": applied,
                               "undo": undo}, indent=2))
        return
    if moves:
        echo_records(moves, MOVE_COLUMNS, fmt, full)
    else:
        click.echo("nothing to move")
    click.echo("")
    echo_records(peaks, PEAK_COLUMNS, fmt, full)
    if undo:
        click.echo("\nto undo:\n" + "\n".join(undo))


def undo_command(move: dict) -> str:
    """The command that gives a moved definition its old schedule back."""
    import shlex

    return shlex.join(["esbackup", "definition", "update", move["definition"],
                       "--schedule", move["old"]])
