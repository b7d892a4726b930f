"""Turn a backup definition into a backup: snapshot, transfer, manifest, retention.

A run either ends with an `ok` backup row, its data whole on the backup node
and a manifest beside it, or with nothing: no row, no new snapshot, no
partial file. Every attempt is recorded in the run history.

A run is a frozen `Plan` (what, from where, to where, under which name), what
the nodes were `Seen` to hold before the stream, and an `Undo` ledger of what
the run made (engine/undo.py), which alone decides what a failed run removes.
Dataset and file backups differ in their target and their stream: the two
kinds in actions/backup_kinds.py.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from esbackup.actions import delete
from esbackup.actions.backup_kinds import DatasetKind, FileKind
from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import utcnow
from esbackup.domain.models import VM, Backup, Definition, Node, Run, Storage, saved_id
from esbackup.drivers import batch, files, zfs
from esbackup.drivers.session import NodeSession, Reporter, Sessions
from esbackup.engine import (
    bookmarks,
    calls,
    freeze,
    layout,
    locks,
    manifest,
    paths,
    recover,
    resume,
    retention,
    runlog,
)
from esbackup.engine.undo import Undo
from esbackup.errors import Busy, EsbackupError, InvalidInput, NotConnected


def start_run(cat: Catalog, d: Definition, trigger: str, firing: str | None = None) -> Run:
    """Record a run as started. A tick run names its schedule `firing`: a second
    claim of the same firing (another admin host's tick) raises InvalidInput."""
    return cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger=trigger, started=utcnow(),
                           pid=os.getpid(), host=locks.host_id(), firing=firing))


def run_definition(cat: Catalog, d: Definition, *, sessions: Sessions, trigger: str,
                   wait: float = 0, force: bool = False, reporter: Reporter | None = None,
                   run: Run | None = None) -> Backup:
    """Run one definition now; records the run (`run`, if already started) whatever
    happens."""
    run = run or start_run(cat, d, trigger)
    if not d.active and not force:
        error = InvalidInput(f"definition {d.ref} is inactive (use --force to run it anyway)")
        runlog.finish(cat, run, "skipped", error=str(error))
        raise error
    try:
        with locks.Locks(cat, owner=f"backup {d.ref} (run {run.id})") as held:
            vm = cat.vm(d.vm)
            held.disk(vm.uuid, d.disk_id, wait, vm=vm.hostname)
            recover.after_takeover(cat, held.stale, reporter, sessions=sessions)
            compute, target_node = cat.node(vm.node), cat.node(d.node)
            held.slot(compute.name, compute.max_backups, wait)
            if target_node.name != compute.name:
                held.slot(target_node.name, target_node.max_backups, wait)
            plan = Plan.now(d, vm, compute, target_node, cat.storage(d.node, d.storage))
            job = BackupJob(cat, plan, reporter, sessions=sessions)
            if not cat.storage_has_backups(saved_id(plan.storage.id, f"storage {d.storage}")):
                with held.briefly(f"storage:{target_node.name}:{plan.storage.name}", wait):
                    job.make_storage_root()
            backup = job.run()
            removed = delete.apply_retention(cat, d, reporter, sessions=sessions)
    except Busy as error:
        runlog.finish(cat, run, "skipped", error=str(error))
        raise
    except BaseException as error:
        runlog.finish(cat, run, "failed", error=str(error) or type(error).__name__)
        raise
    run.sent, run.resumed = job.sent, job.resumed
    runlog.finish(cat, run, "ok", backup=backup)
    for old in removed:
        _say(reporter, "info", f"retention: removed backup {old.ref}")
    copy_after(cat, d, reporter, sessions=sessions)
    return backup


