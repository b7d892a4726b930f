"""Resume and bookmark decisions (jobs/resume.py, jobs/bookmarks.py) on recorded
OpenZFS 2.1 outputs, through a double of a node's transport: `ScriptedNode`
answers each argv from a script and records what it was asked. The real
streams are tests/integration/test_resume.py's."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from esbackup import nodes
from esbackup.drivers import zfs
from esbackup.drivers.transport import Result
from esbackup.errors import OperationFailed
from esbackup.jobs import bookmarks, layout, resume
from esbackup.jobs.backup import BackupJob
from esbackup.models import VM, Definition, Node, Storage

OUT = Path(__file__).parent / "zfs_outputs" / "openzfs"
TOKEN = (OUT / "resume-token.txt").read_text().strip()
SOURCE = "esblab_r1_530167/vm1-disk1"  # the recorded outputs' dataset
SNAP = f"{SOURCE}@esb-daily-20261130_070000"
SNAP_GUID = 0xb0e091cdb3dcf094
DAILY = Definition(vm="web01", name="daily", disk_id=1, type="dataset", node="b1",
                   storage="tank", schedule="0 1 * * *", timezone="UTC", retention=3)


class ScriptedNode:
    """Test double of a node's transport: `script` maps an argv (tuple) to the
    Result it gets; anything unscripted fails the test. `calls` records argv."""

    def __init__(self, script: dict[tuple, Result]):
        self.script, self.calls = script, []

    def run(self, argv, *, check: bool = True, **_):
        self.calls.append(list(argv))
        assert tuple(argv) in self.script, f"unexpected command {argv}"
        return self.script[tuple(argv)]


def ok(stdout: str = "") -> Result:
    return Result(0, stdout, "")


def snap(name: str, guid: int, txg: int = 10) -> zfs.Snapshot:
    return zfs.Snapshot(name=name, guid=guid, createtxg=txg, creation=0, used=0, backup=None)


def info_node(output_file: str, status: int = 0) -> ScriptedNode:
    text = (OUT / output_file).read_text()
    stdout, _, stderr = text.partition("cannot resume send")
    return ScriptedNode({tuple(zfs.send_resume_info(TOKEN)): Result(
        status, stdout, "cannot resume send" + stderr if stderr else "")})


def test_created_of_reads_the_backup_time_from_its_snapshot():
    assert layout.created_of("esb-daily-20261130_070000", DAILY) == datetime(
        2026, 11, 30, 7, 0, tzinfo=timezone.utc)
    assert layout.created_of("esb-weekly-20261130_070000", DAILY) is None
    assert layout.created_of("esb-daily-20261130_0700", DAILY) is None


def test_judge_resumes_our_snapshot_with_its_guid():
    found = resume.judge(info_node("resume-info-full.txt"), TOKEN, SOURCE, DAILY,
                         [snap(SNAP, SNAP_GUID)])
    assert isinstance(found, resume.Resumable)
    assert (found.snapshot, found.info.bytes, found.created) == (
        SNAP, 0x4c2dd8, datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("source, definition, snaps, why", [
    (SOURCE, DAILY, [], "is gone from the source"),
    (SOURCE, DAILY, [snap(SNAP, 12345)], "is gone from the source"),  # same name, new guid
    ("esblab_r1_530167/vm1-disk2", DAILY, [snap(SNAP, SNAP_GUID)], "not a snapshot of"),
    (SOURCE, Definition(**{**vars(DAILY), "name": "weekly"}), [snap(SNAP, SNAP_GUID)],
     "not a snapshot of this definition"),
])
def test_judge_refuses_streams_that_are_not_ours(source, definition, snaps, why):
    found = resume.judge(info_node("resume-info-full.txt"), TOKEN, source, definition, snaps)
    assert isinstance(found, str) and why in found


def test_judge_refuses_a_token_whose_snapshot_the_node_no_longer_has():
    found = resume.judge(info_node("resume-info-gone.txt", status=255), TOKEN, SOURCE, DAILY,
                         [])
    assert "used in the initial send no longer exists" in found


class Warnings:
    def __init__(self):
        self.lines = []

    def warn(self, message):
        self.lines.append(message)

    info = warn


def test_a_token_whose_source_is_gone_is_discarded_and_the_run_starts_over(monkeypatch):
    compute = Node("c1", "127.0.0.2", capabilities={"resume": True, "bookmarks": True})
    backup = Node("b1", "127.0.0.3", backup=True, capabilities={"resume": True})
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    job = BackupJob(None, DAILY, vm, compute, backup, Storage(node="b1", name="tank",
                                                              zpool="tank"), Warnings())
    target = job.target
    backup_t = ScriptedNode({tuple(zfs.resume_token(target)): ok(TOKEN + "\n"),
                             tuple(zfs.receive_abort(target)): ok()})
    compute_t = info_node("resume-info-gone.txt", status=255)
    sessions = {"c1": compute_t, "b1": backup_t}
    monkeypatch.setattr(nodes, "session", lambda node: sessions[node.name])
    created = job.created
    assert job.interrupted_stream() is None
    assert backup_t.calls == [zfs.resume_token(target), zfs.receive_abort(target)]
    assert compute_t.calls == [zfs.send_resume_info(TOKEN)]
    assert job.created == created  # a new backup, named now
    (line,) = job.reporter.lines
    assert "discarded" in line and "no longer exists" in line and "starting over" in line


def test_bookmark_base_and_trim():
    newest = snap("tank/t@esb-daily-20261130_070000", SNAP_GUID)
    mark = zfs.Bookmark(f"{SOURCE}#esb-daily-20261130_070000", SNAP_GUID, 21)
    assert bookmarks.base(newest, [snap(SNAP, SNAP_GUID)], [mark]) == SNAP
    assert bookmarks.base(newest, [], [mark]) == mark.name
    assert bookmarks.base(newest, [], [zfs.Bookmark(mark.name, 1, 21)]) is None
    old = zfs.Bookmark(f"{SOURCE}#esb-daily-20261129_070000", 7, 20)
    other = zfs.Bookmark(f"{SOURCE}#esb-weekly-20261129_070000", 8, 19)
    t = ScriptedNode({tuple(zfs.destroy(old.name)): ok()})
    bookmarks.trim(t, [other, old, mark], DAILY, set(), keep=mark.name)
    assert t.calls == [zfs.destroy(old.name)]


def test_bookmark_replaces_the_snapshot_only_once_made():
    mark = zfs.bookmark_of(SNAP)
    t = ScriptedNode({tuple(zfs.bookmark(SNAP, mark)): ok(), tuple(zfs.destroy(SNAP)): ok()})
    assert bookmarks.replace_snapshot(t, SNAP) == mark
    assert t.calls == [zfs.bookmark(SNAP, mark), zfs.destroy(SNAP)]
    failing = ScriptedNode({tuple(zfs.bookmark(SNAP, mark)): Result(1, "", "no space")})
    with pytest.raises(OperationFailed, match="no bookmark"):
        bookmarks.replace_snapshot(failing, SNAP)
    assert failing.calls == [zfs.bookmark(SNAP, mark)]  # the snapshot stays
