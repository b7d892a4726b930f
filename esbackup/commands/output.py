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
from datetime import datetime

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


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | size | duration | time | bool | list | rate | times
    full_only: bool = False


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


def _display(value, kind: str) -> str:
    return escape_controls(_text(value, kind))


def _text(value, kind: str) -> str:
    if kind == "size":
        return human_size(value)
    if kind == "duration":
        return human_duration(value)
    if kind == "time":
        return local_time(value)
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "list":
        return ",".join(str(v) for v in value or [])
    if kind == "rate":
        return "unlimited" if not value else f"{human_size(value)}/s"
    if kind == "times":
        return ", ".join(datetime.fromisoformat(v).astimezone().strftime("%m-%d %H:%M")
                         for v in value or [])
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "-" if value is None else str(value)


def render(records: list[dict], columns: list[Column], fmt: str = "table",
           full: bool = False) -> str:
    check_format(fmt)
    if fmt == "json":
        return "".join(json_pieces(records))
    shown = [c for c in columns if full or not c.full_only]
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow([c.key for c in shown])
        for r in records:
            writer.writerow(["" if r.get(c.key) is None else _raw(r.get(c.key)) for c in shown])
        return buf.getvalue().rstrip("\n")
    from tabulate import tabulate

    rows = [[_display(r.get(c.key), c.kind) for c in shown] for r in records]
    headers = () if fmt == "plain" else [c.header for c in shown]
    return tabulate(rows, headers=headers, tablefmt="simple" if fmt == "table" else fmt,
                    disable_numparse=True)


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