def preview(cat: Catalog, d: Definition, *, sessions: Sessions, force: bool = False) -> dict:
    """What a run of `d` would do now (`--dry-run`): what it sends from where to
    where, from which base, and which backups retention would then remove.
    Each node is asked once, at once, only to list (no snapshot, no dataset, no
    lock, no run row: nothing changes anywhere)."""
    if not d.active and not force:
        raise InvalidInput(f"definition {d.ref} is inactive (use --force to run it anyway)")
    vm = cat.vm(d.vm)
    plan = Plan.now(d, vm, cat.node(vm.node), cat.node(d.node), cat.storage(d.node, d.storage))
    while cat.backups(vm=vm.uuid, definition=d.name, disk_id=d.disk_id, name=plan.name):
        plan = plan.at(plan.created + timedelta(seconds=1))  # as add_row would wait
    zfs.validate_dataset_name(plan.source)
    record: dict[str, object] = {"definition": d.ref, "type": d.type, "source": plan.source,
              "compute_node": plan.compute.name, "backup_node": plan.target_node.name,
              "target": plan.target if d.type == "dataset" else plan.storage.zpool,
              "name": plan.name, "base": None, "base_backup": None, "whole": "", "resume": False}
    if d.type == "dataset":
        record |= _dataset_base(plan, sessions)
    else:
        record["whole"] = "a file backup is always whole"
    new = Backup(name=plan.name, vm=vm.hostname, vm_uuid=vm.uuid, disk_id=d.disk_id,
                 type=d.type, created=plan.created.isoformat(), status="ok",
                 node=d.node, storage=d.storage, definition=d.name)
    record["retention_removes"] = [b.ref for b in retention.due(cat, d, after=new)]
    return record


def _dataset_base(plan: Plan, sessions: Sessions) -> dict:
    """The base a dataset backup would send from, as `DatasetKind.incremental_base`
    chooses it, from one listing on each node."""
    source = [batch.Step("source-snapshots", zfs.list_snapshots(plan.source))]
    if plan.uses_bookmarks:
        source.append(batch.Step("source-bookmarks", zfs.list_bookmarks(plan.source)))
    target = [batch.Step("target-snapshots", zfs.list_snapshots(plan.target))]
    if plan.target_node.capabilities.get("resume"):
        target.append(batch.Step("resume-token", zfs.resume_token(plan.target)))
    src, dst = (calls.settled(r) for r in calls.ask(plan.compute, source, plan.target_node,
                                                      target, sessions=sessions))
    snaps = zfs.parse_snapshots(src.ok("source-snapshots").stdout, plan.source)
    marks = (zfs.parse_bookmarks(src.ok("source-bookmarks").stdout, plan.source)
             if plan.uses_bookmarks else [])
    listing = dst["target-snapshots"]
    if not zfs.parse_exists(listing.status, listing.stderr):
        return {"whole": f"no target {plan.target} yet"}
    on_target = zfs.parse_snapshots(listing.stdout, plan.target)
    resume_ = "resume-token" in dst and zfs.parse_resume_token(
        dst.ok("resume-token").stdout) is not None
    base = bookmarks.base(on_target[-1], snaps, marks) if on_target else None
    if base is None:
        return {"resume": resume_, "whole": f"no snapshot in common with {plan.target}: "
                f"it would be kept aside as {layout.aside_name(plan.target, plan.created)}"}
    snapname = on_target[-1].snapname
    made = snapname.removeprefix(layout.SNAP_PREFIX)
    return {"base": base, "base_backup": f"{plan.vm.hostname}/{made}", "resume": resume_}


def copy_after(cat: Catalog, d: Definition, reporter: Reporter | None, *,
               sessions: Sessions) -> None:
    """The definition's active `--after-backup` copies, right after its backup;
    a copy that fails only warns (the backup is whole; the copy says why)."""
    from esbackup.actions.copy_backups import run_copy

    for c in cat.copy_definitions(definition_id=d.id, active=True):
        if c.after_backup:
            try:
                run_copy(cat, d, c, sessions=sessions, reporter=reporter)
            except EsbackupError as error:
                _say(reporter, "warn", f"copy {c.ref}: {error}")


