"""The backup job (actions/backup.py): a lost race for the storage datasets, and
its resume and trim steps through tests/unit/scripted.py's double of a node's session."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from esbackup.actions.backup import BackupJob, Plan
from esbackup.domain.models import VM, Node, Storage
from esbackup.drivers import zfs
from esbackup.drivers.transport import Result
from tests.unit.scripted import (
    DAILY,
    SNAP,
    SNAP_GUID,
    SOURCE,
    TOKEN,
    Scripted,
    ScriptedNode,
    info_node,
    ok,
    snap,
)


@pytest.mark.parametrize("status, stderr, lost", [
    (1, "cannot create 'tank/backups/ds': dataset already exists\n", True),
    (1, "cannot create 'tank/backups': dataset already exists\n", True),  # zfs-fuse, -p
    (1, "cannot create 'tank/backups/ds': out of space\n", False),
    (0, "", False),
])
def test_a_lost_race_to_make_the_storage_datasets_is_asked_again(status, stderr, lost):
    from esbackup.actions.backup import lost_race
    from esbackup.drivers import batch, zfs

    step = batch.Step("create", zfs.create("tank/backups/ds", parents=True), stop=True)
    results = batch.Results("b1", [step], {"create": Result(status, "", stderr)})
    assert lost_race(results) is lost
    assert lost_race(batch.Results("b1", [step], {})) is False  # no answer: not a race


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


def test_the_first_backup_on_a_storage_makes_its_datasets_alone_under_its_lock(inventory):
    """Two first backups making `<pool>/backups/ds` at once can leave `<pool>/backups`
    unmounted on zfs-fuse ("directory is not empty"): the datasets are made in a
    call of their own, while the storage's lock is held, then the lock goes."""
    from esbackup.actions.backup import run_definition
    from esbackup.catalog.core import Catalog

    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *")
    cat = Catalog.open(inventory.catalog)
    held_then = []

    class Root(ScriptedNode):
        def run(self, argv, **options):
            held_then.append(sorted(h["resource"] for h in cat.locks("storage:")))
            return super().run(argv, **options)

    root = ("zfs", "create", "-p", "tank/backups/ds")
    sessions = Scripted(b1=Root({root: ok()}), c1=ScriptedNode({}))
    with pytest.raises(AssertionError, match="unexpected command"):  # the run goes on to c1
        run_definition(cat, cat.definition("web01", "daily"), sessions=sessions, trigger="cli")
    assert sessions["b1"].calls[0] == list(root)
    assert held_then[0] == ["storage:b1:tank"]
    assert cat.locks("storage:") == []


def test_an_encrypted_disk_is_never_sent_in_clear_to_a_node_without_raw_receive():
    from esbackup.errors import InvalidInput

    compute = Node("c1", "127.0.0.2", capabilities={"raw": True})
    backup = Node("b1", "127.0.0.3", backup=True, capabilities={"raw": False})
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    sessions = Scripted()
    sessions.update(c1=ScriptedNode({}), b1=ScriptedNode({}))
    plan = Plan.now(DAILY, vm, compute, backup, Storage(node="b1", name="tank", zpool="tank"))
    job = BackupJob(None, plan, Warnings(), sessions=sessions)
    job.seen.encrypted = True
    with pytest.raises(InvalidInput, match="encrypted and node b1 cannot receive a raw stream"):
        job.kind.transfer(0.0, False, "")
    assert sessions["c1"].calls == [] and sessions["b1"].calls == []
    assert zfs.is_encrypted(f"{SOURCE}\tencryption\taes-256-gcm\n", SOURCE)


def test_the_source_is_asked_for_its_encryption_only_where_raw_sends_exist():
    vm = VM("web01", "3f2a5a4e-0000-4000-8000-0000000000a1", "admin", "c1", disks={1: SOURCE})
    storage = Storage(node="b1", name="tank", zpool="tank")
    backup = Node("b1", "127.0.0.3", backup=True)
    for caps, asked in (({"raw": True}, True), ({"raw": False}, False), ({}, False)):
        plan = Plan.now(DAILY, vm, Node("c1", "x", capabilities=caps), backup, storage)
        steps = BackupJob(None, plan, sessions=Scripted()).source_steps()
        assert (tuple(zfs.get(SOURCE, "encryption")) in [s.argv for s in steps]) is asked
