"""Retention policies through the CLI (commands/retention.py, definition and backup
commands): keep-* options, previews, protected backups, bad input; real catalogs."""
import json

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.models import Backup
from tests.unit.shared import UUID


def define(esb, *options: str, name: str = "daily") -> None:
    esb.ok("definition", "create", f"web01/{name}", "--disk-id", "1", "--type", "dataset",
           "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
           "--timezone", "UTC", *options)


def add_backups(esb, days: list[int], name: str = "daily", **fields) -> None:
    """ok backups of web01/NAME made on these days of November 2026, at 01:00 UTC."""
    cat = Catalog.open(esb.catalog)
    d = cat.definition("web01", name)
    for day in days:
        stamp = f"202611{day:02d}_010000"
        cat.add_backup(Backup(name=f"{name}-{stamp}", vm="web01", vm_uuid=UUID, disk_id=1,
                              type="dataset", created=f"2026-11-{day:02d}T01:00:00+00:00",
                              status="ok", node="b1", storage="tank", definition=name,
                              location=f"tank/backups/ds/{UUID}-disk1@esb-{name}-{stamp}"),
                       definition_id=d.id)
    cat.close()


def test_keep_options_are_shown_and_retention_is_keep_last(inventory):
    define(inventory, "--retention", "3", "--keep-daily", "7", "--keep-monthly", "12")
    shown = inventory.json("definition", "show", "web01/daily")
    assert {k: shown[k] for k in shown if k.startswith("keep_")} == {
        "keep_last": 3, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 0,
        "keep_monthly": 12, "keep_yearly": 0}
    assert shown["retention"] == 3 and shown["policy"] == (
        "keep-last 3, keep-daily 7, keep-monthly 12")
    inventory.ok("definition", "update", "web01/daily", "--keep-last", "5", "--keep-daily", "0")
    assert inventory.json("definition", "list")[0]["policy"] == "keep-last 5, keep-monthly 12"
    assert "keep-last 5, keep-monthly 12" in inventory.ok("definition", "list").stdout


def test_no_retention_option_keeps_every_backup(inventory):
    define(inventory)
    shown = inventory.json("definition", "show", "web01/daily")
    assert (shown["policy"], shown["retention"]) == ("keep all", 0)
    add_backups(inventory, [1, 2, 3])
    marks = inventory.json("retention", "preview", "web01/daily")
    assert [(m["mark"], m["rule"]) for m in marks] == [("keep", "all")] * 3


@pytest.mark.parametrize("options, message", [
    (["--retention", "3", "--keep-last", "4"], "--retention is --keep-last"),
    (["--keep-daily", "-1"], "--keep-daily"),
    (["--keep-weekly", "100001"], "--keep-weekly"),
    (["--keep-yearly", "1.5"], "--keep-yearly"),
])
def test_bad_counts_are_refused_and_nothing_is_made(inventory, options, message):
    result = inventory("definition", "create", "web01/daily", "--disk-id", "1", "--type",
                       "dataset", "--node", "b1", "--storage", "tank", "--schedule",
                       "0 1 * * *", "--timezone", "UTC", *options)
    assert result.exit_code == 2 and message in result.stderr
    assert inventory.json("definition", "list") == []


TIMES = "".join(f"2026-11-{day:02d}T01:00:00Z\n" for day in range(1, 11))


def test_preview_of_times_marks_each_in_input_order(esb):
    result = esb("retention", "preview", "--keep-last", "2", "--keep-daily", "3", "--times", "-",
                 "-f", "json", input=TIMES)
    assert result.exit_code == 0, result.stderr
    marks = json.loads(result.stdout)
    assert [m["time"] for m in marks] == [f"2026-11-{d:02d}T01:00:00+00:00" for d in range(1, 11)]
    assert [m["mark"] for m in marks] == ["remove"] * 5 + ["keep"] * 5
    assert [m["rule"] for m in marks] == [None] * 5 + ["daily"] * 3 + ["last"] * 2