def now() -> datetime:
    """This second in UTC: the time that names a backup (the one clock a run reads;
    tests that simulate days replace it)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _say(reporter: Reporter | None, level: str, message: str) -> None:
    if reporter is not None:
        getattr(reporter, level)(message)


@dataclass(frozen=True)
class Plan:
    """What one run backs up, from where, to where, and under which name: fixed
    before it talks to a node. A run whose name moves (the second is taken, or
    it finishes a dead run's stream under that run's name) gets a new Plan."""

    d: Definition
    vm: VM
    compute: Node
    target_node: Node
    storage: Storage
    created: datetime

    @classmethod
    def now(cls, d: Definition, vm: VM, compute: Node, target_node: Node,
            storage: Storage) -> Plan:
        return cls(d, vm, compute, target_node, storage, now())

    def at(self, created: datetime) -> Plan:
        return replace(self, created=created)

    @property
    def name(self) -> str:
        return layout.backup_name(self.d.name, self.created)

    @property
    def source(self) -> str:
        return self.vm.disks[self.d.disk_id]

    @property
    def snapshot(self) -> str:
        return layout.source_snapshot(self.source, self.name)

    @property
    def target(self) -> str:
        return layout.dataset_target(self.storage.zpool, self.vm.uuid, self.d.disk_id)

    @property
    def same_node(self) -> bool:
        return self.compute.name == self.target_node.name

    @property
    def uses_bookmarks(self) -> bool:
        return self.d.type == "dataset" and bool(self.compute.capabilities.get("bookmarks"))

    def manifest_at(self, mount: str) -> str:
        """Where the manifest goes, the storage being mounted at `mount`."""
        return layout.manifest_path(mount, self.vm.uuid, self.d.disk_id, self.name)


@dataclass
class Seen:
    """What the nodes said before the stream (the disk is locked: nobody else
    changes it); a full send into a fresh target forgets the old target's."""

    source_snaps: list[zfs.Snapshot] = field(default_factory=list)  # the source's, not ours
    source_marks: list[zfs.Bookmark] = field(default_factory=list)  # where `bookmarks`
    target_snaps: list[zfs.Snapshot] | None = None  # None: no target yet
    target_used: int = 0
    mount: str = ""  # where the storage is mounted on the backup node
    token: str | None = None  # the target's receive_resume_token
    encrypted: bool = False  # the source has OpenZFS native encryption: sent raw (-w)


