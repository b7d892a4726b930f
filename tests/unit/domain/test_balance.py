"""Schedule balancing by node slots and durations: pure planning, and the commands."""
from datetime import datetime, timezone

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import balance, schedule
from esbackup.domain.balance import Item, Window
from esbackup.domain.models import Run
from esbackup.errors import InvalidInput
from esbackup.services import planning as workload

START = datetime(2026, 11, 26, tzinfo=timezone.utc)
NODES = frozenset({"c1", "b1"})
SLOTS = {"c1": 2, "b1": 2}


def final(items: list[Item], plan: balance.Plan) -> list[Item]:
    return [Item(i.key, plan.moves.get(i.key, i.expr), i.tz, i.nodes, i.minutes, i.fixed)
            for i in items]


def most_at_once(items: list[Item], node: str) -> int:
    load = balance.Occupancy(START, SLOTS)
    for item in items:
        load.add(item, item.expr)
    return load.peak(node)


def test_only_fixed_single_times_move():
    assert balance.movable("0 1 * * *") and balance.movable("30 02 * * 0")
    assert not balance.movable("*/15 * * * *")
    assert not balance.movable("0 11,16 * * *")
    assert not balance.movable("0 * * * *")


def test_twenty_at_one_minute_fit_the_slots_and_a_second_run_plans_nothing():
    items = [Item(f"vm{i:02d}/nightly", "0 1 * * *", "UTC", NODES, minutes=30)
             for i in range(20)]
    plan = balance.balance(items, SLOTS, START)
    assert plan.peaks == {"c1": (20, 2), "b1": (20, 2)}
    after = final(items, plan)
    assert most_at_once(after, "c1") == 2 and most_at_once(after, "b1") == 2
    assert len(plan.moves) == 18  # two keep their time: the slots hold them
    assert all(m.endswith(" * * *") for m in plan.moves.values())
    again = balance.balance(after, SLOTS, START)
    assert again.moves == {} and again.peaks == {"c1": (2, 2), "b1": (2, 2)}


def test_plans_are_deterministic():
    items = [Item(f"vm{i}/n", "0 1 * * *", "UTC", NODES, minutes=45) for i in range(7)]
    assert balance.balance(items, SLOTS, START) == balance.balance(list(reversed(items)),
                                                                   SLOTS, START)


def test_long_and_short_backups_interleave_inside_a_window():
    """One 3-hour backup and six of 30 minutes fit 01:00-04:00 on two slots only
    if the short ones run one after another beside the long one."""
    items = [Item("big/n", "0 1 * * *", "UTC", NODES, minutes=180)]
    items += [Item(f"s{i}/n", "0 1 * * *", "UTC", NODES, minutes=30) for i in range(6)]
    plan = balance.balance(items, SLOTS, START, Window(60, 240))
    after = final(items, plan)
    assert most_at_once(after, "c1") == 2
    assert "big/n" not in plan.moves
    starts = sorted(balance.time_of(i.expr) for i in after if i.key != "big/n")
    assert starts == [60, 90, 120, 150, 180, 210]
    assert balance.balance(after, SLOTS, START, Window(60, 240)).moves == {}


def test_window_in_each_definitions_zone_across_midnight():
    items = [Item(f"p{i}/n", "0 23 * * *", "Europe/Prague", NODES, minutes=60)
             for i in range(4)]
    plan = balance.balance(items, SLOTS, START, balance.parse_window("22:00-01:00"))
    times = sorted(balance.time_of(e) for e in plan.moves.values())
    assert times == [0, 0]  # the hour after 23:00 Prague time (22:00 is as near: a tie)
    assert not Window(22 * 60, 60).fits(30, 60)  # it would end after the window
    assert Window(22 * 60, 60).fits(23 * 60 + 30, 60)


def test_separate_nodes_do_not_conflict():
    items = [Item("a/n", "0 1 * * *", "UTC", frozenset({"c1", "b1"}), 120),
             Item("b/n", "0 1 * * *", "UTC", frozenset({"c2", "b2"}), 120),
             Item("c/n", "0 1 * * *", "UTC", frozenset({"c1", "b2"}), 120)]
    # one slot each: only the one sharing both nodes moves, the nearest way (ties: earlier)
    assert balance.balance(items, {}, START).moves == {"c/n": "0 3 * * *"}


