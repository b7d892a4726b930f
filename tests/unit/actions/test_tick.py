"""Which definitions the scheduler's tick finds due (actions/tick.py's due())."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from esbackup.actions import tick
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Run
from tests.unit.shared import BOTH_BACKENDS, UTC

BASE = ["--disk-id", "1", "--type", "dataset", "--node", "b1", "--storage", "tank",
        "--retention", "3"]
NOW = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)


@pytest.fixture
def scheduled(inventory):
    """Definitions of web01 around NOW = 2026-11-26 01:30 UTC; yields an open Catalog."""
    for name, cron, zone, extra in [
        ("hourly", "0 * * * *", "UTC", []),          # fired 01:00
        ("nightly", "0 1 * * *", "UTC", []),         # fired 01:00
        ("prague", "15 2 * * *", "Europe/Prague", []),  # 02:15 CET = 01:15 UTC
        ("early", "0 0 * * *", "UTC", []),           # 00:00: more than an hour ago
        ("later", "45 1 * * *", "UTC", []),          # not yet
        ("off", "0 1 * * *", "UTC", ["--inactive"]),
    ]:
        inventory.ok("definition", "create", f"web01/{name}", *BASE, "--schedule", cron,
                     "--timezone", zone, *extra)
    cat = Catalog.open(inventory.catalog)
    cat.conn.execute("UPDATE definitions SET scheduled_since = ?", (LONG_AGO,))  # before NOW
    yield cat
    cat.close()


LONG_AGO = "2026-01-01T00:00:00+00:00"


def due_names(cat, now=NOW) -> list[str]:
    return sorted(d.name for d, _ in tick.due(cat, now))


@BOTH_BACKENDS
def test_due_fired_in_the_last_hour(scheduled):
    assert due_names(scheduled) == ["hourly", "nightly", "prague"]
    assert due_names(scheduled, NOW.replace(minute=59)) == ["hourly", "later", "nightly",
                                                           "prague"]
    assert due_names(scheduled, NOW + timedelta(hours=2)) == ["hourly"]


def run_of(cat, name: str, trigger: str, started: str, **fields) -> Run:
    d = cat.definition("web01", name)
    return Run(d.ref, trigger, started, definition_id=d.id, **fields)


@BOTH_BACKENDS
def test_not_due_after_a_run_since_the_firing(scheduled):
    scheduled.add_run(run_of(scheduled, "nightly", "tick", "2026-11-26T01:00:05+00:00",
                             outcome="failed", error="x"))
    scheduled.add_run(run_of(scheduled, "hourly", "cron", "2026-11-26T00:59:59+00:00",
                             outcome="ok"))
    scheduled.add_run(run_of(scheduled, "prague", "manual", "2026-11-26T01:15:00+00:00",
                             outcome="skipped"))
    assert due_names(scheduled) == ["hourly"]
    # the next firing makes it due again
    assert due_names(scheduled, datetime(2026, 11, 27, 1, 20, tzinfo=UTC)) == [
        "hourly", "nightly", "prague"]


@BOTH_BACKENDS
def test_due_at_its_minute_never_before(scheduled):
    """A firing is due from its very second; a tick a moment before it (second
    59.5 of the minute before) leaves it to the next tick."""
    at = datetime(2026, 11, 26, 1, 45, tzinfo=UTC)  # "later" fires at 01:45
    assert "later" in due_names(scheduled, at)
    assert "later" not in due_names(scheduled, at - timedelta(milliseconds=500))


@BOTH_BACKENDS
def test_inactive_never_due(scheduled):
    for minute in range(0, 60, 7):
        assert "off" not in due_names(scheduled, NOW.replace(hour=1, minute=minute))


def test_a_definition_made_after_its_firing_waits_for_the_next(inventory):
    """Created at 06:24: the 06:00 firing is not its own (it once ran at 06:28)."""
    inventory.ok("definition", "create", "web01/late", *BASE, "--schedule", "0 6 * * *")
    cat = Catalog.open(inventory.catalog)
    cat.conn.execute("UPDATE definitions SET scheduled_since = '2026-11-26T06:24:00+00:00'")
    assert due_names(cat, datetime(2026, 11, 26, 6, 28, tzinfo=UTC)) == []
    assert due_names(cat, datetime(2026, 11, 27, 6, 0, 30, tzinfo=UTC)) == ["late"]


@pytest.mark.parametrize("change", [("--schedule", "30 * * * *"), ("--timezone", "Asia/Tokyo"),
                                    ("--active",)], ids=" ".join)
def test_activating_or_rescheduling_starts_the_schedule_anew(inventory, change):
    extra = ["--inactive"] if change == ("--active",) else []
    inventory.ok("definition", "create", "web01/x", *BASE, "--schedule", "30 * * * *",
                 "--timezone", "UTC", *extra)
    cat = Catalog.open(inventory.catalog)
    cat.conn.execute("UPDATE definitions SET scheduled_since = ?", (LONG_AGO,))
    if change[0] == "--schedule":
        inventory.ok("definition", "update", "web01/x", "--schedule", "0 * * * *")
    inventory.ok("definition", "update", "web01/x", *change)
    since = datetime.fromisoformat(cat.definition("web01", "x").scheduled_since)
    assert abs(since - datetime.now(UTC)) < timedelta(minutes=5)
    assert due_names(cat, since) == []  # its last firing came before the change
    assert due_names(cat, since + timedelta(minutes=61)) == ["x"]  # an hourly one fired since


def test_other_changes_keep_the_schedules_start(inventory):
    inventory.ok("definition", "create", "web01/x", *BASE, "--schedule", "0 * * * *")
    cat = Catalog.open(inventory.catalog)
    cat.conn.execute("UPDATE definitions SET scheduled_since = ?", (LONG_AGO,))
    inventory.ok("definition", "update", "web01/x", "--desc", "moved", "--retention", "5")
    inventory.ok("definition", "update", "web01/x", "--active")  # it already was
    assert cat.definition("web01", "x").scheduled_since == LONG_AGO
