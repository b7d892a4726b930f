"""The catalog at scale: filters the indexes serve, a fixed number of queries per
command whatever the catalog holds, and run-history pruning."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from esbackup.actions import tick
from esbackup.catalog import core as catalog
from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import where
from esbackup.cli import cli
from esbackup.domain.auth import Identity
from esbackup.domain.models import VM, Backup, Definition, Node, Run, Storage
from esbackup.engine import runlog
from esbackup.services import backup_access as backups
from esbackup.services import definitions, health

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
ROOT = Identity("root", "superadmin")


def build(path: Path, vms: int) -> Catalog:
    """`vms` VMs with two definitions each, three backups and three runs per definition."""
    cat = Catalog.open(path, create=True)
    cat.add_node(Node(name="c1", address="c1"))
    cat.add_node(Node(name="b1", address="b1", compute=False, backup=True))
    cat.add_storage(Storage(node="b1", name="tank", zpool="tank"))
    for i in range(vms):
        vm_uuid = str(uuid.UUID(int=i + 1))
        cat.add_vm(VM(hostname=f"vm{i}", uuid=vm_uuid, dc="admin", node="c1",
                      disks={1: f"zones/{vm_uuid}-disk0", 2: f"zones/{vm_uuid}-disk1"}))
        for k, name in enumerate(("daily", "weekly")):
            d = cat.add_definition(Definition(
                vm=f"vm{i}", name=name, disk_id=k + 1, type="dataset", node="b1",
                storage="tank", schedule="0 1 * * *", timezone="UTC", keep_last=3))
            for day in range(3):
                created = NOW - timedelta(days=3 - day)
                bname = f"{name}-{created:%Y%m%d_%H%M%S}"
                target = f"tank/backups/ds/{vm_uuid}-disk{k + 1}"
                cat.add_backup(Backup(name=bname, vm=d.vm, vm_uuid=vm_uuid, disk_id=k + 1,
                                      type="dataset", created=created.isoformat(), status="ok",
                                      node="b1", storage="tank", definition=name,
                                      location=f"{target}@esb-{bname}"), definition_id=d.id)
                cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick",
                                started=created.isoformat(), outcome="ok"))
    return cat


class Queries:
    """Every SQL statement a catalog connection runs (sqlite's trace hook)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def watch(self, cat: Catalog) -> Catalog:
        cat.conn.set_trace_callback(self.statements.append)
        return cat

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]


def count_selects(cat: Catalog, action) -> int:
    queries = Queries()
    queries.watch(cat)
    action(cat)
    cat.conn.set_trace_callback(None)
    return len(queries.selects)


# --- WHERE clauses from the filters given ----------------------------------------------

def test_where_has_only_the_filters_given():
    assert where((None, "a = ?"), (None, "b = ?")) == ("", ())
    assert where(("x", "(h = ? OR u = ?)"), (None, "b = ?"), (2, "d = ?")) == (
        " WHERE (h = ? OR u = ?) AND d = ?", ("x", "x", 2))
    assert where((("ok", "lost"), "s IN (?)")) == (" WHERE s IN (?, ?)", ("ok", "lost"))
    assert where(((), "s IN (?)")) == (" WHERE 1 = 0", ())


def test_no_query_is_written_with_optional_null_filters():
    source = "".join(p.read_text() for p in Path(catalog.__file__).parent.glob("*.py"))
    assert not re.search(r"\?\s+IS\s+NULL\s+OR", source, re.IGNORECASE)


# --- the indexes serve the filters -----------------------------------------------------

