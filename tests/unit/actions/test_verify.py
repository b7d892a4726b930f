"""Which backups verify checks and its pipelines (actions/verify.py)."""
from datetime import datetime, timedelta, timezone

from esbackup.actions import verify
from esbackup.domain.models import Backup, Node
from tests.unit.shared import UUID


def test_verify_pipelines_respect_the_bandwidth_limit():
    node = Node("b1", "127.0.0.3", capabilities={"tools": {"mbuffer": True, "pv": True,
                                                           "sha256sum": True}})
    assert verify.file_stages(node, 0) == [["sha256sum"]]
    assert verify.file_stages(node, 10**6) == [
        ["mbuffer", "-q", "-m", "16M", "-r", "1000000"], ["sha256sum"]]
    snap = f"tank/backups/ds/{UUID}-disk1@esb-daily-20261126_010000"
    assert verify.dataset_stages(node, snap, 0) == [["zfs", "send", snap], ["cat"]]
    illumos = Node("b2", "x", capabilities={"tools": {"pv": True, "sha256sum": False}})
    assert verify.dataset_stages(illumos, snap, 500) == [
        ["zfs", "send", snap], ["pv", "-q", "-L", "500"]]
    assert verify.file_stages(illumos, 0) == [["digest", "-a", "sha256"]]


def test_verify_sends_raw_where_the_node_can_so_an_encrypted_backup_needs_no_key():
    snap = f"tank/backups/ds/{UUID}-disk1@esb-daily-20261126_010000"
    openzfs = Node("b1", "x", capabilities={"raw": True, "tools": {}})
    assert verify.dataset_stages(openzfs, snap, 0) == [["zfs", "send", "-w", snap], ["cat"]]


def test_verify_due_only_ok_backups_not_verified_lately():
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    fresh = (now - timedelta(days=1)).isoformat()
    old = (now - timedelta(days=9)).isoformat()
    rows = [Backup("a", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=None),
            Backup("b", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=fresh),
            Backup("c", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=old),
            Backup("d", "vm", UUID, 1, "file", old, "lost", "b1", "tank")]
    assert [b.name for b in verify.due(rows, 7, now)] == ["a", "c"]
    assert [b.name for b in verify.due(rows, None, now)] == ["a", "b", "c"]
