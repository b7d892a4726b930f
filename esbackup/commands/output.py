"""Records -> table / json / csv / tsv / plain, and the shared output options.

Records are plain dicts with raw values (bytes, seconds, ISO 8601 UTC). JSON
prints them whole; csv/tsv print the chosen columns raw for scripts; tables
show sizes, durations and local times for people.
"""
from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import click

from esbackup.domain.models import escape_controls

MACHINE_FORMATS = ("json", "csv", "tsv")
# json indents in Python, ~10x slower than its C encoder, which it uses only
# without `indent`; a flat record's indented form is its C encoding with these
# separators (raw newlines never occur inside encoded strings).
_FLAT_JSON = json.JSONEncoder(separators=(",\n    ", ": "), default=str)
_CONTAINERS = frozenset({dict, list, tuple})
_SCALAR_JSON = json.JSONEncoder(default=str)
JSON_BATCH = 1000  # flat records per C-encoder call
TABLE_WIDTH = 100  # default tables fit this many columns; --full shows everything
MIN_CUT = 8  # a cut text column keeps at least this many characters (or its header)
CUT = "…"
CUTTABLE = frozenset({"text", "list"})
FREE_TEXT = frozenset({"note", "desc", "error", "detail", "why", "verify_error", "policy"})
CUT_LAST = frozenset({"name", "backup", "definition", "schedule"})  # what a row is about


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | size | duration | time | utc | bool | list | rate | times
    full_only: bool = False
    wide: bool = False  # left out of the default table only (csv and tsv keep it)