def plans(cat: Catalog, action) -> list[str]:
    """The query plan lines of every SELECT `action` runs on `cat`."""
    queries = Queries()
    queries.watch(cat)
    action(cat)
    cat.conn.set_trace_callback(None)
    return [row[3] for sql in queries.selects
            for row in cat.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


@pytest.mark.parametrize("action", [
    lambda cat: cat.backups(vm="vm3"),
    lambda cat: cat.backups(vm="vm3", definition="daily", status="ok"),
    lambda cat: cat.backups(status=("lost", "pending", "restore")),
    lambda cat: cat.backups(node="b1", status="lost"),
    lambda cat: cat.runs((cat.definition("vm2", "daily").id,), limit=1),
    lambda cat: cat.definition_states(active=True),
], ids=["backups-vm", "backups-definition", "backups-status", "backups-node",
        "runs-definition", "definition-states"])
def test_filtered_queries_use_indexes_not_scans_of_backups_or_runs(tmp_path, action):
    cat = build(tmp_path / "c.db", vms=3)  # no ANALYZE: esbackup never runs it
    lines = plans(cat, action)
    assert lines
    scans = [line for line in lines if re.match(r"SCAN (b|r|runs|backups)\b", line)]
    assert scans == [], lines


def test_newest_runs_walk_the_time_index_without_sorting(tmp_path):
    cat = build(tmp_path / "c.db", vms=3)
    assert plans(cat, lambda cat: cat.runs(limit=50)) == [
        "SCAN r USING INDEX runs_started",  # each run's definition and VM by primary key
        "SEARCH f USING INTEGER PRIMARY KEY (rowid=?) LEFT-JOIN",
        "SEARCH v USING INTEGER PRIMARY KEY (rowid=?) LEFT-JOIN"]


# --- one query per command, whatever the catalog holds ---------------------------------

@pytest.mark.parametrize("action", [
    lambda cat: health.problems(cat, NOW),
    lambda cat: tick.due(cat, NOW),
    lambda cat: definitions.visible(cat, ROOT),
    lambda cat: definitions.visible(cat, Identity("bob", "dcadmin", ("admin",))),
    lambda cat: backups.visible(cat, ROOT, vm="vm1"),
    lambda cat: backups.visible(cat, Identity("bob", "vmowner")),
    lambda cat: cat.runs(limit=10),
], ids=["check", "run-due", "definitions", "definitions-dcadmin", "backups-vm",
        "backups-vmowner", "history"])
def test_queries_do_not_grow_with_definitions_or_backups(tmp_path, action):
    small = count_selects(build(tmp_path / "small.db", vms=2), action)
    large = count_selects(build(tmp_path / "large.db", vms=12), action)
    assert 1 <= small == large <= 3, (small, large)


def test_definition_states_give_newest_run_and_newest_ok_backup(tmp_path):
    cat = build(tmp_path / "c.db", vms=2)
    newest = (NOW - timedelta(hours=1)).isoformat()
    d = cat.definition("vm1", "daily")
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick", started=newest,
                    outcome="failed", error="node unreachable"))
    gone = cat.backups(vm="vm1", definition="daily")[-1]
    cat.update_backup(gone, status="lost")
    cat.update_definition(Definition(**{**vars(cat.definition("vm0", "weekly")),
                                        "active": False}))
    states = {d.ref: (run, ok) for d, run, ok in cat.definition_states(active=True)}
    assert sorted(states) == ["vm0/daily", "vm1/daily", "vm1/weekly"]
    run, ok = states["vm1/daily"]
    assert (run.outcome, run.error, run.started) == ("failed", "node unreachable", newest)
    assert ok == (NOW - timedelta(days=2)).isoformat()  # the newest is lost now
    run, ok = states["vm0/daily"]
    assert run.outcome == "ok" and ok == (NOW - timedelta(days=1)).isoformat()


# --- run history pruning ---------------------------------------------------------------

def test_prune_keeps_recent_runs_and_each_definitions_last_ok_and_failed(tmp_path):
    cat = Catalog.open(tmp_path / "c.db", create=True)
    day = timedelta(days=1)

    def run(definition: str, age: timedelta, outcome: str) -> None:
        cat.add_run(Run(definition=definition, trigger="tick", outcome=outcome,
                        started=(NOW - age).isoformat()))

    for age in (200, 150, 120, 100):
        run("a/daily", age * day, "ok")
    run("a/daily", 180 * day, "failed")
    run("a/daily", 170 * day, "failed")
    run("a/daily", 160 * day, "skipped")
    run("a/daily", 300 * day, "running")  # a dead run's row: not ours to judge
    run("a/daily", 10 * day, "ok")
    run("a/daily", 5 * day, "failed")
    run("b/daily", 400 * day, "ok")
    run("c/daily", 300 * day, "failed")
    run("c/daily", 200 * day, "ok")
    run("c/daily", 100 * day, "ok")
    gone = runlog.prune(cat, keep_days=90, now=NOW)
    kept = sorted((r.definition, r.outcome, (NOW - datetime.fromisoformat(r.started)).days)
                  for r in cat.runs())
    assert kept == [("a/daily", "failed", 5), ("a/daily", "ok", 10),
                    ("a/daily", "running", 300), ("b/daily", "ok", 400),
                    ("c/daily", "failed", 300), ("c/daily", "ok", 100)]
    assert gone == 8


def test_history_prune_from_the_command_line(tmp_path):
    path = tmp_path / "c.db"
    cat = Catalog.open(path, create=True)
    for age in (100, 200):
        cat.add_run(Run(definition="a/daily", trigger="tick", outcome="ok",
                        started=(datetime.now(timezone.utc) - timedelta(days=age)).isoformat()))
    cat.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--catalog", str(path), "history", "--prune"])
    assert result.exit_code == 0 and result.stdout == "pruned 1 run(s)\n"
    result = runner.invoke(cli, ["--catalog", str(path), "history", "--keep-days", "3"])
    assert result.exit_code == 2 and "--keep-days goes with --prune" in result.stderr
    result = runner.invoke(cli, ["--catalog", str(path), "history", "--prune",
                                 "--keep-days", "0"])
    assert result.exit_code == 2 and "must be >= 1" in result.stderr
    result = runner.invoke(cli, ["--catalog", str(path), "cron"])
    assert "-q history --prune" in result.stdout