def test_fixed_items_are_load_only_and_time_zones_count():
    items = [Item("a/n", "0 2 * * *", "Europe/Prague", frozenset({"b1"}), 30, fixed=True),
             Item("b/n", "0 1 * * *", "UTC", frozenset({"b1"}), 30)]  # the same instant
    plan = balance.balance(items, {"b1": 1}, START)
    assert set(plan.moves) == {"b/n"}
    assert plan.peaks == {"b1": (2, 1)}


def test_overload_that_cannot_go_stays_and_is_reported():
    items = [Item(f"w{i}/n", "*/10 * * * *", "UTC", frozenset({"b1"}), 30) for i in range(3)]
    plan = balance.balance(items, {"b1": 1}, START)
    assert plan.moves == {} and plan.peaks["b1"][1] == plan.peaks["b1"][0] > 1


def test_window_syntax():
    assert balance.parse_window("22:00-06:00") == Window(1320, 360)
    assert Window(1320, 360).length == 480 and Window().length == 1440
    for bad in ("22-06", "24:00-01:00", "1:00-2:00", "22:00 06:00"):
        with pytest.raises(InvalidInput):
            balance.parse_window(bad)


def test_concurrent_load_counts_durations_not_starts():
    start = datetime(2026, 11, 26, 0, 0, tzinfo=timezone.utc)
    items = [("b1", "d1", "0 1 * * *", "UTC", 150), ("b1", "d2", "30 2 * * *", "UTC", 10),
             ("b1", "d3", "50 23 * * *", "UTC", 20)]
    peaks = schedule.concurrent_load(items, start, 2)
    assert peaks[("b1", 1)] == 1 and peaks[("b1", 2)] == 2 and peaks[("b1", 3)] == 1
    assert peaks[("b1", 0)] == 1  # the 23:50 run of the day before still runs at midnight
    assert ("b1", 4) not in peaks


def test_expected_minutes_median_of_recent_ok_runs_else_size_estimate():
    assert workload.ESTIMATE_RATE == 50 * 10**6
    assert workload.estimate(30 * 10**9) == 10 and workload.estimate(30 * 10**9 + 1) == 11
    assert workload.estimate(6 * 10**6, bwlimit=10**5) == 1
    assert workload.estimate(60 * 10**6, bwlimit=10**5) == 10


def add_runs(catalog_path, ref: str, durations: list[float], outcome: str = "ok") -> None:
    """Runs of the definition `ref` (VM/NAME, in the catalog) that took `durations`."""
    cat = Catalog.open(catalog_path)
    d = cat.definition(*ref.split("/"))
    for i, seconds in enumerate(durations):
        cat.add_run(Run(definition=ref, definition_id=d.id, trigger="cron", outcome=outcome,
                        started=f"2026-11-{10 + i:02d}T01:00:00+00:00", duration=seconds))
    cat.close()


def test_recent_durations_one_query_newest_first(inventory):
    inventory.ok("definition", "create", "web01/n", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3", "--timezone", "UTC")
    add_runs(inventory.catalog, "web01/n", [60, 120, 180, 240, 300, 3600])
    add_runs(inventory.catalog, "web01/n", [9999], outcome="failed")
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "n")
    assert cat.recent_durations(5) == {d.id: [3600, 300, 240, 180, 120]}


def define_on_own_disks(esb, count: int, schedule: str = "0 1 * * *") -> list[str]:
    """`count` servers on c1 (vm00, vm01, ...), each a definition "n" of its own disk."""
    refs = []
    for i in range(count):
        esb.ok("vm", "create", f"vm{i:02d}", "--node", "c1", "--disk", f"1=zones/vm{i:02d}")
        esb.ok("definition", "create", f"vm{i:02d}/n", "--disk-id", "1", "--type", "dataset",
               "--node", "b1", "--storage", "tank", "--schedule", schedule, "--retention", "3",
               "--timezone", "UTC")
        refs.append(f"vm{i:02d}/n")
    return refs