class BackupJob:
    """One backup run. Remote calls: before the stream one batch per node (both
    nodes at once), the stream, then one batch per node (see `prepare`, `finish`)."""

    def __init__(self, cat: Catalog, plan: Plan, reporter: Reporter | None = None, *,
                 sessions: Sessions) -> None:
        self.cat, self.plan, self.reporter, self.sessions = cat, plan, reporter, sessions
        self.kind = DatasetKind(self) if plan.d.type == "dataset" else FileKind(self)
        self.seen = Seen()
        self.undo = Undo()
        self.row: Backup | None = None  # the pending row, while the run lasts
        self.resuming: resume.Resumable | None = None  # a dead run's stream this run finishes
        self.superseded: str | None = None  # the snapshot taken before it chose to resume
        self.streamed = False  # the stream reached the target whole
        self.sent: int | None = None  # stream bytes that passed through this host
        self.resumed: int | None = None  # bytes a resumed stream did not send again

    def make_storage_root(self) -> None:
        """`<pool>/backups/ds` on a storage that holds no backup yet, made by one run
        at a time (the caller holds the storage's lock): two runs making it at
        once can leave `<pool>/backups` unmounted on zfs-fuse (the second's
        `create -p` mounts `ds` inside its mountpoint before the first mounts it:
        "cannot mount ...: directory is not empty"). Where it exists, a no-op."""
        self.sessions(self.plan.target_node).run(
            zfs.create(layout.dataset_root(self.plan.storage.zpool), parents=True))

    def run(self) -> Backup:
        plan = self.plan
        zfs.validate_dataset_name(plan.source)
        why = plan.d.type == "dataset" and zfs.stream_refusal(plan.compute.capabilities,
                                                              plan.target_node.capabilities)
        if why:
            raise InvalidInput(f"{plan.d.ref}: node {plan.target_node.name} cannot hold this "
                               f"dataset backup: {why} (a file backup can)")
        self.add_row()
        started = time.monotonic()
        try:
            frozen, note = self.prepare()
            done = self.kind.transfer(started, frozen, note)
            row = self.cat.update_backup(
                self.pending, status="ok", duration=done.duration, size=done.size, note=note,
                fsfreeze=frozen, location=done.location, checksum=done.checksum,
                manifest=done.manifest)
        except BaseException:
            self.clean_up()
            self.cat.delete_backup(self.pending)
            raise
        if plan.d.type == "dataset" and not plan.same_node:
            self.trim_source(self.ask(plan.compute, self.trim_steps())[0])
        return row

    @property
    def pending(self) -> Backup:
        if self.row is None:
            raise RuntimeError("no pending row yet")
        return self.row

    def add_row(self) -> None:
        """The pending row, under a name no backup of this definition has yet.
        Names carry the second they were made in: a second backup of the same
        definition within one second waits for the next."""
        plan = self.plan
        while self.cat.backups(vm=plan.vm.uuid, definition=plan.d.name,
                               disk_id=plan.d.disk_id, name=plan.name):
            self.next_second()
            plan = self.plan
        self.row = self.cat.add_backup(Backup(
            name=plan.name, vm=plan.vm.hostname, vm_uuid=plan.vm.uuid, disk_id=plan.d.disk_id,
            type=plan.d.type, created=plan.created.isoformat(), status="pending",
            node=plan.target_node.name, storage=plan.storage.name, definition=plan.d.name),
            definition_id=plan.d.id)

    def next_second(self) -> None:
        time.sleep(max(0.0, 1 - datetime.now(timezone.utc).microsecond / 1e6))
        self.plan = self.plan.at(now())

    def rename_row(self) -> None:
        """The snapshot name is taken on the source: the run moves to the next second."""
        self.cat.delete_backup(self.pending)
        self.next_second()
        self.add_row()

    def ask(self, *nodes_and_steps, feed=None) -> list:
        return calls.ask(*nodes_and_steps, sessions=self.sessions, feed=feed)

    # --- before the stream: one call per node, both at once --------------
    def source_steps(self) -> list[batch.Step]:
        plan = self.plan
        listing = [batch.Step("source-snapshots", zfs.list_snapshots(plan.source))]
        if plan.compute.capabilities.get("raw"):
            listing.append(batch.Step("encryption", zfs.get(plan.source, "encryption")))
        if plan.uses_bookmarks:
            listing.append(batch.Step("source-bookmarks", zfs.list_bookmarks(plan.source)))
        if plan.d.fsfreeze:  # the freeze step takes the snapshot, in a call of its own
            return listing
        return [batch.Step("snapshot", zfs.snapshot(plan.snapshot), stop=True), *listing]

    def target_steps(self) -> list[batch.Step]:
        """`<pool>/backups` is a dataset of its own (holding `ds/`, files and
        manifests), made before anything is written under its mountpoint."""
        pool = self.plan.storage.zpool
        create = batch.Step("create", zfs.create(layout.dataset_root(pool), parents=True),
                            stop=True)
        return [create, *self.kind.target_steps()]

    def prepare(self) -> tuple[bool, str]:
        """Snapshot the source (unless frozen) and learn its snapshots; make the
        storage's datasets and folders and learn the target's snapshots."""
        self.made_snapshot()
        try:
            src, dst = self.ask(self.plan.compute, self.source_steps(), self.plan.target_node,
                                self.target_steps())
        except NotConnected:  # no session to a node: nothing ran anywhere
            self.undo.forget("snapshot")
            raise
        if isinstance(src, NotConnected):  # nothing ran on the compute node: no snapshot
            self.undo.forget("snapshot")
        while self.snapshot_taken(calls.settled(src)):
            self.rename_row()
            self.made_snapshot()
            src = self.ask(self.plan.compute, self.source_steps(), self.plan.target_node, [])[0]
        dst = calls.settled(dst)
        if lost_race(dst):  # made by another run meanwhile: now it is there
            dst = calls.settled(self.ask(self.plan.target_node, self.target_steps())[0])
        dst.ok("create")
        self.kind.read_target(dst)
        if self.seen.token is not None:
            self.resuming = self.interrupted_stream(self.seen.token)
            if self.resuming:
                return False, resume.NOTE
        if self.plan.d.fsfreeze:
            return self.freeze_snapshot()
        return False, ""

    def made_snapshot(self) -> None:
        """The source snapshot this run takes, under a name no backup has (add_row):
        removing it on failure is safe. A freeze takes it in a call of its own."""
        if not self.plan.d.fsfreeze:
            self.undo.made("snapshot", self.plan.compute, zfs.destroy(self.plan.snapshot))

    def snapshot_taken(self, src: batch.Results) -> bool:
        """Read the source's answer; True if the snapshot name exists already."""
        plan = self.plan
        taken = src.get("snapshot")
        if taken is not None and taken.status != 0:
            self.undo.forget("snapshot")
            if zfs.classify_error(taken.stderr) == zfs.EXISTS:
                return True
            src.ok("snapshot")
        ours = layout.snapshot_name(plan.name)
        self.seen.source_snaps = [s for s in zfs.parse_snapshots(
            src.ok("source-snapshots").stdout, plan.source) if s.snapname != ours]
        if plan.uses_bookmarks:
            self.seen.source_marks = zfs.parse_bookmarks(src.ok("source-bookmarks").stdout,
                                                         plan.source)
        if "encryption" in src:
            self.seen.encrypted = zfs.is_encrypted(src.ok("encryption").stdout, plan.source)
        if plan.d.fsfreeze:
            return any(s.snapname == ours for s in zfs.parse_snapshots(
                src["source-snapshots"].stdout, plan.source))
        return False

    def interrupted_stream(self, token: str) -> resume.Resumable | None:
        """The stream a dead run of this definition left on the target, which
        this run finishes under that run's name and time (the snapshot this run
        took is then superseded); any other partial receive there is discarded
        (`receive -A`) and the run goes on as a new one. One more call per node,
        only when the target holds a token."""
        plan = self.plan
        found = resume.judge(self.sessions(plan.compute), token, plan.source, plan.d,
                             self.seen.source_snaps)
        if not isinstance(found, str) and self.cat.backups(
                vm=plan.vm.uuid, disk_id=plan.d.disk_id,
                name=layout.backup_name(plan.d.name, found.created)):
            found = f"a backup named after {found.snapshot} exists"
        if isinstance(found, str):
            _say(self.reporter, "warn", f"{plan.d.ref}: interrupted transfer into {plan.target} "
                 f"discarded: {found}; starting over")
            self.seen.target_snaps = resume.abort(self.sessions(plan.target_node), plan.target,
                                                  self.seen.target_snaps)
            return None
        if "snapshot" in self.undo:  # ours is superseded: trimmed after, removed on failure
            self.superseded = plan.snapshot
            self.undo.forget("snapshot")
            self.undo.made("superseded", plan.compute, zfs.destroy(plan.snapshot))
        self.cat.delete_backup(self.pending)
        self.plan = plan.at(found.created)
        self.add_row()
        _say(self.reporter, "info", f"{plan.d.ref}: resuming the interrupted transfer of "
             f"{found.snapshot} ({found.info.bytes} bytes already on {plan.target_node.name})")
        return found

    def freeze_snapshot(self) -> tuple[bool, str]:
        plan = self.plan
        self.undo.made("snapshot", plan.compute, zfs.destroy(plan.snapshot))
        result = freeze.snapshot(self.sessions(plan.compute), plan.compute, plan.vm,
                                 plan.snapshot)
        if not result.thawed:
            _say(self.reporter, "warn", f"{plan.d.ref}: GUEST MAY STILL BE FROZEN: "
                 f"{result.note}")
            return result.frozen, f"thaw failed: {result.note}"
        if not result.frozen:
            _say(self.reporter, "warn", f"{plan.d.ref}: backup taken without freeze: "
                 f"{result.note}")
            return False, f"not frozen: {result.note}"
        return True, ""

    # --- the stream ---------------------------------------------------------
    def move(self, source_stages, stages, total=None,
             **options) -> paths.transfer_stream.Moved | None:
        plan = self.plan
        moved = paths.move(paths.Transfer.of(plan.compute, plan.target_node, source_stages,
                                             stages, rate=plan.d.bwlimit, **options),
                           sessions=self.sessions, reporter=self.reporter, total=total)
        self.sent = moved.size if moved is not None else None
        return moved

    def estimate(self, t: NodeSession, base: str | None) -> int | None:
        """Stream size for the progress bar: `send -nvP` where the node has it,
        else the snapshot's referenced bytes for a full send, else unknown."""
        snapshot = self.plan.snapshot
        if self.plan.compute.capabilities.get("send_estimate"):
            result = t.run(zfs.send_estimate(snapshot, base), check=False)
            return zfs.parse_send_estimate(result.stdout + result.stderr)
        if base is not None:
            return None
        referenced = zfs.parse_get(t.run(zfs.get(snapshot, "referenced")).stdout)[
            snapshot].get("referenced")
        return referenced if isinstance(referenced, int) else None

    # --- after the stream: one call per node --------------------------------
    def finished(self, started: float, frozen: bool, note: str, location: str, size: int,
                 checksum: str | None) -> Backup:
        return replace(self.pending, status="ok", duration=round(time.monotonic() - started, 3),
                       size=size, note=note, fsfreeze=frozen, location=location,
                       checksum=checksum, manifest=self.plan.manifest_at(self.seen.mount))

    def finish(self, steps: list[batch.Step], done, after: list[batch.Step],
               trim: list[batch.Step] | None = None) -> tuple[Backup, batch.Results]:
        """The backup node's last call: `steps`, then the manifest, whose content
        `done(results of steps)` gives within the same call, then `after` (what
        may fail with only a warning). `trim`, the source's last call, runs at
        the same time; on one node it joins the call after the manifest (as does a
        dataset backup's trim, which two nodes run after this call: the old base
        must stay until the new backup is whole). Returns the backup and the
        backup node's results."""
        plan = self.plan
        path = plan.manifest_at(self.seen.mount)
        self.undo.made_files(plan.target_node, path, layout.partial_path(path))
        steps = [*steps, batch.Step("manifest", files.write(path), stop=True, input=True)]
        finished: list[Backup] = []

        def feed(results: batch.Results) -> bytes:
            finished.append(done(results))
            return manifest.build(finished[0], plan.d, plan.vm, plan.compute)

        if plan.same_node:  # one call: trim after the manifest
            trim = trim or (self.trim_steps() if plan.d.type == "dataset" else [])
            dst, src = self.ask(plan.target_node, [*steps, *trim, *after], feed=feed)
        else:
            dst, src = self.ask(plan.target_node, [*steps, *after], plan.compute, trim or [],
                                feed=feed)
        dst = calls.settled(dst)
        for step in steps:
            dst.ok(step.name)
        if trim:
            self.trim_source(src)
        return finished[0], dst

    def trim_steps(self) -> list[batch.Step]:
        """Keep on the source only what the next incremental needs: the new
        snapshot, or (`bookmarks`) its bookmark instead.

        Ours are the snapshots named for this definition, and those of its
        backups made under an earlier name (a dataset backup keeps its new one,
        a file backup needs none); and a snapshot this run superseded by
        resuming. The new snapshot goes only once its bookmark is made.
        """
        plan, seen = self.plan, self.seen
        mine = {layout.snapshot_name(b.name) for b in self.cat.backups(
            vm=plan.vm.uuid, definition=plan.d.name, disk_id=plan.d.disk_id)}
        steps = []
        if plan.uses_bookmarks:
            mark = zfs.bookmark_of(plan.snapshot)
            steps = [batch.Step("bookmark", zfs.replace_with_bookmark(plan.snapshot))]
            steps += [batch.Step(f"unmark-{i}", zfs.destroy(name)) for i, name in
                      enumerate(bookmarks.stale(seen.source_marks, plan.d, mine, keep=mark))]
        done = [] if plan.d.type == "dataset" else [plan.snapshot]
        names = [name for name in [s.name for s in seen.source_snaps if s.name != plan.snapshot]
                 + done if (snap := name.split("@", 1)[1]) in mine
                 or layout.owned_by(snap, plan.d)]
        names += [self.superseded] if self.superseded else []
        return steps + [batch.Step(f"trim-{i}", zfs.destroy(name))
                        for i, name in enumerate(names)]

    def trim_source(self, outcome) -> None:
        """A failed trim only warns: the backup is whole, and the next run trims again."""
        if isinstance(outcome, EsbackupError):
            _say(self.reporter, "warn", f"{self.plan.d.ref}: old snapshots not trimmed: "
                 f"{outcome}")
        elif isinstance(outcome, BaseException):
            raise outcome
        elif outcome is not None and "bookmark" in outcome and outcome["bookmark"].status:
            _say(self.reporter, "warn", f"{self.plan.d.ref}: {self.plan.snapshot} not replaced "
                 f"by a bookmark: {outcome['bookmark'].stderr.strip()}")

    def clean_up(self) -> None:
        """Take back what this run made (the ledger); best effort, the original
        error wins. A dataset stream that died on its way into a target that kept
        a resume token keeps its source snapshot: the next run resumes it."""
        if "snapshot" in self.undo and self.resumable_remains():
            self.undo.forget("snapshot")
        self.undo.undo(self.reporter, sessions=self.sessions)

    def resumable_remains(self) -> bool:
        if self.plan.d.type != "dataset" or self.streamed:
            return False
        try:
            kept = resume.kept(self.sessions(self.plan.target_node), self.plan.target)
        except Exception:  # noqa: BLE001 - cleanup must not hide the first error
            return False
        if kept:
            _say(self.reporter, "warn", f"{self.plan.d.ref}: {self.plan.snapshot} kept: the "
                 "next run resumes its transfer")
        return kept


def lost_race(dst: batch.Results) -> bool:
    """True if `zfs create -p <pool>/backups/ds` failed with "already exists": two runs
    of one tick made it on a fresh storage at once (zfs checks, then creates), and
    the other won. Asking again finds it made (-p takes an existing one quietly)."""
    made = dst.get("create")
    return made is not None and made.status != 0 and zfs.classify_error(
        made.stderr) == zfs.EXISTS
