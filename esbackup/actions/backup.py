"""Turn a backup definition into a backup: snapshot, transfer, manifest, retention.

A run either ends with an `ok` backup row, its data whole on the backup node
and a manifest beside it, or with nothing: no row, no new snapshot, no
partial file. Every attempt is recorded in the run history.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from esbackup.actions import delete
from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import utcnow
from esbackup.domain.models import VM, Backup, Definition, Node, Run, Storage
from esbackup.drivers import batch, compress, files, zfs
from esbackup.drivers.session import NodeSession, Reporter, Sessions, parse_mountpoint
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
    runlog,
)
from esbackup.errors import Busy, EsbackupError, InvalidInput


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
            job = BackupJob(cat, d, vm, compute, target_node, cat.storage(d.node, d.storage),
                            reporter, sessions=sessions)
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
    return backup


def _say(reporter, level: str, message: str) -> None:
    if reporter is not None:
        getattr(reporter, level)(message)


@dataclass
class BackupJob:
    """One backup run. Remote calls: before the stream one batch per node (both
    nodes at once), the stream, then one batch per node (see `prepare`, `finish`)."""

    cat: Catalog
    d: Definition
    vm: VM
    compute: Node
    target_node: Node
    storage: Storage
    reporter: Reporter | None = None
    sessions: Sessions = field(kw_only=True)
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(
        microsecond=0))
    row: Backup | None = None  # the pending row, while the run lasts
    # what this run made, for cleanup on failure
    made_snapshot: bool = False
    made_target_snapshot: str | None = None
    held: str | None = None  # the target snapshot this run put a hold on
    partial: str | None = None
    made_files: list[str] = field(default_factory=list)
    # what the nodes said before the stream (the disk is locked: nobody else changes it)
    source_snaps: list[zfs.Snapshot] = field(default_factory=list)  # the source's, not ours
    target_snaps: list[zfs.Snapshot] | None = None  # None: no target yet
    target_used: int = 0
    mount: str | None = None  # where the storage is mounted on the backup node
    held_base: str | None = None  # the target snapshot whose hold moves to the new one
    source_marks: list[zfs.Bookmark] = field(default_factory=list)  # where `bookmarks`
    token: str | None = None  # the target's receive_resume_token, before the stream
    resuming: resume.Resumable | None = None  # a dead run's stream this run finishes
    superseded: str | None = None  # the snapshot this run took before it chose to resume
    streamed: bool = False  # the stream reached the target whole
    sent: int | None = None  # stream bytes that passed through this host
    resumed: int | None = None  # bytes a resumed stream did not send again

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

    def run(self) -> Backup:
        zfs.validate_dataset_name(self.source)
        why = self.d.type == "dataset" and zfs.stream_refusal(self.compute.capabilities,
                                                              self.target_node.capabilities)
        if why:
            raise InvalidInput(f"{self.d.ref}: node {self.target_node.name} cannot hold this "
                               f"dataset backup: {why} (a file backup can)")
        self.add_row()
        started = time.monotonic()
        try:
            frozen, note = self.prepare()
            if self.d.type == "dataset":
                done = self.dataset_backup(started, frozen, note)
            else:
                done = self.file_backup(started, frozen, note)
            row = self.cat.update_backup(
                self.row, status="ok", duration=done.duration, size=done.size, note=note,
                fsfreeze=frozen, location=done.location, checksum=done.checksum,
                manifest=done.manifest)
        except BaseException:
            self.clean_up()
            self.cat.delete_backup(self.row)
            raise
        if self.d.type == "dataset" and self.compute.name != self.target_node.name:
            self.trim_source(self.ask(self.compute, self.trim_steps())[0])
        return row

    def add_row(self) -> None:
        """The pending row, under a name no backup of this definition has yet.
        Names carry the second they were made in: a second backup of the same
        definition within one second waits for the next."""
        while self.cat.backups(vm=self.vm.uuid, definition=self.d.name,
                               disk_id=self.d.disk_id, name=self.name):
            self.next_second()
        self.row = self.cat.add_backup(Backup(
            name=self.name, vm=self.vm.hostname, vm_uuid=self.vm.uuid, disk_id=self.d.disk_id,
            type=self.d.type, created=self.created.isoformat(), status="pending",
            node=self.target_node.name, storage=self.storage.name, definition=self.d.name),
            definition_id=self.d.id)

    def next_second(self) -> None:
        time.sleep(max(0.0, 1 - datetime.now(timezone.utc).microsecond / 1e6))
        self.created = datetime.now(timezone.utc).replace(microsecond=0)

    def rename_row(self) -> None:
        """The snapshot name is taken on the source: the run moves to the next second."""
        self.cat.delete_backup(self.row)
        self.next_second()
        self.add_row()

    # --- before the stream: one call per node, both at once --------------
    def source_steps(self) -> list[batch.Step]:
        listing = [batch.Step("source-snapshots", zfs.list_snapshots(self.source))]
        if self.uses_bookmarks:
            listing.append(batch.Step("source-bookmarks", zfs.list_bookmarks(self.source)))
        if self.d.fsfreeze:  # the freeze step takes the snapshot, in a call of its own
            return listing
        return [batch.Step("snapshot", zfs.snapshot(self.snapshot), stop=True), *listing]

    @property
    def uses_bookmarks(self) -> bool:
        return self.d.type == "dataset" and bool(self.compute.capabilities.get("bookmarks"))

    def target_steps(self) -> list[batch.Step]:
        """`<pool>/backups` is a dataset of its own (holding `ds/`, files and
        manifests), made before anything is written under its mountpoint."""
        pool = self.storage.zpool
        create = batch.Step("create", zfs.create(layout.dataset_root(pool), parents=True),
                            stop=True)
        if self.d.type == "file":
            folder = layout.file_dir("", self.vm.uuid, self.d.disk_id)
            return [create, batch.Step("folder", files.prepare_folder(pool, folder))]
        steps = [create, batch.Step("mountpoint", zfs.get(pool, "mountpoint")),
                 batch.Step("target-snapshots", zfs.list_snapshots(self.target))]
        if self.target_node.capabilities.get("resume"):
            steps.append(batch.Step("resume-token", zfs.resume_token(self.target)))
        return steps

    def prepare(self) -> tuple[bool, str]:
        """Snapshot the source (unless frozen) and learn its snapshots; make the
        storage's datasets and folders and learn the target's snapshots."""
        self.made_snapshot = not self.d.fsfreeze  # a new name (add_row): removing it is safe
        src, dst = self.ask(self.compute, self.source_steps(), self.target_node,
                             self.target_steps())
        while self.snapshot_taken(calls.settled(src)):
            self.rename_row()
            self.made_snapshot = not self.d.fsfreeze
            src = self.ask(self.compute, self.source_steps(), self.target_node, [])[0]
        dst = calls.settled(dst)
        if lost_race(dst):  # made by another run meanwhile: now it is there
            dst = calls.settled(self.ask(self.target_node, self.target_steps())[0])
        self.read_target(dst)
        if self.token is not None:
            self.resuming = self.interrupted_stream()
            if self.resuming:
                return False, resume.NOTE
        if self.d.fsfreeze:
            return self.freeze_snapshot()
        return False, ""

    def snapshot_taken(self, src: batch.Results) -> bool:
        """Read the source's answer; True if the snapshot name exists already."""
        taken = src.get("snapshot")
        if taken is not None and taken.status != 0:
            self.made_snapshot = False
            if zfs.classify_error(taken.stderr) == zfs.EXISTS:
                return True
            src.ok("snapshot")
        ours = layout.snapshot_name(self.name)
        self.source_snaps = [s for s in zfs.parse_snapshots(
            src.ok("source-snapshots").stdout, self.source) if s.snapname != ours]
        if self.uses_bookmarks:
            self.source_marks = zfs.parse_bookmarks(src.ok("source-bookmarks").stdout,
                                                    self.source)
        if self.d.fsfreeze:
            return any(s.snapname == ours for s in zfs.parse_snapshots(
                src["source-snapshots"].stdout, self.source))
        return False

    def read_target(self, dst: batch.Results) -> None:
        dst.ok("create")
        if self.d.type == "file":
            self.mount = files.parse_prepared_folder(self.storage.zpool, dst.ok("folder").stdout)
            return
        self.mount = parse_mountpoint(self.storage.zpool, dst.ok("mountpoint").stdout)
        listing = dst["target-snapshots"]
        if zfs.parse_exists(listing.status, listing.stderr):
            self.target_snaps = zfs.parse_snapshots(listing.stdout, self.target)
            used = zfs.parse_get(listing.stdout).get(self.target, {}).get("used")
            self.target_used = used if isinstance(used, int) else 0
            if "resume-token" in dst:
                self.token = zfs.parse_resume_token(dst.ok("resume-token").stdout)

    def interrupted_stream(self) -> resume.Resumable | None:
        """The stream a dead run of this definition left on the target, which
        this run finishes under that run's name and time (the snapshot this run
        took is then superseded); any other partial receive there is discarded
        (`receive -A`) and the run goes on as a new one. One more call per node,
        only when the target holds a token."""
        found = resume.judge(self.sessions(self.compute), self.token, self.source, self.d,
                             self.source_snaps)
        if not isinstance(found, str) and self.cat.backups(
                vm=self.vm.uuid, disk_id=self.d.disk_id,
                name=layout.backup_name(self.d.name, found.created)):
            found = f"a backup named after {found.snapshot} exists"
        if isinstance(found, str):
            _say(self.reporter, "warn", f"{self.d.ref}: interrupted transfer into {self.target} "
                 f"discarded: {found}; starting over")
            self.target_snaps = resume.abort(self.sessions(self.target_node), self.target,
                                             self.target_snaps)
            return None
        if self.made_snapshot:
            self.superseded, self.made_snapshot = self.snapshot, False
        self.cat.delete_backup(self.row)
        self.created = found.created
        self.add_row()
        _say(self.reporter, "info", f"{self.d.ref}: resuming the interrupted transfer of "
             f"{found.snapshot} ({found.info.bytes} bytes already on {self.target_node.name})")
        return found

    def freeze_snapshot(self) -> tuple[bool, str]:
        t = self.sessions(self.compute)
        self.made_snapshot = True
        result = freeze.snapshot(t, self.compute, self.vm, self.snapshot)
        if not result.thawed:
            _say(self.reporter, "warn", f"{self.d.ref}: GUEST MAY STILL BE FROZEN: "
                 f"{result.note}")
            return result.frozen, f"thaw failed: {result.note}"
        if not result.frozen:
            _say(self.reporter, "warn", f"{self.d.ref}: backup taken without freeze: "
                 f"{result.note}")
            return False, f"not frozen: {result.note}"
        return True, ""

    # --- the stream ---------------------------------------------------------
    def dataset_backup(self, started: float, frozen: bool, note: str) -> Backup:
        target = self.target
        both = zfs.common_features(self.compute.capabilities, self.target_node.capabilities)
        if self.resuming:  # an incremental's base is the target's newest snapshot
            info = self.resuming.info
            base = self.target_snaps[-1].name if info.fromguid and self.target_snaps else None
            send, total = zfs.send_resume(self.resuming.token), info.remaining
            self.resumed = info.bytes
        else:
            base = self.incremental_base(target)
            send = zfs.send(self.snapshot, base=base, compact=True, caps=both)
            total = None
        existing = {s.name for s in self.target_snaps or []}
        used_before = self.target_used if base else 0
        # -F with an incremental only rolls the target back to its newest
        # snapshot, the base: live changes (or a snapshot a failed run removed)
        # are undone, no backup is touched. -s (both ends have `resume`) keeps
        # what arrived of a stream that dies, for the next run to resume.
        receive = zfs.receive(target, force=base is not None and not self.resuming,
                              unmounted=True, resumable=both.get("resume", False),
                              caps=self.target_node.capabilities)
        ours = f"{target}@{layout.snapshot_name(self.name)}"
        if base is not None:
            self.held_base = f"{target}@{re.split('[@#]', base, maxsplit=1)[1]}"
        if ours not in existing:  # one that was there before is not ours to remove
            self.made_target_snapshot = ours
        self.move([send], [receive], total=lambda: total or self.estimate(
            self.sessions(self.compute), base), bulk=base is None)
        self.streamed = True
        steps = [batch.Step("readonly", zfs.set_property(target, "readonly", "on"), stop=True)
                 ] if base is None else []
        steps.append(batch.Step("used", zfs.get(target, "used"), stop=True))

        def done(results: batch.Results) -> Backup:
            if base is None:
                results.ok("readonly")
            used = zfs.parse_get(results.ok("used").stdout).get(target, {}).get("used")
            return self.finished(started, frozen, note, ours, int(used or 0) - used_before, None)

        return self.finish(steps, done, self.hold_steps(ours))

    def incremental_base(self, target: str) -> str | None:
        """The newest target snapshot, if the source still has it, else None (a
        full send).

        Anything else would need the target rolled back. With no usable base,
        an existing target is renamed aside, never destroyed; its backups move
        with it and stay restorable.
        """
        if self.target_snaps is None:
            return None
        if self.target_snaps:
            base = bookmarks.base(self.target_snaps[-1], self.source_snaps, self.source_marks)
            if base is not None:
                return base
        dst_t = self.sessions(self.target_node)
        aside = layout.aside_name(target, self.created)
        dst_t.rename(target, aside)
        self.target_snaps = None
        self.cat.move_backup_locations(self.target_node.name, self.storage.name, f"{target}@",
                                       f"{aside}@")
        self.rewrite_manifests(dst_t, aside)
        _say(self.reporter, "warn", f"{self.d.ref}: no common snapshot with {target}; full "
             f"backup into a fresh target, old one kept as {aside}")
        return None

    def rewrite_manifests(self, t: NodeSession, aside: str) -> None:
        """Manifests follow their backups aside, so a rebuilt catalog finds them."""
        moved = [b for b in self.cat.backups(vm=self.vm.uuid, disk_id=self.d.disk_id,
                                             node=self.target_node.name)
                 if b.location and b.location.startswith(f"{aside}@") and b.manifest]
        raws = t.read_files([b.manifest for b in moved])  # one call for all
        for b, raw in zip(moved, raws, strict=True):
            try:
                if raw is None:
                    raise ValueError("missing or too large")
                data = manifest.parse(raw)
                data["backup"]["location"] = b.location
                t.write_file(b.manifest, manifest.dump(data))
            except (EsbackupError, ValueError) as error:
                _say(self.reporter, "warn", f"manifest {b.manifest} not updated: {error}")

    def file_backup(self, started: float, frozen: bool, note: str) -> Backup:
        tools = self.target_node.capabilities.get("tools", {})
        path = layout.file_path(self.mount, self.vm.uuid, self.d.disk_id, self.name,
                                self.d.compression)
        self.partial = layout.partial_path(path)
        filters = compress.compressor(self.d.compression, tools)
        moved = self.move([zfs.send(self.snapshot)], [filters or compress.STORE],
                          output=self.partial,
                          total=lambda: self.estimate(self.sessions(self.compute), None),
                          checksum=filters is None)
        hashed = moved is not None and filters is None  # the very bytes `cat` stored
        steps = [] if hashed else [batch.Step("sha256", files.sha256(self.partial, tools),
                                              stop=True)]
        steps += [batch.Step("place", files.place(self.partial, path), stop=True),
                  batch.Step("size", files.size(path), stop=True)]
        self.made_files.append(path)

        def done(results: batch.Results) -> Backup:
            checksum = moved.sha256 if hashed else files.parse_sha256(
                results.ok("sha256").stdout)
            results.ok("place")
            size = files.parse_size(results.ok("size").stdout)
            return self.finished(started, frozen, note, path, size, checksum)

        return self.finish(steps, done, [], trim=self.trim_steps())

    def ask(self, *nodes_and_steps, feed=None) -> list:
        return calls.ask(*nodes_and_steps, sessions=self.sessions, feed=feed)

    def move(self, source_stages, stages, total=None, **options):
        moved = paths.move(paths.Transfer.of(self.compute, self.target_node, source_stages,
                                             stages, rate=self.d.bwlimit, **options),
                           sessions=self.sessions, reporter=self.reporter, total=total)
        self.sent = moved.size if moved is not None else None
        return moved

    def estimate(self, t: NodeSession, base: str | None) -> int | None:
        """Stream size for the progress bar: `send -nvP` where the node has it,
        else the snapshot's referenced bytes for a full send, else unknown."""
        if self.compute.capabilities.get("send_estimate"):
            result = t.run(zfs.send_estimate(self.snapshot, base), check=False)
            return zfs.parse_send_estimate(result.stdout + result.stderr)
        if base is not None:
            return None
        props = zfs.parse_get(t.run(zfs.get(self.snapshot, "referenced")).stdout)
        return props[self.snapshot].get("referenced")

    # --- after the stream: one call per node --------------------------------
    def finished(self, started: float, frozen: bool, note: str, location: str, size: int,
                 checksum: str | None) -> Backup:
        return replace(self.row, status="ok", duration=round(time.monotonic() - started, 3),
                       size=size, note=note, fsfreeze=frozen, location=location,
                       checksum=checksum, manifest=layout.manifest_path(
                           self.mount, self.vm.uuid, self.d.disk_id, self.name))

    def finish(self, steps: list[batch.Step], done, after: list[batch.Step],
               trim: list[batch.Step] | None = None) -> Backup:
        """The backup node's last call: `steps`, then the manifest, whose content
        `done(results of steps)` gives within the same call, then `after` (what
        may fail with only a warning). `trim`, the source's last call, runs at
        the same time; on one node it joins the call after the manifest (as does a
        dataset backup's trim, which two nodes run after this call: the old base
        must stay until the new backup is whole)."""
        path = layout.manifest_path(self.mount, self.vm.uuid, self.d.disk_id, self.name)
        self.made_files += [path, layout.partial_path(path)]
        steps = [*steps, batch.Step("manifest", files.write(path), stop=True, input=True)]
        finished: list[Backup] = []

        def feed(results: batch.Results) -> bytes:
            finished.append(done(results))
            return manifest.build(finished[0], self.d, self.vm, self.compute)

        if self.compute.name == self.target_node.name:  # one call: trim after the manifest
            trim = trim or (self.trim_steps() if self.d.type == "dataset" else [])
            dst, src = self.ask(self.target_node, [*steps, *trim, *after], feed=feed)
        else:
            dst, src = self.ask(self.target_node, [*steps, *after], self.compute, trim or [],
                           feed=feed)
        dst = calls.settled(dst)
        for step in steps:
            dst.ok(step.name)
        self.partial = None
        if "hold" in dst:
            self.held = finished[0].location
            if dst["hold"].status:
                self.held = None
                _say(self.reporter, "warn", f"{self.d.ref}: no hold on {finished[0].location}: "
                     f"{dst['hold'].stderr.strip()}")
        if trim:
            self.trim_source(src)
        return finished[0]

    def hold_steps(self, ours: str) -> list[batch.Step]:
        """Hold the new newest target snapshot (tag `esbackup`), the next incremental's
        base, so that a stray `zfs destroy` cannot silently break the chain; then
        release the old base. Only on nodes that list holds (OpenZFS, illumos).
        A failure only warns: the backup is whole."""
        if not self.target_node.capabilities.get("holds_list"):
            return []
        steps = [batch.Step("hold", zfs.hold(layout.HOLD_TAG, ours), stop=True)]
        if self.held_base:
            steps.append(batch.Step("release", zfs.release(layout.HOLD_TAG, self.held_base)))
        return steps

    def trim_steps(self) -> list[batch.Step]:
        """Keep on the source only what the next incremental needs: the new
        snapshot, or (`bookmarks`) its bookmark instead.

        Ours are the snapshots named for this definition, and those of its
        backups made under an earlier name (a dataset backup keeps its new one,
        a file backup needs none); and a snapshot this run superseded by
        resuming. The new snapshot goes only once its bookmark is made.
        """
        mine = {layout.snapshot_name(b.name) for b in self.cat.backups(
            vm=self.vm.uuid, definition=self.d.name, disk_id=self.d.disk_id)}
        steps = []
        if self.uses_bookmarks:
            mark = zfs.bookmark_of(self.snapshot)
            steps = [batch.Step("bookmark", zfs.replace_with_bookmark(self.snapshot))]
            steps += [batch.Step(f"unmark-{i}", zfs.destroy(name)) for i, name in
                      enumerate(bookmarks.stale(self.source_marks, self.d, mine, keep=mark))]
        done = [] if self.d.type == "dataset" else [self.snapshot]
        names = [name for name in [s.name for s in self.source_snaps if s.name != self.snapshot]
                 + done if (snap := name.split("@", 1)[1]) in mine
                 or layout.owned_by(snap, self.d)]
        names += [self.superseded] if self.superseded else []
        return steps + [batch.Step(f"trim-{i}", zfs.destroy(name))
                        for i, name in enumerate(names)]

    def trim_source(self, outcome) -> None:
        """A failed trim only warns: the backup is whole, and the next run trims again."""
        if isinstance(outcome, EsbackupError):
            _say(self.reporter, "warn", f"{self.d.ref}: old snapshots not trimmed: {outcome}")
        elif isinstance(outcome, BaseException):
            raise outcome
        elif outcome is not None and "bookmark" in outcome and outcome["bookmark"].status:
            _say(self.reporter, "warn", f"{self.d.ref}: {self.snapshot} not replaced by a "
                 f"bookmark: {outcome['bookmark'].stderr.strip()}")

    def clean_up(self) -> None:
        """Remove what this run made; best effort, the original error wins.

        A dataset stream that died on its way into a target that kept a resume
        token keeps its source snapshot: the next run resumes it."""
        steps = []
        if self.made_snapshot and not self.resumable_remains():
            steps.append((self.compute, zfs.destroy(self.snapshot)))
        if self.superseded:
            steps.append((self.compute, zfs.destroy(self.superseded)))
        if self.made_target_snapshot:
            if self.held:
                steps.append((self.target_node, zfs.release(layout.HOLD_TAG, self.held)))
            steps.append((self.target_node, zfs.destroy(self.made_target_snapshot)))
        files_made = [p for p in (self.partial, *self.made_files) if p]
        if files_made:
            steps.append((self.target_node, files.remove(*files_made)))
        recover.best_effort(steps, self.reporter, sessions=self.sessions)


    def resumable_remains(self) -> bool:
        if self.d.type != "dataset" or self.streamed:
            return False
        try:
            kept = resume.kept(self.sessions(self.target_node), self.target)
        except Exception:  # noqa: BLE001 - cleanup must not hide the first error
            return False
        if kept:
            _say(self.reporter, "warn", f"{self.d.ref}: {self.snapshot} kept: the next run "
                 "resumes its transfer")
        return kept


def lost_race(dst: batch.Results) -> bool:
    """True if `zfs create -p <pool>/backups/ds` failed with "already exists": two runs
    of one tick made it on a fresh storage at once (zfs checks, then creates), and
    the other won. Asking again finds it made (-p takes an existing one quietly)."""
    made = dst.get("create")
    return made is not None and made.status != 0 and zfs.classify_error(
        made.stderr) == zfs.EXISTS
