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
    yield cat
    cat.close()


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
