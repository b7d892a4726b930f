"""Turn a backup definition into a backup: snapshot, transfer, manifest, retention.

A run either ends with an `ok` backup row, its data whole on the backup node
and a manifest beside it, or with nothing: no row, no new snapshot, no
partial file. Every attempt is recorded in the run history.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property

from esbackup import nodes
from esbackup.catalog import Catalog, utcnow
from esbackup.drivers import compress, zfs
from esbackup.errors import Busy, EsbackupError, InvalidInput
from esbackup.jobs import freeze, layout, locks, manifest, paths, recover, retention, runlog
from esbackup.models import VM, Backup, Definition, Node, Run, Storage


def start_run(cat: Catalog, d: Definition, trigger: str, firing: str | None = None) -> Run:
    """Record a run as started. A tick run names its schedule `firing`: a second
    claim of the same firing (another admin host's tick) raises InvalidInput."""
    return cat.add_run(Run(definition=d.ref, trigger=trigger, started=utcnow(), pid=os.getpid(),
                           host=locks.host_id(), firing=firing))


def run_definition(cat: Catalog, d: Definition, *, trigger: str, wait: float = 0,
                   force: bool = False, reporter=None, run: Run | None = None) -> Backup:
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
            recover.after_takeover(cat, held.stale, reporter)
            compute, target_node = cat.node(vm.node), cat.node(d.node)
            held.slot(compute.name, compute.max_backups, wait)
            if target_node.name != compute.name:
                held.slot(target_node.name, target_node.max_backups, wait)
            job = BackupJob(cat, d, vm, compute, target_node, cat.storage(d.node, d.storage),
                            reporter)
            backup = job.run()
            removed = retention.apply(cat, d, backup, reporter)
    except Busy as error:
        runlog.finish(cat, run, "skipped", error=str(error))
        raise
    except BaseException as error:
        runlog.finish(cat, run, "failed", error=str(error) or type(error).__name__)
        raise
    runlog.finish(cat, run, "ok", backup=backup)
    for old in removed:
        _say(reporter, "info", f"retention: removed backup {old.ref}")
    return backup


def _say(reporter, level: str, message: str) -> None:
    if reporter is not None:
        getattr(reporter, level)(message)


@dataclass
class BackupJob:
    cat: Catalog
    d: Definition
    vm: VM
    compute: Node
    target_node: Node
    storage: Storage
    reporter: object = None
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(
        microsecond=0))
    # what this run made, for cleanup on failure
    made_snapshot: bool = False
    made_target_snapshot: str | None = None
    partial: str | None = None
    made_files: list[str] = field(default_factory=list)
    # the source's snapshots before this run (the disk is locked: nobody else adds any)
    source_snaps: list[zfs.Snapshot] = field(default_factory=list)
    held_base: str | None = None  # the target snapshot whose hold moves to the new one

    @property
    def name(self) -> str:
        return layout.backup_name(self.d.name, self.created)

    @property
    def source(self) -> str:
        return self.vm.disks[self.d.disk_id]

    @cached_property
    def mount(self) -> str:
        """Where the storage is mounted on the backup node (asked once)."""
        return nodes.mountpoint(nodes.session(self.target_node), self.storage.zpool)

    @property
    def snapshot(self) -> str:
        return layout.source_snapshot(self.source, self.name)

    def run(self) -> Backup:
        zfs.validate_dataset_name(self.source)
        why = self.d.type == "dataset" and zfs.stream_refusal(self.compute.capabilities,
                                                              self.target_node.capabilities)
        if why:
            raise InvalidInput(f"{self.d.ref}: node {self.target_node.name} cannot hold this "
                               f"dataset backup: {why} (a file backup can)")
        self.unique_name()
        row = self.cat.add_backup(Backup(
            name=self.name, vm=self.vm.hostname, vm_uuid=self.vm.uuid, disk_id=self.d.disk_id,
            type=self.d.type, created=self.created.isoformat(), status="pending",
            node=self.target_node.name, storage=self.storage.name, definition=self.d.name),
            definition_id=self.d.id)
        started = time.monotonic()
        try:
            self.prepare_storage()
            frozen, note = self.take_snapshot()
            if self.d.type == "dataset":
                location, size, checksum = self.dataset_backup()
            else:
                location, size, checksum = self.file_backup()
            done = replace(row, status="ok", duration=round(time.monotonic() - started, 3),
                           size=size, note=note, fsfreeze=frozen, location=location,
                           checksum=checksum)
            done.manifest = self.write_manifest(done)
            row = self.cat.update_backup(row, status="ok", duration=done.duration, size=size,
                                         note=note, fsfreeze=frozen, location=location,
                                         checksum=checksum, manifest=done.manifest)
        except BaseException:
            self.clean_up()
            self.cat.delete_backup(row)
            raise
        self.trim_source()
        self.move_hold(row)
        return row

    def unique_name(self) -> None:
        """Names carry the second they were made in: a second backup of the same
        definition within one second waits for the next. Also checks that the
        source dataset exists before anything is recorded."""
        t = nodes.session(self.compute)
        self.source_snaps = zfs.parse_snapshots(t.run(zfs.list_snapshots(self.source)).stdout,
                                                self.source)
        taken = {s.snapname for s in self.source_snaps}
        while layout.snapshot_name(self.name) in taken or self.cat.backups(
                vm=self.vm.uuid, definition=self.d.name, disk_id=self.d.disk_id, name=self.name):
            time.sleep(max(0.0, 1 - datetime.now(timezone.utc).microsecond / 1e6))
            self.created = datetime.now(timezone.utc).replace(microsecond=0)

    # --- steps ---------------------------------------------------------
    def prepare_storage(self) -> None:
        """`<pool>/backups` is a dataset of its own (holding `ds/`, files and
        manifests), made before anything is written under its mountpoint."""
        t = nodes.session(self.target_node)
        t.run(zfs.create(layout.dataset_root(self.storage.zpool), parents=True))

    def take_snapshot(self) -> tuple[bool, str]:
        t = nodes.session(self.compute)
        self.made_snapshot = True  # the name is new (unique_name): removing it is safe
        if self.d.fsfreeze:
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
        t.run(zfs.snapshot(self.snapshot))
        return False, ""

    def dataset_backup(self) -> tuple[str, int, None]:
        target = layout.dataset_target(self.storage.zpool, self.vm.uuid, self.d.disk_id)
        src_t, dst_t = nodes.session(self.compute), nodes.session(self.target_node)
        base, existing = self.incremental_base(dst_t, target)
        used_before = self.used(dst_t, target) if base else 0
        both = zfs.common_features(self.compute.capabilities, self.target_node.capabilities)
        send = zfs.send(self.snapshot, base=base, compact=True, caps=both)
        # -F with an incremental only rolls the target back to its newest
        # snapshot, the base: live changes (or a snapshot a failed run removed)
        # are undone, no backup is touched.
        receive = zfs.receive(target, force=base is not None, unmounted=True,
                              caps=self.target_node.capabilities)
        ours = f"{target}@{layout.snapshot_name(self.name)}"
        if base is not None:
            self.held_base = f"{target}@{base.split('@', 1)[1]}"
        if ours not in existing:  # one that was there before is not ours to remove
            self.made_target_snapshot = ours
        self.move([send], [receive], total=lambda: self.estimate(src_t, base),
                  bulk=base is None)
        if base is None:
            dst_t.run(zfs.set_property(target, "readonly", "on"))
        return ours, self.used(dst_t, target) - used_before, None

    def incremental_base(self, dst_t, target: str) -> tuple[str | None, set[str]]:
        """The newest target snapshot, if the source still has it, else None (a
        full send); and the names of the target's snapshots.

        Anything else would need the target rolled back. With no usable base,
        an existing target is renamed aside, never destroyed; its backups move
        with it and stay restorable.
        """
        if not zfs.parse_exists(*_status(dst_t.run(zfs.exists(target), check=False))):
            return None, set()
        target_snaps = zfs.parse_snapshots(dst_t.run(zfs.list_snapshots(target)).stdout, target)
        if target_snaps:
            newest = target_snaps[-1]
            for snap in self.source_snaps:
                if snap.snapname == newest.snapname and snap.guid == newest.guid:
                    return snap.name, {s.name for s in target_snaps}
        aside = layout.aside_name(target, self.created)
        nodes.rename(dst_t, target, aside)
        self.cat.move_backup_locations(self.target_node.name, self.storage.name, f"{target}@",
                                       f"{aside}@")
        self.rewrite_manifests(dst_t, aside)
        _say(self.reporter, "warn", f"{self.d.ref}: no common snapshot with {target}; full "
             f"backup into a fresh target, old one kept as {aside}")
        return None, set()

    def rewrite_manifests(self, t, aside: str) -> None:
        """Manifests follow their backups aside, so a rebuilt catalog finds them."""
        moved = [b for b in self.cat.backups(vm=self.vm.uuid, disk_id=self.d.disk_id,
                                             node=self.target_node.name)
                 if b.location and b.location.startswith(f"{aside}@") and b.manifest]
        raws = nodes.read_files(t, [b.manifest for b in moved])  # one call for all
        for b, raw in zip(moved, raws, strict=True):
            try:
                if raw is None:
                    raise ValueError("missing or too large")
                data = manifest.parse(raw)
                data["backup"]["location"] = b.location
                nodes.write_file(t, b.manifest, manifest.dump(data))
            except (EsbackupError, ValueError) as error:
                _say(self.reporter, "warn", f"manifest {b.manifest} not updated: {error}")

    @staticmethod
    def used(t, dataset: str) -> int:
        value = zfs.parse_get(t.run(zfs.get(dataset, "used")).stdout)[dataset]["used"]
        return int(value or 0)

    def file_backup(self) -> tuple[str, int, str]:
        dst_t = nodes.session(self.target_node)
        tools = self.target_node.capabilities.get("tools", {})
        path = layout.file_path(self.mount, self.vm.uuid, self.d.disk_id, self.name,
                                self.d.compression)
        self.partial = layout.partial_path(path)
        folder = path.rpartition("/")[0]
        dst_t.run(["mkdir", "-p", folder])
        # we hold the disk's lock: any partial file here is a dead run's leftover
        dst_t.run(["find", folder, "-maxdepth", "1", "-name", ".*.part", "-type", "f",
                   "-delete"])
        filters = compress.compressor(self.d.compression, tools)
        moved = self.move([zfs.send(self.snapshot)], [filters or ["cat"]], output=self.partial,
                          total=lambda: self.estimate(nodes.session(self.compute), None),
                          checksum=filters is None)
        if moved is not None and filters is None:
            checksum = moved.sha256  # the very bytes `cat` stored, hashed on their way
        else:
            checksum = nodes.sha256(dst_t, self.partial, tools)
        dst_t.run(["mv", "-f", self.partial, path])
        self.made_files.append(path)
        self.partial = None
        return path, nodes.file_size(dst_t, path), checksum

    def move(self, source_stages, stages, output=None, total=None, **options):
        return paths.move(self.compute, self.target_node, source_stages=source_stages,
                          stages=stages, output=output, rate=self.d.bwlimit,
                          reporter=self.reporter, total=total, **options)

    def estimate(self, t, base: str | None) -> int | None:
        """Stream size for the progress bar: `send -nvP` where the node has it,
        else the snapshot's referenced bytes for a full send, else unknown."""
        if self.compute.capabilities.get("send_estimate"):
            result = t.run(zfs.send_estimate(self.snapshot, base), check=False)
            return zfs.parse_send_estimate(result.stdout + result.stderr)
        if base is not None:
            return None
        props = zfs.parse_get(t.run(zfs.get(self.snapshot, "referenced")).stdout)
        return props[self.snapshot].get("referenced")

    def write_manifest(self, backup: Backup) -> str:
        dst_t = nodes.session(self.target_node)
        path = layout.manifest_path(self.mount, self.vm.uuid, self.d.disk_id, self.name)
        backup.manifest = path
        nodes.write_file(dst_t, path, manifest.build(backup, self.d, self.vm, self.compute))
        self.made_files.append(path)
        return path

    def trim_source(self) -> None:
        """Keep on the source only the snapshot the next incremental needs.

        Ours are the snapshots named for this definition, and those of its
        backups made under an earlier name. A failure here only warns: the
        backup is whole, and the next run trims again.
        """
        mine = {layout.snapshot_name(b.name) for b in self.cat.backups(
            vm=self.vm.uuid, definition=self.d.name, disk_id=self.d.disk_id)}
        done = [] if self.d.type == "dataset" else [self.snapshot]
        try:
            t = nodes.session(self.compute)
            for name in [s.name for s in self.source_snaps] + done:
                snapname = name.split("@", 1)[1]
                if snapname in mine or layout.owned_by(snapname, self.d):
                    t.run(zfs.destroy(name), check=False)
        except EsbackupError as error:
            _say(self.reporter, "warn", f"{self.d.ref}: old snapshots not trimmed: {error}")

    def move_hold(self, backup: Backup) -> None:
        """Hold the new newest target snapshot (tag `esbackup`), the next incremental's
        base, so that a stray `zfs destroy` cannot silently break the chain; then
        release the old base. Only on nodes that list holds (OpenZFS, illumos).
        A failure only warns: the backup is whole."""
        if self.d.type != "dataset" or not self.target_node.capabilities.get("holds_list"):
            return
        t = nodes.session(self.target_node)
        result = t.run(zfs.hold(layout.HOLD_TAG, backup.location), check=False)
        if result.status:
            _say(self.reporter, "warn", f"{self.d.ref}: no hold on {backup.location}: "
                 f"{result.stderr.strip()}")
        elif self.held_base:
            t.run(zfs.release(layout.HOLD_TAG, self.held_base), check=False)

    def clean_up(self) -> None:
        """Remove what this run made; best effort, the original error wins."""
        steps = []
        if self.made_snapshot:
            steps.append((self.compute, zfs.destroy(self.snapshot)))
        if self.made_target_snapshot:
            steps.append((self.target_node, zfs.destroy(self.made_target_snapshot)))
        files = [p for p in (self.partial, *self.made_files) if p]
        if files:
            steps.append((self.target_node, ["rm", "-f", "--", *files]))
        recover.best_effort(steps, self.reporter)


def _status(result) -> tuple[int, str]:
    return result.status, result.stderr
