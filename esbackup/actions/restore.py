"""Restore a backup onto a VM disk: whole or not at all.

The data goes into a temporary sibling dataset first. Only when it is whole
is the target renamed aside, the new one renamed in, and the old one (with
its snapshots, as the product spec warns) destroyed. A restore that fails or
dies leaves the target disk as it was.
"""
from __future__ import annotations

import contextlib
from datetime import datetime, timezone

from esbackup.catalog.core import Catalog
from esbackup.domain.models import VM, Backup, Node
from esbackup.drivers import batch, compress, files, hypervisor, zfs
from esbackup.drivers.session import NodeSession, Reporter, Sessions
from esbackup.drivers.transport import Result
from esbackup.engine import calls, layout, locks, paths, recover, sources
from esbackup.errors import InvalidInput, NodeUnreachable, OperationFailed


def state_steps(compute: Node, vm: VM, force: bool) -> list[batch.Step]:
    """The question whether the VM is stopped; none when its hypervisor cannot
    tell, which only --force accepts."""
    argv = hypervisor.state_argv(compute.hypervisor, vm.uuid)
    if argv is None:
        if not force:
            raise InvalidInput(f"cannot tell whether {vm.hostname} is stopped (hypervisor "
                               f"{compute.hypervisor}): stop it, then restore with --force")
        return []
    return [batch.Step("state", argv)]


def check_stopped(compute: Node, vm: VM, answer: Result) -> None:
    state = hypervisor.parse_state(compute.hypervisor, compute.name,
                                   f"virtual server {vm.hostname} ({vm.uuid})",
                                   answer.status, answer.stdout, answer.stderr)
    if state != hypervisor.STOPPED[compute.hypervisor]:
        raise InvalidInput(f"virtual server {vm.hostname} is {state or 'unknown'}: stop it first")


def restore(cat: Catalog, b: Backup, vm: VM, disk_id: int, *, sessions: Sessions,
            force: bool = False, wait: float = 0, app: Reporter | None = None,
            source: str | None = None) -> None:
    """`source` names the backup node to read from (the primary or a copy's);
    without it the primary, unless it is lost or unreachable: then a copy."""
    if disk_id not in vm.disks:
        raise InvalidInput(f"virtual server {vm.hostname} has no disk {disk_id}")
    with locks.Locks(cat, owner=f"restore {b.ref} to {vm.hostname} disk {disk_id}") as held:
        held.disk(vm.uuid, disk_id, wait, vm=vm.hostname)
        if (b.vm_uuid, b.disk_id) != (vm.uuid, disk_id):
            held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
        recover.after_takeover(cat, held.stale, app, sessions=sessions)
        b = cat.backup(b.vm_uuid, b.name)  # it may have changed while we waited for the lock
        places = sources.places(cat, b, source)
        for i, place in enumerate(places):
            job = RestoreJob(cat, sources.read_from(b, place), vm, disk_id, cat.node(vm.node),
                             cat.node(place.node), app, sessions=sessions)
            try:
                job.preflight(force)
            except NodeUnreachable as error:
                if i + 1 == len(places):
                    raise
                if app is not None:
                    app.warn(f"{b.ref}: node {place.node} is unreachable ({error}); restoring "
                             f"from the copy on {places[i + 1].node}")
                continue
            if not place.primary and source is None and app is not None and i == 0:
                app.warn(f"{b.ref}: only its copy on {place.node} holds it; restoring from "
                         "there" if b.copied else f"{b.ref}: the primary on {b.node} is "
                         f"{b.status}; restoring from the copy on {place.node}")
            break
        status = b.status
        cat.update_backup(b, status="restore")
        try:
            job.run()
        finally:
            cat.update_backup(b, status=status)


def would_replace(cat: Catalog, b: Backup, vm: VM, disk_id: int, *,
                  sessions: Sessions) -> list[str]:
    """What restoring `b` to `vm`'s disk destroys and replaces (`--dry-run`): the
    compute node is asked once, to list the disk's snapshots; no lock, no change."""
    if b.status != "ok":
        raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups can be restored")
    if disk_id not in vm.disks:
        raise InvalidInput(f"virtual server {vm.hostname} has no disk {disk_id}")
    target = vm.disks[disk_id]
    listing = sessions(cat.node(vm.node)).run(zfs.list_snapshots(target))
    snaps = [s.snapname for s in zfs.parse_snapshots(listing.stdout, target)]
    return [f"ALL data of {target} (disk {disk_id} of {vm.hostname}) on node {vm.node}",
            f"its {len(snaps)} snapshot(s)" + (": " + ", ".join(snaps) if snaps else ""),
            f"replaced by backup {b.ref} ({b.type}, {b.stored_at} on node {b.node})"]


