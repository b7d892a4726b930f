"""`backup ls` and `backup get`: who may, and what is refused before a node is asked."""
import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.models import Backup
from esbackup.errors import NodeUnreachable

UUID = "3f2a5a4e-0000-4000-8000-000000000001"


class RecordingSessions:
    """A node-session factory that notes each node asked and reaches none."""

    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, node):
        self.asked.append(node.name)
        raise NodeUnreachable(f"node {node.name} is a test's: not reached")


@pytest.fixture
def backups(inventory, monkeypatch):
    """web01 (owned by olga) has a dataset and a file backup; the caller is olga."""
    cat = Catalog.open(inventory.catalog)
    for name, kind, location in (
            ("daily-20261126_010000", "dataset", f"tank/backups/ds/{UUID}-disk1@esb-daily"),
            ("files-20261126_010000", "file",
             f"/tank/backups/file/{UUID}/disk1/files-20261126_010000.zfs.gz")):
        cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type=kind,
                              created="2026-11-26T01:00:00+00:00", status="ok", node="b1",
                              storage="tank", location=location, size=1234))
    cat.close()
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    inventory.ok("user", "create", "victor", "--role", "vmowner")
    inventory.ok("vm", "update", "web01", "--owner", "olga")
    inventory.sessions = RecordingSessions()
    monkeypatch.setattr(auth, "os_user", lambda: ("olga", 4242))
    return inventory


def test_the_owner_may_list_and_get_so_the_node_is_asked(backups, tmp_path):
    assert "not reached" in backups.fails(1, "backup", "ls", "web01/daily-20261126_010000")
    assert "not reached" in backups.fails(1, "backup", "get", "web01/daily-20261126_010000",
                                          "/etc", "--to", str(tmp_path))
    assert backups.sessions.asked == ["b1", "b1"]


@pytest.mark.parametrize("args", [["ls"], ["get", "/etc", "--dry-run", "--to", "."]])
def test_a_file_backup_is_read_after_saying_it_is_received_first_and_its_size(backups, args):
    command, *rest = args
    err = backups.fails(1, "backup", command, "web01/files-20261126_010000", *rest)
    assert ("note: web01/files-20261126_010000 is a file backup: its stream (1234 bytes) is "
            "received into a temporary dataset on b1 first") in err
    assert "not reached" in err and backups.sessions.asked == ["b1"]
    assert "file backup" not in backups.fails(1, "backup", "ls", "web01/daily-20261126_010000")


def test_a_vmowner_of_another_vm_may_neither_list_nor_get(backups, monkeypatch, tmp_path):
    monkeypatch.setattr(auth, "os_user", lambda: ("victor", 4245))
    backups.fails(3, "backup", "ls", "web01/daily-20261126_010000")
    backups.fails(3, "backup", "get", "web01/daily-20261126_010000", "/etc", "--to",
                  str(tmp_path))
    assert backups.sessions.asked == []


@pytest.mark.parametrize("args, code, words", [
    (["ls", "web01/daily-20261126_010000", "/etc/../.."], 2, "'..'"),
    (["get", "web01/daily-20261126_010000", "/a/x", "/b/x", "--to", "."], 2, "'x'"),
    (["get", "web01/daily-20261126_010000", "/etc", "--to", "/nonexistent/dir"], 4,
     "no such folder"),
    (["get", "web01/daily-20261126_010000", "/etc"], 2, "--to"),
])
def test_bad_calls_fail_in_one_line_before_any_node_is_asked(backups, args, code, words):
    assert words in backups.fails(code, "backup", *args)
    assert backups.sessions.asked == []
