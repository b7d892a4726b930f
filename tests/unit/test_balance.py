"""Schedule balancing: pure planning, and the command on a real catalog."""
from datetime import datetime, timezone

from esbackup import balance
from esbackup.balance import Item

START = datetime(2026, 11, 26, tzinfo=timezone.utc)


def test_only_fixed_single_times_move():
    assert balance.movable("0 1 * * *") and balance.movable("30 02 * * 0")
    assert not balance.movable("*/15 * * * *")
    assert not balance.movable("0 11,16 * * *")
    assert not balance.movable("0 * * * *")


def test_candidates_nearest_first_and_keep_day_fields():
    cands = balance.candidates("30 02 * * 0")
    assert cands[0] == "30 2 * * 0"
    assert all(c.endswith(" * * 0") for c in cands)
    hours = {int(c.split()[1]) for c in cands}
    assert hours == {0, 1, 2, 3, 4}


def test_spreads_colliding_nightly_backups():
    items = [Item(f"vm{i}/nightly", "0 1 * * *", "UTC", frozenset({"c1", "b1"}))
             for i in range(4)]
    moves = balance.balance(items, START)
    final = {i.key: moves.get(i.key, i.expr) for i in items}
    starts = sorted(int(e.split()[1]) * 60 + int(e.split()[0]) for e in final.values())
    assert all(b - a > 30 for a, b in zip(starts, starts[1:], strict=False))
    assert len(moves) == 3  # one keeps its time


def test_separate_nodes_do_not_conflict():
    items = [Item("a/n", "0 1 * * *", "UTC", frozenset({"c1", "b1"})),
             Item("b/n", "0 1 * * *", "UTC", frozenset({"c2", "b2"}))]
    assert balance.balance(items, START) == {}


def test_fixed_items_are_load_only_and_time_zones_count():
    items = [Item("a/n", "0 2 * * *", "Europe/Prague", frozenset({"b1"}), fixed=True),
             Item("b/n", "0 1 * * *", "UTC", frozenset({"b1"}))]  # the same instant
    moves = balance.balance(items, START)
    assert set(moves) == {"b/n"}


def test_balance_command_plans_and_applies(inventory):
    for i in range(3):
        inventory.ok("definition", "create", f"web01/n{i}", "--disk-id", "1", "--type",
                     "dataset", "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                     "--retention", "3", "--timezone", "UTC")
    plan = inventory.json("schedule", "balance")
    assert len(plan) == 2 and all(p["old"] == "0 1 * * *" for p in plan)
    inventory.ok("schedule", "balance", "--apply")
    schedules = {d["name"]: d["schedule"] for d in inventory.json("definition", "list")}
    assert len(set(schedules.values())) == 3
    assert inventory.ok("schedule", "balance").stdout.strip() == "schedules are already spread"