class RestoreJob:
    """One restore. Remote calls: one batch per node before the stream (both
    nodes at once), the stream, one batch on the compute node for the swap
    (more only when a rename fails)."""

    def __init__(self, cat: Catalog, b: Backup, vm: VM, disk_id: int, compute: Node,
                 source: Node, reporter: Reporter | None = None, *, sessions: Sessions):
        self.cat, self.b, self.vm, self.compute, self.source = cat, b, vm, compute, source
        self.reporter, self.sessions = reporter, sessions
        self.location = b.stored_at
        self.target = vm.disks[disk_id]
        self.own_disk = (vm.uuid, disk_id)  # a dataset backup restored onto its own disk
        # keeps the received snapshot: the next backup can go on incrementally from it
        self.when = datetime.now(timezone.utc)
        self.temp = layout.restore_temp(self.target, self.when)
        self.local: dict[str, str] = {}  # the disk's own properties, set again after the swap

    def compute_steps(self, force: bool) -> list[batch.Step]:
        """Whether the VM is stopped, then the target disk: its children, size
        limits and space, and its own properties (the disk is locked: they stay)."""
        return [*state_steps(self.compute, self.vm, force),
                batch.Step("children", zfs.list_children(self.target)),
                batch.Step("target", zfs.get(self.target, ("refquota", "quota", "available",
                                                           "volsize"))),
                batch.Step("local", zfs.get_local(self.target))]

    def source_steps(self) -> list[batch.Step]:
        """The file backup's checksum and size, or the dataset backup's size."""
        if self.b.type == "file":
            tools = self.source.capabilities.get("tools", {})
            return [batch.Step("sha256", files.sha256(self.location, tools)),
                    batch.Step("size", files.size(self.location))]
        return [batch.Step("backup", zfs.get(self.location, ("referenced", "volsize")))]

    def preflight(self, force: bool = False) -> None:
        """Refuse before touching anything: a VM not stopped, corrupt file, small
        disk, no space, or datasets below the disk (not in the backup, and not
        named for loss)."""
        dst, src = calls.ask(self.compute, self.compute_steps(force), self.source,
                             self.source_steps(), sessions=self.sessions)
        dst = calls.settled(dst)
        if "state" in dst.steps:
            check_stopped(self.compute, self.vm, dst["state"])
        why = self.b.type == "dataset" and zfs.stream_refusal(self.source.capabilities,
                                                              self.compute.capabilities)
        if why:
            raise InvalidInput(f"cannot restore {self.b.ref} onto node {self.compute.name}: {why}")
        children = dst.ok("children").stdout.split()[1:]
        if children:
            raise InvalidInput(f"target disk {self.target} has datasets below it "
                               f"({children[0]}); restore refuses to destroy them")
        src = calls.settled(src)
        if self.b.type == "file":
            actual = files.parse_sha256(src.ok("sha256").stdout)
            if actual != self.b.checksum:
                raise OperationFailed(f"backup {self.b.ref} is corrupt: SHA-256 {actual} != "
                                      f"recorded {self.b.checksum}; target left untouched")
            needed, volsize = files.parse_size(src.ok("size").stdout), None
        else:
            backup = zfs.parse_get(src.ok("backup").stdout)[self.location]
            needed = int(backup["referenced"] or 0)
            volsize = zfs.numbers(backup).get("volsize")
        props = zfs.numbers(zfs.parse_get(dst.ok("target").stdout)[self.target])
        if volsize and props.get("volsize") and props["volsize"] < volsize:
            raise InvalidInput(f"target disk {self.target} ({props['volsize']} bytes) is smaller "
                               f"than backup {self.b.ref} ({volsize} bytes)")
        limit = min([v for v in (props.get("refquota"), props.get("quota")) if v] or [0])
        if limit and needed > limit:
            raise InvalidInput(f"target disk {self.target} ({limit} bytes) is smaller than "
                               f"backup {self.b.ref} ({needed} bytes)")
        available = int(props.get("available") or 0)
        if needed > available:
            raise OperationFailed(f"not enough space for {self.b.ref} on {self.compute.name}: "
                                  f"{needed} bytes needed, {available} available")
        self.local = zfs.parse_local(dst.ok("local").stdout)

    def run(self) -> None:
        receive = zfs.receive(self.temp, unmounted=True, caps=self.compute.capabilities)
        try:
            if self.b.type == "dataset":
                both = zfs.common_features(self.source.capabilities, self.compute.capabilities)
                # raw where both can: an encrypted backup goes back as ciphertext, the
                # key stays with the VM's dataset (loaded again after the swap)
                source_stages = [zfs.send(self.location, raw=True, caps=both)]
                input_path = None
            else:
                compression = layout.compression_of(self.location)
                tools = self.source.capabilities.get("tools", {})
                source_stages = [compress.decompressor(compression, tools) or compress.STORE]
                input_path = self.location
            paths.move(paths.Transfer.of(self.source, self.compute, source_stages, [receive],
                                         input_path=input_path, direct_ok=False),
                       sessions=self.sessions, reporter=self.reporter)
            self.swap()
        except BaseException:
            recover.best_effort([(self.compute, zfs.destroy(self.temp, recursive=True,
                                                            force=True))], self.reporter,
                                sessions=self.sessions)
            raise

    def swap_steps(self, old: str) -> list[batch.Step]:
        """The disk renamed aside, the new data renamed in (a failed rename ends
        the batch), then what follows a swap (`after_steps`)."""
        return [*self.aside_steps(old), *self.in_steps(), *self.after_steps(old)]

    def aside_steps(self, old: str) -> list[batch.Step]:
        return [batch.Step("unmount-disk", zfs.unmount(self.target)),  # a volume: fails, fine
                batch.Step("aside", zfs.rename(self.target, old), stop=True)]

    def in_steps(self) -> list[batch.Step]:
        return [batch.Step("unmount-new", zfs.unmount(self.temp)),
                batch.Step("in", zfs.rename(self.temp, self.target), stop=True)]

    def after_steps(self, old: str) -> list[batch.Step]:
        """The disk's own local properties (quotas, mountpoint, user properties:
        a plain stream does not carry them) set again, the disk mounted, the old
        one (with its snapshots, as the product spec warns) destroyed, and the
        received snapshot unless it is the base of this disk's next backup."""
        steps = [batch.Step(f"set-{i}", zfs.set_property(self.target, prop, value))
                 for i, (prop, value) in enumerate(self.local.items())]
        if "keylocation" in self.local:  # an encryption root received raw: its key again
            steps.append(batch.Step("load-key", zfs.load_key(self.target)))
        steps += [batch.Step("mount", zfs.mount(self.target)),
                  batch.Step("destroy-old", zfs.destroy(old, recursive=True, force=True))]
        if self.b.type != "dataset" or (self.b.vm_uuid, self.b.disk_id) != self.own_disk:
            received = f"{self.target}@{layout.snapshot_name(self.b.name)}"
            steps.append(batch.Step("destroy-received", zfs.destroy(received)))
        return steps

    def swap(self) -> None:
        """Rename the whole new data in, in one call. A rename that fails for a
        busy dataset (zfs-fuse, just after a read) goes on from there with
        the session's `rename`, which retries; any other failure puts the disk back."""
        t = self.sessions(self.compute)
        old = layout.restore_old(self.target, self.when)
        done = self.swap_batch(t, old, self.swap_steps(old))
        aside = done["aside"]
        if aside.status:
            try:
                if zfs.classify_error(aside.stderr) != zfs.BUSY:
                    done.ok("aside")
                t.rename(self.target, old)
            except BaseException:
                t.run(zfs.mount(self.target), check=False)
                raise
            done = self.swap_batch(t, old, [*self.in_steps(), *self.after_steps(old)])
        came_in = done["in"]
        if came_in.status:
            try:
                if zfs.classify_error(came_in.stderr) != zfs.BUSY:
                    done.ok("in")
                t.rename(self.temp, self.target)
            except BaseException:
                t.rename(old, self.target)  # put the disk back
                t.run(zfs.mount(self.target), check=False)
                raise
            done = t.batch(self.after_steps(old))
        for i, (prop, value) in enumerate(self.local.items()):
            result = done[f"set-{i}"]
            if result.status and self.reporter is not None:
                self.reporter.warn(f"{self.target}: could not set {prop}={value} again: "
                                   f"{result.stderr.strip()}")
        key = done.get("load-key")
        if key is not None and key.status and self.reporter is not None:
            self.reporter.warn(f"{self.target}: restored, but its key is not loaded: "
                               f"{key.stderr.strip()} (zfs load-key {self.target})")
        gone = done["destroy-old"]
        if gone.status and self.reporter is not None:  # e.g. a clone depends on it
            self.reporter.warn(f"restored; the old disk is kept as {old}: "
                               f"{gone.stderr.strip()}")

    def swap_batch(self, t: NodeSession, old: str, steps: list[batch.Step]) -> batch.Results:
        """Run swap steps that begin before the new data is in. A call that breaks
        off (connection lost, output cut short) leaves unknown which ran: the old
        disk goes back under its name if it was set aside, as far as it can (a
        rename never overwrites: with the new data in, this fails, and is fine)."""
        try:
            return t.batch(steps)
        except BaseException:
            with contextlib.suppress(Exception):
                t.rename(old, self.target)
            with contextlib.suppress(Exception):
                t.run(zfs.mount(self.target), check=False)
            raise