def output_options(func: Callable) -> Callable:
    """`-f/--format` and `--full` for every command that prints records."""

    @click.option("-f", "--format", "fmt", default="table", show_default=True,
                  callback=lambda ctx, param, value: _checked_format(value),
                  help="table, json, csv, tsv, plain, or any tabulate format name")
    @click.option("--full", is_flag=True, help="Show all columns.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def _checked_format(fmt: str) -> str:
    check_format(fmt)
    return fmt


def check_format(fmt: str) -> None:
    if fmt in (*MACHINE_FORMATS, "table", "plain"):
        return  # without importing tabulate: JSON of 100,000 records never needs it
    from tabulate import tabulate_formats

    if fmt not in (*MACHINE_FORMATS, "table", *tabulate_formats):
        raise click.BadParameter(f"unknown format {fmt!r}", param_hint="'-f/--format'")


def human_size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def local_time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def short_local_time(value: str | None) -> str:
    """A local time to the minute, for a table's columns (`show` and --full: the second
    and the zone; JSON: ISO 8601 UTC)."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")


def _display(value, kind: str, short: bool = False) -> str:
    if short and kind == "time":
        return short_local_time(value)
    return escape_controls(_text(value, kind))


def _text(value, kind: str) -> str:
    if kind == "size":
        return human_size(value)
    if kind == "duration":
        return human_duration(value)
    if kind == "time":
        return local_time(value)
    if kind == "utc":
        return "-" if not value else datetime.fromisoformat(value).astimezone(
            timezone.utc).strftime("%Y-%m-%d %H:%MZ")
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "list":
        return ",".join(str(v) for v in value or [])
    if kind == "rate":
        return "unlimited" if not value else f"{human_size(value)}/s"
    if kind == "times":
        return ", ".join(datetime.fromisoformat(v).astimezone(timezone.utc).strftime(
            "%m-%d %H:%M") for v in value or [])
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "-" if value is None else str(value)


def render(records: list[dict], columns: list[Column], fmt: str = "table",
           full: bool = False) -> str:
    check_format(fmt)
    if fmt == "json":
        return "".join(json_pieces(records))
    shown = [c for c in columns if full or not c.full_only]
    if fmt not in ("csv", "tsv") and not full:
        shown = [c for c in shown if not c.wide]
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow([c.key for c in shown])
        for r in records:
            writer.writerow(["" if r.get(c.key) is None else _raw(r.get(c.key)) for c in shown])
        return buf.getvalue().rstrip("\n")
    from tabulate import tabulate

    fit = fmt == "table" and not full
    rows = [[_display(r.get(c.key), c.kind, fit) for c in shown] for r in records]
    headers = () if fmt == "plain" else [c.header for c in shown]
    if fit:
        rows = fitted(rows, shown)
    import tabulate as tabulate_module

    tabulate_module.MIN_PADDING = 0  # a column as wide as its widest cell or header
    return tabulate(rows, headers=headers, tablefmt="simple" if fmt == "table" else fmt,
                    disable_numparse=True)


def fitted(rows: list[list[str]], columns: list[Column], width: int = TABLE_WIDTH
           ) -> list[list[str]]:
    """Rows whose table ("simple", two spaces between columns) fits `width`: the
    widest text columns are cut, free text (notes, errors) first and what a row
    is about (names, schedules) last, none below `MIN_CUT` (or its header).
    Free text loses its end, names their middle (a backup name keeps its date).
    `--full` shows every cell whole."""
    widths = [max([len(c.header), *(len(row[i]) for row in rows)])
              for i, c in enumerate(columns)]
    floors = [max(len(c.header), MIN_CUT) if c.kind in CUTTABLE else w
              for c, w in zip(columns, widths, strict=True)]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    while excess > 0:
        i = max(range(len(widths)), key=lambda i: (
            widths[i] > floors[i], _cut_rank(columns[i].key), widths[i] - floors[i]))
        if widths[i] <= floors[i]:
            break  # nothing left to cut: more columns would have to go --full
        widths[i] -= 1
        excess -= 1
    return [[_cut(cell, w, c.key in FREE_TEXT)
             for cell, w, c in zip(row, widths, columns, strict=True)] for row in rows]


def _cut_rank(key: str) -> int:
    return 2 if key in FREE_TEXT else 0 if key in CUT_LAST else 1


def _cut(cell: str, width: int, end: bool) -> str:
    if len(cell) <= width:
        return cell
    if end:
        return cell[:width - 1] + CUT
    head = width // 2
    return cell[:head] + CUT + cell[len(cell) - (width - 1 - head):]


# A spreadsheet runs a cell that starts with one of these as a formula; notes
# and descriptions come from dcadmins and from node manifests.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _raw(value):
    """A cell for csv/tsv: numbers stay numbers (a negative size is a number,
    not a formula); text that a spreadsheet would evaluate gets a leading '."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if not isinstance(value, str):
        return value
    return escape_controls("'" + value if value.startswith(FORMULA_STARTS) else value)


def json_pieces(records: Iterable[dict]) -> Iterator[str]:
    """`json.dumps(list(records), indent=2)`, piece by piece: thousands of
    records are written as they come, never held as one string."""
    first, batch = True, []
    for record in records:
        if record and _CONTAINERS.isdisjoint(map(type, record.values())):
            batch.append(record)
            if len(batch) < JSON_BATCH:
                continue
            body, batch = _flat_batch(batch), []
        else:
            body = _flat_batch(batch) + ",\n  " if batch else ""
            body, batch = body + (_record(record) if record else "{}"), []
        yield ("[\n  " if first else ",\n  ") + body
        first = False
    if batch:
        yield ("[\n  " if first else ",\n  ") + _flat_batch(batch)
        first = False
    yield "[]" if first else "\n]"


def _flat_batch(records: list[dict]) -> str:
    """Flat, non-empty records in one C-encoder call. With the record separator
    as item separator, "},<newline>    {" can only be a boundary between records
    (raw newlines never occur inside encoded strings, keys start with a quote)."""
    text = _FLAT_JSON.encode(records)[2:-2]
    return "{\n    " + text.replace("},\n    {", "\n  },\n  {\n    ") + "\n  }"


def _record(record: dict) -> str:
    """A record with containers among its values: each run of scalar items in one
    C-encoder call, the containers through `_indented`."""
    parts: list[str] = []
    flat: dict = {}
    for key, value in record.items():
        if isinstance(value, (dict, list, tuple)):
            if flat:
                parts.append(_FLAT_JSON.encode(flat)[1:-1])
                flat = {}
            parts.append(f"{_SCALAR_JSON.encode(str(key))}: {_indented(value, 2)}")
        else:
            flat[key] = value
    if flat:
        parts.append(_FLAT_JSON.encode(flat)[1:-1])
    return "{\n    " + ",\n    ".join(parts) + "\n  }"


def _indented(value, depth: int) -> str:
    """`value` as json.dumps(indent=2) prints it `depth` levels down; containers
    here, every scalar through the C encoder."""
    inner, outer = "\n" + "  " * (depth + 1), "\n" + "  " * depth
    if isinstance(value, dict) and value:
        items = (f"{inner}{_SCALAR_JSON.encode(str(k))}: {_indented(v, depth + 1)}"
                 for k, v in value.items())
        return "{" + ",".join(items) + outer + "}"
    if isinstance(value, (list, tuple)) and value:
        return "[" + ",".join(inner + _indented(v, depth + 1) for v in value) + outer + "]"
    return _SCALAR_JSON.encode(value)


def echo_records(records: Iterable[dict], columns: list[Column], fmt: str, full: bool) -> None:
    """Print records; JSON streams them (an iterator of records is fine there)."""
    if fmt == "json":
        batch: list[str] = []
        size = 0
        for piece in json_pieces(records):
            batch.append(piece)
            size += len(piece)
            if size >= 1 << 20:
                click.echo("".join(batch), nl=False)
                batch.clear()
                size = 0
        click.echo("".join(batch))
        return
    text = render(list(records), columns, fmt, full)
    if text or fmt == "json":
        click.echo(text)


def echo_record(record: dict, columns: list[Column], fmt: str) -> None:
    """One record: JSON object, or a two-column key/value table."""
    check_format(fmt)
    if fmt == "json":
        click.echo(json.dumps(record, indent=2, default=str))
    elif fmt in ("csv", "tsv"):
        click.echo(render([record], columns, fmt, full=True))
    else:
        from tabulate import tabulate

        rows = [[c.header, _display(record.get(c.key), c.kind)] for c in columns]
        click.echo(tabulate(rows, tablefmt="plain" if fmt == "table" else fmt,
                            disable_numparse=True))


def progress_bar(label: str, total: Callable[[], int | None] | None = None):
    """A rich progress bar on a terminal: returns `advance(n)`; `advance(None)` ends it.

    Off a terminal (cron) it returns None: nothing is drawn, and `total`, which
    estimates the size, is never asked.
    """
    import sys

    if not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn(), transient=True)
    task = bar.add_task(label, total=total() if total else None)
    bar.start()

    def advance(n: int | None) -> None:
        if n is None:
            bar.stop()
        else:
            bar.update(task, advance=n)

    return advance
