"""Rendering records as table, JSON and CSV (commands/output.py)."""
from __future__ import annotations

import csv
import io
import json

import click
import pytest

from esbackup.commands.output import Column, human_duration, human_size, json_pieces, render

COLUMNS = [Column("name", "Name"), Column("size", "Size", "size"),
           Column("duration", "Duration", "duration"), Column("ok", "OK", "bool"),
           Column("note", "Note", full_only=True)]
RECORDS = [{"name": "daily-20261126_010000", "size": 1536, "duration": 3725.0, "ok": True,
            "note": "n", "created": "2026-11-26T01:00:00+00:00"}]


def test_human_units():
    assert human_size(1536) == "1.5 KiB"
    assert human_size(512) == "512 B"
    assert human_size(10 * 1024**3) == "10.0 GiB"
    assert human_size(None) == "-"
    assert human_duration(3725) == "1h02m05s"
    assert human_duration(65) == "1m05s"
    assert human_duration(5.4) == "5s"
    assert human_duration(None) == "-"


def test_render_json_is_raw():
    assert json.loads(render(RECORDS, COLUMNS, "json")) == RECORDS


def test_render_table_is_for_people():
    table = render(RECORDS, COLUMNS, "table")
    assert "1.5 KiB" in table and "1h02m05s" in table and "yes" in table
    assert "Note" not in table and "Note" in render(RECORDS, COLUMNS, "table", full=True)
    assert "1536" not in table


def test_render_csv_is_raw():
    assert render(RECORDS, COLUMNS, "csv").splitlines() == [
        "name,size,duration,ok", "daily-20261126_010000,1536,3725.0,True"]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_and_tsv_text_a_spreadsheet_would_run_gets_a_quote_and_numbers_stay(fmt):
    notes = ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", "a=b", "'x"]
    records = [{"note": n, "size": -5, "rate": -0.5} for n in notes]
    columns = [Column("note", "Note"), Column("size", "Size"), Column("rate", "Rate")]
    rows = list(csv.reader(io.StringIO(render(records, columns, fmt)),
                           delimiter="," if fmt == "csv" else "\t"))
    assert rows == [["note", "size", "rate"]] + [[cell, "-5", "-0.5"] for cell in [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-1+2", "'@SUM(A1)", "'\\tx", "'\\rx", "a=b",
        "'x"]]


def test_render_unknown_format():
    with pytest.raises(click.BadParameter):
        render(RECORDS, COLUMNS, "nope")


@pytest.mark.parametrize("records", [
    [], [{}], [{"a": 1, "b": 'x, \n"y": {', "c": None, "d": 1.5, "e": True, "f": "⚑"}],
    [{"a": [1, 2], "b": {"c": [], "d": {}}}, {"z": "flat"}],
    [{"next": ["2026-11-30T01:00:00+00:00", None], "deep": {"x": [{"y": [1.25, False]}]}}],
])
def test_json_pieces_print_exactly_what_json_dumps_indent_2_prints(records):
    assert "".join(json_pieces(records)) == json.dumps(records, indent=2)


def test_json_pieces_of_many_records_batched_and_mixed():
    flat = [{"name": f"b{i}", "note": "},\n    {" if i % 7 else "}", "size": i, "ok": None}
            for i in range(2500)]
    records = flat[:1200] + [{}, {"runs": ["x", {"y": 1}]}] + flat[1200:] + [{"z": []}]
    assert "".join(json_pieces(records)) == json.dumps(records, indent=2)
    assert "".join(json_pieces(iter(flat))) == json.dumps(flat, indent=2)