def test_balance_and_load_commands(inventory):
    inventory.ok("node", "update", "c1", "--max-backups", "1")
    for ref in define_on_own_disks(inventory, 3):
        add_runs(inventory.catalog, ref, [1700, 1800, 1900])  # 30 minutes
    load = inventory.json("schedule", "load", "--node", "c1")
    assert load[0]["slots"] == 1 and load[0]["01"] == 3 and load[0]["peak"] == 3
    plan = inventory.json("schedule", "balance", "--window", "00:00-03:00")
    assert len(plan["moves"]) == 2 and all(p["old"] == "0 1 * * *" for p in plan["moves"])
    assert {p["node"]: (p["before"], p["after"]) for p in plan["peaks"]} == {
        "c1": (3, 1), "b1": (3, 1)}  # c1 has one slot: all three apart
    inventory.ok("schedule", "balance", "--window", "00:00-03:00", "--apply", "--yes")
    schedules = {d["vm"]: d["schedule"] for d in inventory.json("definition", "list")}
    assert len(set(schedules.values())) == 3
    assert inventory.json("schedule", "balance", "--window", "00:00-03:00")["moves"] == []
    table = inventory.ok("schedule", "balance").stdout
    assert "nothing to move" in table and "Peak after" in table
    assert inventory.json("schedule", "load", "--node", "c1")[0]["peak"] == 1
    inventory.fails(2, "schedule", "balance", "--window", "25:00-01:00")


def test_load_heatmap_colours_against_the_slots():
    from esbackup.commands.schedule import HOURS, heatmap

    record = {"node": "b1", "slots": 2, **{h: 0 for h in HOURS}, "peak": 3} | {
        "01": 2, "02": 3, "04": 1}
    table = heatmap([record])
    cells = {c.header: c._cells[0] for c in table.columns}
    assert cells["00"] == "[yellow]2=[/]" and cells["04"] == "[green]1[/]"
    assert cells["02"] == "[bold][red]3![/][/]" and cells["Slots"] == "2"  # the peak: bold
    assert cells["Peak"] == "[bold][red]3![/][/]"


def test_definitions_without_history_on_unreachable_nodes_assume_an_hour(inventory):
    inventory.ok("definition", "create", "web01/new", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3", "--timezone", "UTC")
    result = inventory.ok("schedule", "load", "-f", "json", "--node", "b1")
    assert "disk sizes on c1 unknown" in result.stderr
    assert f"{workload.UNKNOWN_MINUTES} minutes assumed" in result.stderr
    import json

    (b1,) = json.loads(result.stdout)
    assert (b1["01"], b1["02"]) == (1, 0)  # 01:00-02:00, an hour


def test_twenty_at_one_minute_through_the_commands(inventory):
    for ref in define_on_own_disks(inventory, 20):
        add_runs(inventory.catalog, ref, [1750] * 5)
    assert max(n["peak"] for n in inventory.json("schedule", "load")) == 20
    plan = inventory.json("schedule", "balance", "--apply", "--yes")
    assert plan["applied"] and len(plan["moves"]) == 18
    assert {p["node"]: (p["before"], p["after"]) for p in plan["peaks"]} == {
        "b1": (20, 2), "c1": (20, 2)}
    load = inventory.json("schedule", "load")
    assert {n["node"]: n["peak"] for n in load} == {"b1": 2, "c1": 2}
    assert all(n["slots"] == 2 for n in load)
    assert inventory.json("schedule", "balance")["moves"] == []


def test_definitions_of_one_disk_never_count_twice_at_once(inventory):
    """web01's disk 1 has a daily and a weekly definition at 01:00, an hour each:
    the disk lock runs them one after the other, so c1 (one slot) is not over,
    and balance has nothing to move."""
    inventory.ok("node", "update", "c1", "--max-backups", "1")
    for name, schedule_ in (("daily", "0 1 * * *"), ("weekly", "0 1 * * 0")):
        inventory.ok("definition", "create", f"web01/{name}", "--disk-id", "1", "--type",
                     "dataset", "--node", "b1", "--storage", "tank", "--schedule", schedule_,
                     "--retention", "3", "--timezone", "UTC")
        add_runs(inventory.catalog, f"web01/{name}", [3000] * 3)
    (c1,) = inventory.json("schedule", "load", "--node", "c1")
    assert c1["01"] == 1 and c1["peak"] == 1
    plan = inventory.json("schedule", "balance")
    assert plan["moves"] == [] and {p["node"]: p["before"] for p in plan["peaks"]} == {
        "b1": 1, "c1": 1}


def test_the_balancer_counts_a_disk_once_however_its_runs_overlap():
    one_disk = [Item("a/daily", "0 1 * * *", "UTC", NODES, 60, disk="a1"),
                Item("a/weekly", "0 1 * * 0", "UTC", NODES, 60, disk="a1"),
                Item("b/often", "*/10 * * * *", "UTC", frozenset({"b1"}), 30)]
    load = balance.Occupancy(START, SLOTS)
    for item in one_disk:
        load.add(item, item.expr)
    assert load.peak("c1") == 1 and load.peak("b1") == 2  # not 3, nor b/often's 3 at once
    assert balance.balance(one_disk, {"c1": 1, "b1": 2}, START).moves == {}


def test_overview_shows_the_next_runs_utc_time_not_a_line_that_breaks_at_dst(inventory):
    """"0 2 * * *" in Prague is "0 1 * * *" in UTC in winter and "0 0 * * *" in
    summer: no one UTC line stays true, so the table shows the next run in UTC."""
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 2 * * *",
                 "--retention", "3", "--timezone", "Europe/Prague")
    (d,) = inventory.json("definition", "list")
    utc = datetime.fromisoformat(d["next_run"]).astimezone(timezone.utc)
    for command, header_, shown in (
            (["schedule", "overview"], "Next runs (UTC)", "%m-%d %H:%M"),
            (["definition", "list", "--full"], "Next run (UTC)", "%Y-%m-%d %H:%MZ")):
        header, _, row = inventory.ok(*command).stdout.splitlines()
        assert header_ in header and "Schedule (UTC)" not in header
        assert utc.strftime(shown) in row


