"""The two kinds of backup a run makes (actions/backup.py): into a dataset, or a file.

A kind says what the backup node is asked before the stream, reads its
answer, and carries the stream and the backup node's last call. Everything a
kind makes on a node goes into the run's undo ledger as it is made.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from esbackup.domain.models import Backup
from esbackup.drivers import batch, compress, files, zfs
from esbackup.drivers.session import NodeSession, parse_mountpoint
from esbackup.engine import bookmarks, layout, manifest
from esbackup.errors import EsbackupError, InvalidInput

if TYPE_CHECKING:
    from esbackup.actions.backup import BackupJob


class DatasetKind:
    """`zfs send` into `<pool>/backups/ds/<uuid>-disk<N>`: incremental from the
    target's newest snapshot when the source still has it (or its bookmark)."""

    def __init__(self, job: BackupJob) -> None:
        self.job = job

    def target_steps(self) -> list[batch.Step]:
        plan = self.job.plan
        steps = [batch.Step("mountpoint", zfs.get(plan.storage.zpool, "mountpoint")),
                 batch.Step("target-snapshots", zfs.list_snapshots(plan.target))]
        if plan.target_node.capabilities.get("resume"):
            steps.append(batch.Step("resume-token", zfs.resume_token(plan.target)))
        return steps

    def read_target(self, dst: batch.Results) -> None:
        plan, seen = self.job.plan, self.job.seen
        seen.mount = parse_mountpoint(plan.storage.zpool, dst.ok("mountpoint").stdout)
        listing = dst["target-snapshots"]
        if zfs.parse_exists(listing.status, listing.stderr):
            seen.target_snaps = zfs.parse_snapshots(listing.stdout, plan.target)
            used = zfs.parse_get(listing.stdout).get(plan.target, {}).get("used")
            seen.target_used = used if isinstance(used, int) else 0
            if "resume-token" in dst:
                seen.token = zfs.parse_resume_token(dst.ok("resume-token").stdout)

    def transfer(self, started: float, frozen: bool, note: str) -> Backup:
        job = self.job
        plan, seen = job.plan, job.seen
        target = plan.target
        both = zfs.common_features(plan.compute.capabilities, plan.target_node.capabilities)
        if seen.encrypted and not both.get("raw"):  # never send an encrypted disk in clear
            raise InvalidInput(f"{plan.d.ref}: {plan.source} is encrypted and node "
                               f"{plan.target_node.name} cannot receive a raw stream (-w)")
        if job.resuming:  # an incremental's base is the target's newest snapshot
            info = job.resuming.info
            base = seen.target_snaps[-1].name if info.fromguid and seen.target_snaps else None
            send, total = zfs.send_resume(job.resuming.token), info.remaining
            job.resumed = info.bytes
        else:
            base = self.incremental_base(target)
            send = zfs.send(plan.snapshot, base=base, raw=seen.encrypted,
                            compact=not seen.encrypted, caps=both)
            total = None
        existing = {s.name for s in seen.target_snaps or []}
        used_before = seen.target_used if base else 0
        # -F with an incremental only rolls the target back to its newest
        # snapshot, the base: live changes (or a snapshot a failed run removed)
        # are undone, no backup is touched. -s (both ends have `resume`) keeps
        # what arrived of a stream that dies, for the next run to resume.
        # -x mountpoint -x canmount where the node has it, `contain` right after
        # on all: a stream never places a mountpoint on the backup node
        receive = zfs.receive(target, force=base is not None and not job.resuming,
                              unmounted=True, resumable=both.get("resume", False),
                              contained=True, caps=plan.target_node.capabilities)
        ours = f"{target}@{layout.snapshot_name(plan.name)}"
        held_base = f"{target}@{re.split('[@#]', base, maxsplit=1)[1]}" if base else None
        if ours not in existing:  # one that was there before is not ours to remove
            job.undo.made("target-snapshot", plan.target_node, zfs.destroy(ours))
        job.move([send], [receive], total=lambda: total or job.estimate(
            job.sessions(plan.compute), base), bulk=base is None)
        job.streamed = True
        steps = [batch.Step("contain", zfs.contain(target), stop=True)]
        if base is None:
            steps.append(batch.Step("readonly", zfs.set_property(target, "readonly", "on"),
                                    stop=True))
        steps.append(batch.Step("used", zfs.get(target, "used"), stop=True))

        def done(results: batch.Results) -> Backup:
            results.ok("contain")
            if base is None:
                results.ok("readonly")
            used = zfs.parse_get(results.ok("used").stdout).get(target, {}).get("used")
            size = (used if isinstance(used, int) else 0) - used_before
            return job.finished(started, frozen, note, ours, size, None)

        backup, dst = job.finish(steps, done, self.hold_steps(ours, held_base))
        if "hold" in dst and dst["hold"].status == 0:
            job.undo.made("hold", plan.target_node, zfs.release(layout.HOLD_TAG, ours))
        elif "hold" in dst and job.reporter is not None:
            job.reporter.warn(f"{plan.d.ref}: no hold on {ours}: {dst['hold'].stderr.strip()}")
        return backup

    def incremental_base(self, target: str) -> str | None:
        """The newest target snapshot, if the source still has it, else None (a
        full send).

        Anything else would need the target rolled back. With no usable base,
        an existing target is renamed aside, never destroyed; its backups move
        with it and stay restorable.
        """
        job = self.job
        plan, seen = job.plan, job.seen
        if seen.target_snaps is None:
            return None
        if seen.target_snaps:
            base = bookmarks.base(seen.target_snaps[-1], seen.source_snaps, seen.source_marks)
            if base is not None:
                return base
        dst_t = job.sessions(plan.target_node)
        aside = layout.aside_name(target, plan.created)
        dst_t.rename(target, aside)
        seen.target_snaps = None
        job.cat.move_backup_locations(plan.target_node.name, plan.storage.name, f"{target}@",
                                      f"{aside}@")
        self.rewrite_manifests(dst_t, aside)
        if job.reporter is not None:
            job.reporter.warn(f"{plan.d.ref}: no common snapshot with {target}; full backup "
                              f"into a fresh target, old one kept as {aside}")
        return None

    def rewrite_manifests(self, t: NodeSession, aside: str) -> None:
        """Manifests follow their backups aside, so a rebuilt catalog finds them."""
        job = self.job
        plan = job.plan
        moved = [b for b in job.cat.backups(vm=plan.vm.uuid, disk_id=plan.d.disk_id,
                                            node=plan.target_node.name)
                 if b.location and b.location.startswith(f"{aside}@") and b.manifest]
        raws = t.read_files([b.manifest for b in moved if b.manifest])  # one call for all
        for b, raw in zip(moved, raws, strict=True):
            try:
                if raw is None or b.manifest is None:
                    raise ValueError("missing or too large")
                data = manifest.parse(raw)
                data["backup"]["location"] = b.location
                t.write_file(b.manifest, manifest.dump(data))
            except (EsbackupError, ValueError) as error:
                if job.reporter is not None:
                    job.reporter.warn(f"manifest {b.manifest} not updated: {error}")

    def hold_steps(self, ours: str, held_base: str | None) -> list[batch.Step]:
        """Hold the new newest target snapshot (tag `esbackup`), the next incremental's
        base, so that a stray `zfs destroy` cannot silently break the chain; then
        release the old base. Only on nodes that list holds (OpenZFS, illumos).
        A failure only warns: the backup is whole."""
        if not self.job.plan.target_node.capabilities.get("holds_list"):
            return []
        steps = [batch.Step("hold", zfs.hold(layout.HOLD_TAG, ours), stop=True)]
        if held_base:
            steps.append(batch.Step("release", zfs.release(layout.HOLD_TAG, held_base)))
        return steps


