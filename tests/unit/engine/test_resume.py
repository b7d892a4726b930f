"""Resume and bookmark decisions (engine/resume.py, engine/bookmarks.py) on recorded
OpenZFS 2.1 outputs, through a double of a node's transport: `ScriptedNode`
answers each argv from a script and records what it was asked. The real
streams are tests/integration/test_resume.py's."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from esbackup.actions.backup import BackupJob, Plan
from esbackup.domain.models import VM, Definition, Node, Storage
from esbackup.drivers import batch, zfs
from esbackup.drivers.transport import Result
from esbackup.engine import bookmarks, layout, resume

OUT = Path(__file__).parents[1] / "zfs_outputs" / "openzfs"
TOKEN = (OUT / "resume-token.txt").read_text().strip()
SOURCE = "esblab_r1_530167/vm1-disk1"  # the recorded outputs' dataset
SNAP = f"{SOURCE}@esb-daily-20261130_070000"
SNAP_GUID = 0xb0e091cdb3dcf094
DAILY = Definition(vm="web01", name="daily", disk_id=1, type="dataset", node="b1",
                   storage="tank", schedule="0 1 * * *", timezone="UTC", retention=3)


class ScriptedNode:
    """Test double of a node's session (drivers/session.py's NodeSession, the
    calls these tests need): `script` maps an argv (tuple) to the Result it gets;
    anything unscripted fails the test. `calls` records argv; a batch's steps
    are answered in turn, and a failed `stop` step ends it, as the real script
    does. `node` is set by the `Scripted` factory that hands it out."""

    def __init__(self, script: dict[tuple, Result]):
        self.script, self.calls = script, []
        self.node: Node | None = None

    def run(self, argv, *, check: bool = True, **_):
        self.calls.append(list(argv))
        assert tuple(argv) in self.script, f"unexpected command {argv}"
        return self.script[tuple(argv)]

    def batch(self, steps, *, feed=None):
        results = {}
        for step in steps:
            results[step.name] = self.run(list(step.argv), check=False)
            if step.stop and results[step.name].status:
                break
        return batch.Results(self.node.name, steps, results)


class Scripted(dict):
    """ScriptedNodes by node name: the jobs' `Sessions` factory."""

    def __call__(self, node: Node) -> ScriptedNode:
        self[node.name].node = node
        return self[node.name]


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


def test_a_token_whose_source_is_gone_is_discarded_and_the_run_starts_over():
    compute = Node("c1", "127.0.0.2", capabilities={"resume": True, "bookmarks": True})
    backup = Node("b1", "127.0.0.3", backup=True, capabilities={"resume": True})
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    sessions = Scripted()
    plan = Plan.now(DAILY, vm, compute, backup, Storage(node="b1", name="tank", zpool="tank"))
    job = BackupJob(None, plan, Warnings(), sessions=sessions)
    target = plan.target
    job.seen.target_snaps = []
    job.made_snapshot()
    # a partial first receive goes with its token: the target is gone afterwards
    backup_t = ScriptedNode({tuple(zfs.receive_abort(target)): ok(),
                             tuple(zfs.exists(target)): Result(
                                 1, "", f"cannot open '{target}': dataset does not exist\n")})
    compute_t = info_node("resume-info-gone.txt", status=255)
    sessions.update(c1=compute_t, b1=backup_t)
    assert job.interrupted_stream(TOKEN) is None
    assert compute_t.calls == [zfs.send_resume_info(TOKEN)]
    assert backup_t.calls == [zfs.receive_abort(target), zfs.exists(target)]
    assert job.seen.target_snaps is None  # a full backup follows, into a fresh target
    assert job.plan == plan and "snapshot" in job.undo  # same name; its snapshot still its own
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
    renamed = zfs.Bookmark(f"{SOURCE}#esb-old-20261128_070000", 6, 18)
    assert bookmarks.stale([renamed, other, old, mark], DAILY, {"esb-old-20261128_070000"},
                           keep=mark.name) == [renamed.name, old.name]


class NoBackups:
    """Catalog double: a definition with no backups under earlier names."""

    def backups(self, **_):
        return []


def test_trim_steps_bookmark_the_new_snapshot_first():
    compute = Node("c1", "127.0.0.2", capabilities={"bookmarks": True})
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    job = BackupJob(NoBackups(), Plan(DAILY, vm, compute, Node("b1", "127.0.0.3"),
                                      Storage(node="b1", name="tank", zpool="tank"),
                                      datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)),
                    sessions=Scripted())
    old_mark = f"{SOURCE}#esb-daily-20261129_070000"
    job.seen.source_marks = [zfs.Bookmark(old_mark, 7, 20)]
    job.seen.source_snaps = [snap(f"{SOURCE}@esb-daily-20261129_060000", 5),
                             snap(SNAP, SNAP_GUID), snap(f"{SOURCE}@mine", 9)]
    job.superseded = f"{SOURCE}@esb-daily-20261130_080000"
    steps = [(s.name, list(s.argv), s.stop) for s in job.trim_steps()]
    assert steps == [
        ("bookmark", zfs.replace_with_bookmark(SNAP), False),
        ("unmark-0", zfs.destroy(old_mark), False),
        ("trim-0", zfs.destroy(f"{SOURCE}@esb-daily-20261129_060000"), False),
        ("trim-1", zfs.destroy(job.superseded), False),
    ]
    job.plan = replace(job.plan, compute=Node("c1", "127.0.0.2",
                                              capabilities={"bookmarks": False}))  # zfs-fuse
    assert [s.name for s in job.trim_steps()] == ["trim-0", "trim-1"]


@pytest.mark.parametrize("token_output, source_snapshot_destroyed", [
    (TOKEN + "\n", False),  # the target kept what arrived: the next run resumes it
    ("-\n", True),  # nothing to resume: the run leaves nothing
])
def test_a_run_failing_mid_stream_keeps_its_snapshot_while_the_target_can_resume(
        token_output, source_snapshot_destroyed):
    compute = Node("c1", "127.0.0.2", capabilities={"resume": True})
    backup = Node("b1", "127.0.0.3", backup=True, capabilities={"resume": True})
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    sessions = Scripted()
    plan = Plan.now(DAILY, vm, compute, backup, Storage(node="b1", name="tank", zpool="tank"))
    job = BackupJob(None, plan, Warnings(), sessions=sessions)
    job.made_snapshot()  # and the stream died: job.streamed stays False
    compute_t = ScriptedNode({tuple(zfs.destroy(plan.snapshot)): ok()})
    backup_t = ScriptedNode({tuple(zfs.resume_token(plan.target)): ok(token_output)})
    sessions.update(c1=compute_t, b1=backup_t)
    job.clean_up()
    assert backup_t.calls == [zfs.resume_token(plan.target)]
    assert compute_t.calls == ([zfs.destroy(plan.snapshot)] if source_snapshot_destroyed
                               else [])
    assert bool(job.reporter.lines) is not source_snapshot_destroyed  # "kept: the next run..."
