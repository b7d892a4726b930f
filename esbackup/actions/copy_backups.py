"""`copy run`: send a definition's backups on to its copy's backup node.

(Not `actions/copy.py`, which is `catalog copy`.) A run holds the disk's
lock (no backup, retention or restore of that disk changes the chain while
it reads it) and a slot on both backup nodes. It sends what
engine/copy_plan.py chooses, oldest first, through the nodes' data path
(engine/paths.py: relay through this host by default), each backup whole or
not at all: a pending location row while it streams, then `ok` with its
size and the manifest written beside it on the copy node, as on the primary,
so that `catalog rebuild --node` finds it there alone.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

from esbackup.actions import delete
from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import utcnow
from esbackup.domain.models import Backup, CopyDefinition, Definition, Node, Storage
from esbackup.drivers import batch, compress, files, zfs
from esbackup.drivers.session import Reporter, Sessions, parse_mountpoint
from esbackup.engine import calls, copy_plan, layout, locks, manifest, paths, retention
from esbackup.engine.undo import Undo
from esbackup.errors import InvalidInput, OperationFailed


def run_copy(cat: Catalog, d: Definition, c: CopyDefinition, *, sessions: Sessions,
             wait: float = 0, reporter: Reporter | None = None) -> list[Backup]:
    """Copy now; the copy definition records when it started and how it ended.
    Returns the backups copied."""
    cat.note_copy_run(c, last_started=utcnow())
    try:
        with locks.Locks(cat, owner=f"copy {c.ref}") as held:
            vm = cat.vm(d.vm)
            held.disk(vm.uuid, d.disk_id, wait, vm=vm.hostname)
            backups = cat.backups(definition_id=d.id, status="ok")
            copies = cat.copy_locations([b.id for b in backups if b.id], node=c.node)
            for loc in [loc for found in copies.values() for loc in found]:
                if loc.status == "pending":  # a dead run's: its data never became a copy
                    cat.delete_location(loc)
            steps = copy_plan.to_send(backups, copies, c.node)
            target = cat.node(c.node)
            for node in sorted({s.backup.node for s in steps}):
                source = cat.node(node)
                held.slot(source.name, source.max_backups, wait)
            if steps:
                held.slot(target.name, target.max_backups, wait)
            job = CopyJob(cat, d, c, target, cat.storage(c.node, c.storage), reporter,
                          sessions=sessions)
            sent = [job.send(step) for step in steps]
            removed = prune_copy(cat, d, c, reporter, sessions=sessions)
    except BaseException as error:
        cat.note_copy_run(c, last_error=str(error) or type(error).__name__)
        raise
    cat.note_copy_run(c, last_ok=utcnow(), last_error=None)
    if reporter is not None:
        for b in removed:
            reporter.info(f"copy {c.ref}: retention removed {b.name} from {c.node}")
    return sent


def prune_copy(cat: Catalog, d: Definition, c: CopyDefinition, reporter: Reporter | None = None,
               *, sessions: Sessions) -> list[Backup]:
    """Remove from the copy's node what its own retention does not keep
    (engine/retention.copy_due): that node's data and manifest only. A backup
    whose last location this was goes; one whose row held this copy keeps its
    next copy in the row. One call on the node for the copies' data, one for
    their manifests; the caller holds the disk lock."""
    due = retention.copy_due(cat, d, c)
    rows = [b for b, loc in due if loc.id is None]  # the row itself is the copy
    removed = delete.remove_many(cat, rows, reporter, sessions=sessions)
    copies = [(b, loc) for b, loc in due if loc.id is not None]
    if not copies:
        return removed
    node = cat.node(c.node)
    holds = node.capabilities.get("holds_list", False)
    steps = [step for i, (b, loc) in enumerate(copies)
             for step in delete.data_steps(i, replace(b, location=loc.location), holds)]
    session = sessions(node)
    results = session.batch(steps)
    gone = []
    for i, (b, loc) in enumerate(copies):
        data = results.get(f"data-{i}")
        if data is None or data.status == 0 or zfs.classify_error(data.stderr) == zfs.NOT_FOUND:
            gone.append((b, loc))
        elif reporter is not None:
            reporter.warn(f"copy {c.ref}: {b.name} not removed from {c.node}: "
                          f"{data.stderr.strip()}")
    if manifests := [loc.manifest for _, loc in gone if loc.manifest]:
        session.remove_files(*manifests)
    for _, loc in gone:
        cat.delete_location(loc)
    return removed + [b for b, _ in gone]


class CopyJob:
    """The copies of one run to one node. Remote calls per backup: one batch
    on the copy node before the stream (the first only), the stream, one
    batch after it (size, readonly, manifest)."""

    def __init__(self, cat: Catalog, d: Definition, c: CopyDefinition, target: Node,
                 storage: Storage, reporter: Reporter | None = None, *,
                 sessions: Sessions) -> None:
        self.cat, self.d, self.c, self.target, self.storage = cat, d, c, target, storage
        self.reporter, self.sessions = reporter, sessions
        self.vm = cat.vm(d.vm)  # every backup of the run is of this VM's disk: its manifests'
        self.vm_node = cat.node(self.vm.node)
        self.mount: str | None = None
        self.target_snaps: dict[str, list[zfs.Snapshot] | None] = {}  # per target dataset

    def send(self, step: copy_plan.Step) -> Backup:
        b = step.backup
        source = self.cat.node(b.node)
        if b.type == "dataset":
            why = zfs.stream_refusal(source.capabilities, self.target.capabilities)
            if why:
                raise InvalidInput(f"copy {self.c.ref}: node {self.target.name} cannot hold "
                                   f"dataset backup {b.ref}: {why}")
        self.prepare(b)
        pending = self.cat.add_location(b.id or 0, self.target.name, self.storage.name,
                                        self.c.id, status="pending", created=b.created)
        undo = Undo()
        started = time.monotonic()
        try:
            if b.type == "dataset":
                location, size = self.send_dataset(source, step, undo)
                checksum = None
            else:
                location, size, checksum = self.send_file(source, b, undo)
            path = layout.manifest_path(self.mount or "", b.vm_uuid, b.disk_id, b.name)
            undo.made_files(self.target, path)
            copied = replace(b, node=self.target.name, storage=self.storage.name,
                             location=location, manifest=path, size=size, checksum=checksum
                             or b.checksum, verified=None, verify_result=None,
                             verify_error=None)
            self.sessions(self.target).write_file(
                path, manifest.build(copied, self.d, self.vm, self.vm_node))
            self.cat.update_location(pending, status="ok", size=size, location=location,
                                     manifest=path, checksum=copied.checksum)
        except BaseException:
            undo.undo(self.reporter, sessions=self.sessions)
            self.cat.delete_location(pending)
            raise
        if self.reporter is not None:
            self.reporter.info(f"copy {self.c.ref}: {b.name} in "
                               f"{time.monotonic() - started:.1f} s")
        return b

    # --- before the first stream: the copy node's datasets and folders ------
    def prepare(self, b: Backup) -> None:
        target = layout.dataset_target(self.storage.zpool, b.vm_uuid, b.disk_id)
        if self.mount is not None and (b.type == "file" or target in self.target_snaps):
            return
        steps = [batch.Step("create", zfs.create(layout.dataset_root(self.storage.zpool),
                                                 parents=True), stop=True),
                 batch.Step("mountpoint", zfs.get(self.storage.zpool, "mountpoint"), stop=True)]
        if b.type == "dataset":
            steps.append(batch.Step("target-snapshots", zfs.list_snapshots(target)))
        else:
            steps.append(batch.Step("folder", files.prepare_folder(
                self.storage.zpool, layout.file_dir("", b.vm_uuid, b.disk_id)), stop=True))
        dst = calls.settled(calls.ask(self.target, steps, sessions=self.sessions)[0])
        made = dst["create"]
        if made.status and zfs.classify_error(made.stderr) != zfs.EXISTS:
            dst.ok("create")
        self.mount = parse_mountpoint(self.storage.zpool, dst.ok("mountpoint").stdout)
        if b.type == "dataset":
            listing = dst["target-snapshots"]
            self.target_snaps[target] = (zfs.parse_snapshots(listing.stdout, target)
                                         if zfs.parse_exists(listing.status, listing.stderr)
                                         else None)
        else:
            dst.ok("folder")

    # --- the streams ---------------------------------------------------------
    def send_dataset(self, source: Node, step: copy_plan.Step, undo: Undo) -> tuple[str, int]:
        b = step.backup
        target = layout.dataset_target(self.storage.zpool, b.vm_uuid, b.disk_id)
        snaps = self.target_snaps.get(target)
        base = None
        if step.base is not None and snaps and snaps[-1].name.split("@", 1)[1] == \
                layout.snapshot_name(step.base.name):
            base = step.base.stored_at
        elif snaps is not None:  # a full send needs a fresh target: the old one goes aside
            self.set_aside(target)
        ours = f"{target}@{layout.snapshot_name(b.name)}"
        both = zfs.common_features(source.capabilities, self.target.capabilities)
        # raw (-w) whenever both ends can: an encrypted backup can only be sent so
        # (its key is never on a backup node), and an unencrypted one goes as stored
        send = zfs.send(b.stored_at, base=base, raw=True, compact=not both.get("raw"),
                        caps=both)
        receive = zfs.receive(target, force=base is not None, unmounted=True,
                              caps=self.target.capabilities)
        undo.made("target-snapshot", self.target, zfs.destroy(ours))
        paths.move(paths.Transfer.of(source, self.target, [send], [receive],
                                     rate=self.c.bwlimit, bulk=base is None),
                   sessions=self.sessions, reporter=self.reporter)
        steps = [batch.Step("readonly", zfs.set_property(target, "readonly", "on"),
                            stop=True)] if base is None else []
        steps.append(batch.Step("used", zfs.get(ours, "used"), stop=True))
        done = self.sessions(self.target).batch(steps)
        if base is None:
            done.ok("readonly")
        used = zfs.parse_get(done.ok("used").stdout).get(ours, {}).get("used")
        self.target_snaps[target] = [*(self.target_snaps.get(target) or []), zfs.Snapshot(
            ours, 0, 0, 0, used if isinstance(used, int) else 0, None)]
        return ours, used if isinstance(used, int) else 0

    def set_aside(self, target: str) -> None:
        """No common backup with the copy's dataset: it is renamed aside, never
        destroyed; the copies in it follow it in the catalog."""
        aside = layout.aside_name(target, datetime.now(timezone.utc))
        self.sessions(self.target).rename(target, aside)
        self.cat.move_copy_locations(self.target.name, f"{target}@", f"{aside}@")
        self.target_snaps[target] = None
        if self.reporter is not None:
            self.reporter.warn(f"copy {self.c.ref}: no common backup with {target} on "
                               f"{self.target.name}; full copy, old one kept as {aside}")

    def send_file(self, source: Node, b: Backup, undo: Undo) -> tuple[str, int, str]:
        """The file as it is stored, then its SHA-256 read back on the copy node
        and checked against the backup's before it takes its name."""
        path = layout.file_path(self.mount or "", b.vm_uuid, b.disk_id, b.name,
                                layout.compression_of(b.stored_at))
        partial = layout.partial_path(path)
        undo.made_files(self.target, partial)
        paths.move(paths.Transfer.of(source, self.target, [compress.STORE], [compress.STORE],
                                     input_path=b.stored_at, output=partial,
                                     rate=self.c.bwlimit, direct_ok=False),
                   sessions=self.sessions, reporter=self.reporter)
        tools = self.target.capabilities.get("tools", {})
        t = self.sessions(self.target)
        checked = t.batch([batch.Step("sha256", files.sha256(partial, tools), stop=True)])
        actual = files.parse_sha256(checked.ok("sha256").stdout)
        if actual != b.checksum:
            raise OperationFailed(f"copy of {b.ref} on {self.target.name} is damaged: SHA-256 "
                                  f"{actual} != recorded {b.checksum}")
        done = t.batch([batch.Step("place", files.place(partial, path), stop=True),
                        batch.Step("size", files.size(path), stop=True)])
        done.ok("place")
        undo.forget(partial)
        undo.made_files(self.target, path)
        return path, files.parse_size(done.ok("size").stdout), actual