class FileKind:
    """`zfs send` of the snapshot into a file under `<pool>/backups/file/`,
    compressed on the backup node or stored as it came (then hashed here)."""

    def __init__(self, job: BackupJob) -> None:
        self.job = job

    def target_steps(self) -> list[batch.Step]:
        plan = self.job.plan
        folder = layout.file_dir("", plan.vm.uuid, plan.d.disk_id)
        return [batch.Step("folder", files.prepare_folder(plan.storage.zpool, folder))]

    def read_target(self, dst: batch.Results) -> None:
        self.job.seen.mount = files.parse_prepared_folder(self.job.plan.storage.zpool,
                                                          dst.ok("folder").stdout)

    def transfer(self, started: float, frozen: bool, note: str) -> Backup:
        job = self.job
        plan = job.plan
        tools = plan.target_node.capabilities.get("tools", {})
        path = layout.file_path(job.seen.mount, plan.vm.uuid, plan.d.disk_id, plan.name,
                                plan.d.compression)
        partial = layout.partial_path(path)
        job.undo.made_files(plan.target_node, partial)
        filters = compress.compressor(plan.d.compression, tools)
        moved = job.move([zfs.send(plan.snapshot, raw=job.seen.encrypted,
                                   caps=plan.compute.capabilities)],
                         [filters or compress.STORE],
                         output=partial,
                         total=lambda: job.estimate(job.sessions(plan.compute), None),
                         checksum=filters is None)
        hashed = moved is not None and filters is None  # the very bytes `cat` stored
        steps = [] if hashed else [batch.Step("sha256", files.sha256(partial, tools),
                                              stop=True)]
        steps += [batch.Step("place", files.place(partial, path), stop=True),
                  batch.Step("size", files.size(path), stop=True)]
        job.undo.made_files(plan.target_node, path)

        def done(results: batch.Results) -> Backup:
            checksum = moved.sha256 if hashed and moved is not None else files.parse_sha256(
                results.ok("sha256").stdout)
            results.ok("place")
            size = files.parse_size(results.ok("size").stdout)
            return job.finished(started, frozen, note, path, size, checksum)

        backup, _ = job.finish(steps, done, [], trim=job.trim_steps())
        job.undo.forget(partial)  # placed: the name is free again
        return backup