def three_at_one_on_one_slot(inventory) -> list[str]:
    inventory.ok("node", "update", "c1", "--max-backups", "1")
    refs = define_on_own_disks(inventory, 3)
    for ref in refs:
        add_runs(inventory.catalog, ref, [1800] * 3)
    return refs


def schedules(inventory) -> dict[str, str]:
    return {d["vm"]: d["schedule"] for d in inventory.json("definition", "list")}


def test_balance_apply_off_a_terminal_needs_yes_and_changes_nothing_without(inventory):
    three_at_one_on_one_slot(inventory)
    before = inventory.catalog.read_bytes()
    error = inventory.fails(2, "schedule", "balance", "--apply")
    assert error.count("\n") == 1 and "--yes" in error
    assert inventory.catalog.read_bytes() == before


def test_balance_apply_dry_run_only_plans(inventory):
    three_at_one_on_one_slot(inventory)
    before = inventory.catalog.read_bytes()
    plan = inventory.json("schedule", "balance", "--apply", "--dry-run")
    assert len(plan["moves"]) == 2 and not plan["applied"] and plan["undo"] == []
    assert inventory.catalog.read_bytes() == before


def test_balance_apply_prints_the_commands_that_undo_it(inventory):
    import shlex

    three_at_one_on_one_slot(inventory)
    old = schedules(inventory)
    out = inventory.ok("schedule", "balance", "--apply", "--yes").stdout
    assert schedules(inventory) != old
    undo = out.split("to undo:\n")[1].splitlines()
    assert len(undo) == 2
    for line in undo:
        argv = shlex.split(line)
        assert argv[:3] == ["esbackup", "definition", "update"]
        inventory.ok(*argv[1:])
    assert schedules(inventory) == old


@pytest.mark.parametrize("answer, applied", [("n\n", False), ("y\n", True)])
def test_balance_apply_on_a_terminal_asks_first(inventory, monkeypatch, answer, applied):
    import types

    from esbackup.commands import common

    three_at_one_on_one_slot(inventory)
    old = schedules(inventory)
    terminal = types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(common, "sys", terminal)
    result = inventory("schedule", "balance", "--apply", input=answer)
    assert "2 definition(s) will get a new schedule. Continue?" in result.stderr
    assert result.exit_code == (0 if applied else 1)
    assert (schedules(inventory) != old) == applied