def test_preview_of_a_schedule_simulates_its_firings(esb):
    marks = esb.json("retention", "preview", "--keep-daily", "7", "--schedule", "0 */6 * * *",
                     "--days", "30")
    kept = [m for m in marks if m["mark"] == "keep"]
    assert len(marks) in (119, 120, 121) and len(kept) == 7
    assert all(m["rule"] == "daily" for m in kept)


@pytest.mark.parametrize("args, message", [
    (["--keep-last", "1"], "give one of VM/DEF, --times FILE or --schedule CRON --days N"),
    (["--schedule", "0 1 * * *"], "--schedule and --days go together"),
    (["--keep-last", "1", "--timezone", "Mars/Olympus", "--times", "-"], "Mars/Olympus"),
])
def test_preview_refuses_what_it_cannot_answer(esb, args, message):
    result = esb("retention", "preview", *args, input="2026-11-01T01:00:00Z\n")
    assert result.exit_code == 2 and message in result.stderr


def test_preview_and_dry_runs_of_a_definition_change_nothing(inventory):
    define(inventory, "--keep-last", "5")
    add_backups(inventory, [1, 2, 3, 4, 5, 6])
    marks = inventory.json("retention", "preview", "web01/daily")
    assert [(m["backup"][-15:-7], m["mark"]) for m in marks] == [
        ("20261101", "remove"), *((f"202611{d:02d}", "keep") for d in range(2, 7))]
    marks = inventory.json("retention", "preview", "web01/daily", "--keep-last", "2")
    assert [m["mark"] for m in marks].count("remove") == 4
    marks = inventory.json("definition", "update", "web01/daily", "--keep-last", "3",
                           "--dry-run")
    assert [m["mark"] for m in marks].count("remove") == 3
    assert inventory.json("definition", "show", "web01/daily")["keep_last"] == 5
    marks = inventory.json("backup", "prune", "web01/daily", "--dry-run")
    assert [m["mark"] for m in marks].count("remove") == 1
    assert len(inventory.json("backup", "list")) == 6  # nothing removed


def test_protected_backups_are_kept_and_delete_needs_force(inventory):
    define(inventory, "--keep-last", "1")
    add_backups(inventory, [1, 2, 3])
    inventory.ok("backup", "protect", "web01/daily-20261101_010000")
    listed = {b["name"]: b["protected"] for b in inventory.json("backup", "list")}
    assert listed == {"daily-20261101_010000": True, "daily-20261102_010000": False,
                      "daily-20261103_010000": False}
    marks = inventory.json("retention", "preview", "web01/daily")
    assert [(m["mark"], m["rule"]) for m in marks] == [
        ("protected", None), ("remove", None), ("keep", "last")]
    stderr = inventory.fails(2, "backup", "delete", "web01/daily-20261101_010000", "--yes")
    assert "is protected" in stderr and "--force" in stderr
    inventory.ok("backup", "unprotect", "web01/daily-20261101_010000")
    assert inventory.json("backup", "show", "web01/daily-20261101_010000")["protected"] is False


def test_a_vmowner_cannot_protect_or_unprotect(inventory, monkeypatch):
    define(inventory, "--keep-last", "1")
    add_backups(inventory, [1])
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    inventory.ok("vm", "update", "web01", "--owner", "olga")
    monkeypatch.setattr(auth, "os_user", lambda: ("olga", 4242))
    for command in ("protect", "unprotect"):
        stderr = inventory.fails(3, "backup", command, "web01/daily-20261101_010000")
        assert "vmowner" in stderr


def test_prune_with_nothing_to_remove_says_so(inventory):
    define(inventory, "--keep-last", "3")
    add_backups(inventory, [1, 2])
    result = inventory.ok("backup", "prune", "web01/daily", "--yes")
    assert result.stdout == "web01/daily: nothing to remove (keep-last 3)\n"
