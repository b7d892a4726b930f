"""--dry-run says what a command would destroy or send, and changes nothing: the
catalog file keeps its bytes, and no node is asked (the sessions are
tests/unit/scripted.py's `Scripted`, which fails a test on any call)."""
from __future__ import annotations

import json

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from esbackup.drivers import zfs
from tests.conftest import Esbackup
from tests.unit.scripted import Scripted, ScriptedNode, ok
from tests.unit.shared import UUID

TARGET = "tank/backups/ds/3f2a5a4e-0000-4000-8000-000000000001-disk1"
SOURCE = "zones/web01-disk0"
SNAPSHOT = f"{TARGET}@esb-daily-20261126_010000"
MANIFEST = "/tank/backups/manifests/daily-20261126_010000.json"


@pytest.fixture
def offline(inventory) -> Esbackup:
    """The inventory with one dataset backup, its node sessions a double that
    answers nothing."""
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "1", "--timezone", "UTC")
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "daily")
    cat.add_backup(Backup(name="daily-20261126_010000", vm="web01", vm_uuid=UUID, disk_id=1,
                          type="dataset", created="2026-11-26T01:00:00+00:00", status="ok",
                          node="b1", storage="tank", definition="daily", location=SNAPSHOT,
                          manifest=MANIFEST, size=5 << 30), d.id)
    cat.close()
    return Esbackup(inventory.catalog, sessions=Scripted())


def test_backup_delete_dry_run_names_what_goes_and_changes_nothing(offline):
    before = offline.catalog.read_bytes()
    out = offline.ok("backup", "delete", "web01/daily-20261126_010000", "--dry-run").stdout
    assert out.splitlines() == [
        "deleting backup web01/daily-20261126_010000 would destroy:",
        f"  snapshot {SNAPSHOT} on node b1", f"  manifest {MANIFEST} on node b1",
        "  its catalog row"]
    assert offline.catalog.read_bytes() == before


def test_backup_restore_dry_run_names_the_disk_it_replaces_and_changes_nothing(offline):
    disk = "zones/web01-disk1"
    c1 = ScriptedNode({tuple(zfs.list_snapshots(disk)): ok(listing(
        disk, ("before-upgrade", 1), ("esb-weekly-20261120_010000", 2)))})
    before = offline.catalog.read_bytes()
    out = Esbackup(offline.catalog, sessions=Scripted(c1=c1)).ok(
        "backup", "restore", "web01/daily-20261126_010000", "--target-disk-id", "2",
        "--dry-run").stdout
    assert out.splitlines() == [
        "restoring web01/daily-20261126_010000 would destroy:",
        "  ALL data of zones/web01-disk1 (disk 2 of web01) on node c1",
        "  its 2 snapshot(s): before-upgrade, esb-weekly-20261120_010000",
        f"replaced by backup web01/daily-20261126_010000 (dataset, {SNAPSHOT} on node b1)"]
    assert offline.catalog.read_bytes() == before
    assert c1.calls == [zfs.list_snapshots(disk)]  # only asked to list


def listing(dataset: str, *snaps: tuple[str, int]) -> str:
    """`zfs get` output of list_snapshots for `dataset` and its snapshots (name, guid)."""
    lines = [f"{dataset}\tused\t1000"]
    for i, (name, guid) in enumerate(snaps, start=1):
        for prop, value in (("createtxg", i), ("guid", guid), ("creation", 1764118800 + i),
                            ("used", 0), ("esbackup:backup", "-")):
            lines.append(f"{dataset}@{name}\t{prop}\t{value}")
    return "\n".join(lines) + "\n"


def listing_only(source: str, target: str) -> Scripted:
    """Nodes that answer the two listings of a dry run, and nothing else."""
    return Scripted(c1=ScriptedNode({tuple(zfs.list_snapshots(SOURCE)): ok(source)}),
                    b1=ScriptedNode({tuple(zfs.list_snapshots(TARGET)): ok(target)}))


@pytest.mark.parametrize("command", [["run"], ["backup", "now"]])
def test_a_run_dry_run_names_its_base_and_what_retention_removes(offline, command):
    snap = ("esb-daily-20261126_010000", 77)
    sessions = listing_only(listing(SOURCE, snap), listing(TARGET, snap))
    esb = Esbackup(offline.catalog, sessions=sessions)
    before = offline.catalog.read_bytes()
    out = esb.ok(*command, "web01/daily", "--dry-run").stdout
    assert f"would back up {SOURCE} on node c1 into {TARGET} on node b1" in out
    assert f"incremental from backup web01/daily-20261126_010000 ({SOURCE}@{snap[0]})" in out
    # retention 1: the new backup is the one kept, the old one goes
    assert "then retention would remove web01/daily-20261126_010000" in out
    record = json.loads(esb.ok(*command, "web01/daily", "--dry-run", "-f", "json").stdout)
    assert record["base_backup"] == "web01/daily-20261126_010000" and record["type"] == "dataset"
    assert record["retention_removes"] == ["web01/daily-20261126_010000"]
    assert offline.catalog.read_bytes() == before  # no run row, no lock, no backup row
    assert [call[:2] for node in ("c1", "b1") for call in sessions[node].calls] == [
        ["zfs", "get"]] * 4  # each node asked only to list, once per dry run


def test_a_run_dry_run_without_a_common_snapshot_says_whole(offline):
    sessions = listing_only(listing(SOURCE), listing(TARGET, ("esb-daily-20261126_010000", 5)))
    record = json.loads(Esbackup(offline.catalog, sessions=sessions).ok(
        "run", "web01/daily", "--dry-run", "-f", "json").stdout)
    assert record["base"] is None and "no snapshot in common" in record["whole"]
    assert "kept aside as" in record["whole"]


def test_a_dry_run_of_an_inactive_definition_is_refused_like_the_run(offline):
    offline.ok("definition", "update", "web01/daily", "--inactive")
    assert "inactive" in offline.fails(2, "run", "web01/daily", "--dry-run")
