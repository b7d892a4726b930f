"""check and copies (issue 20): a lost primary with a good copy is a WARNING, one with
no good location CRITICAL, a scheduled copy more than two periods behind a WARNING."""
from datetime import datetime, timedelta, timezone

from esbackup.catalog.core import Catalog
from esbackup.services import health
from tests.unit.services.catalog_rows import add_backup, define

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def with_b2(inventory, *copy_args):
    define(inventory)
    inventory.ok("node", "create", "b2", "--address", "127.0.0.4", "--backup", "--no-compute",
                 "--no-connect")
    inventory.ok("storage", "create", "b2", "vault", "--zpool", "vault")
    inventory.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                 *copy_args)
    return Catalog.open(inventory.catalog)


def levels(cat, kind):
    return [(f.level, f.text) for _, _, found in [health.assess(cat, NOW, True)]
            for f in found if f.kind == kind]


def test_a_lost_primary_is_a_warning_while_a_copy_is_good_and_critical_without(inventory):
    cat = with_b2(inventory, "--after-backup")
    held = add_backup(cat, "daily-20261126_010000", status="lost")
    add_backup(cat, "daily-20261127_010000", status="lost")
    c = cat.copy_definitions()[0]
    loc = cat.add_location(held.id, "b2", "vault", c.id, status="ok", created=held.created)
    assert levels(cat, health.LOST) == [
        (health.WARNING, "backup web01/daily-20261126_010000 is lost on b1; its copy on b2 "
                         "is ok"),
        (health.CRITICAL, "backup web01/daily-20261127_010000 is lost")]
    cat.update_location(loc, status="lost")
    assert [level for level, _ in levels(cat, health.LOST)] == [health.CRITICAL] * 2


def test_a_copy_more_than_two_periods_behind_warns(inventory):
    cat = with_b2(inventory, "--schedule", "0 3 * * *")
    c = cat.copy_definitions()[0]
    cat.conn.execute("UPDATE copies SET created = ?", ((NOW - timedelta(days=7)).isoformat(),))
    cat.note_copy_run(c, last_ok=(NOW - timedelta(days=2, hours=1)).isoformat())
    assert levels(cat, health.COPY_BEHIND) == []  # two periods: not yet
    cat.note_copy_run(c, last_ok=(NOW - timedelta(days=3, hours=1)).isoformat())
    assert levels(cat, health.COPY_BEHIND) == [
        (health.WARNING, "copy web01/daily/b2: more than two periods behind (no copy since "
                         "2026-11-28 03:00 UTC)")]
    cat.note_copy_run(c, last_error="node b2 is unreachable")
    assert levels(cat, health.COPY_BEHIND) == [
        (health.WARNING, "copy web01/daily/b2: last run failed: node b2 is unreachable")]
    assert inventory("check").exit_code == 1


def test_metrics_give_each_copy_its_last_success_and_lag(inventory):
    from esbackup.services import metrics

    cat = with_b2(inventory, "--after-backup")
    c = cat.copy_definitions()[0]
    old = add_backup(cat, "daily-20261126_010000")
    cat.update_backup(add_backup(cat, "daily-20261127_010000"),
                      created="2026-11-27T01:00:00+00:00")
    cat.conn.execute("UPDATE backups SET definition_id = ?", (c.definition_id,))
    cat.add_location(old.id, "b2", "vault", c.id, status="ok", created=old.created)
    cat.note_copy_run(c, last_ok="2026-11-26T02:00:00+00:00")
    lines = metrics.collect(cat, NOW).splitlines()
    labels = '{copy="web01/daily/b2",node="b2"}'
    assert f"esbackup_copy_lag_seconds{labels} 86400" in lines
    assert (f"esbackup_copy_last_success_timestamp_seconds{labels} "
            f"{int(datetime(2026, 11, 26, 2, tzinfo=timezone.utc).timestamp())}") in lines


def test_a_scheduled_copy_loads_both_backup_nodes_and_is_never_moved(inventory):
    from tests.unit.domain.test_balance import add_runs

    with_b2(inventory, "--schedule", "0 3 * * *").close()
    add_runs(inventory.catalog, "web01/daily", [1700, 1800, 1900])  # 30 minutes
    load = {n["node"]: (n["01"], n["03"]) for n in inventory.json("schedule", "load")}
    assert load == {"c1": (1, 0), "b1": (1, 1), "b2": (0, 1)}
    plan = inventory.json("schedule", "balance", "--window", "00:00-06:00")
    assert [m["definition"] for m in plan["moves"]] == []
