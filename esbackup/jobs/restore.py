"""Restore a backup onto a VM disk: whole or not at all.

The data goes into a temporary sibling dataset first. Only when it is whole
is the target renamed aside, the new one renamed in, and the old one (with
its snapshots, as the product spec warns) destroyed. A restore that fails or
dies leaves the target disk as it was.
"""
from __future__ import annotations

from datetime import datetime, timezone

from esbackup import nodes
from esbackup.catalog import Catalog
from esbackup.drivers import compress, hypervisor, zfs
from esbackup.errors import InvalidInput, OperationFailed
from esbackup.jobs import layout, locks, paths, recover
from esbackup.models import VM, Backup, Node


def check_stopped(compute: Node, vm: VM, force: bool) -> None:
    argv = hypervisor.state_argv(compute.hypervisor, vm.uuid)
    if argv is None:
        if not force:
            raise InvalidInput(f"cannot tell whether {vm.hostname} is stopped (hypervisor "
                               f"{compute.hypervisor}): stop it, then restore with --force")
        return
    answer = nodes.session(compute).run(argv, check=False)
    state = hypervisor.parse_state(compute.hypervisor, compute.name,
                                   f"virtual server {vm.hostname} ({vm.uuid})",
                                   answer.status, answer.stdout, answer.stderr)
    if state != hypervisor.STOPPED[compute.hypervisor]:
        raise InvalidInput(f"virtual server {vm.hostname} is {state or 'unknown'}: stop it first")


def restore(cat: Catalog, b: Backup, vm: VM, disk_id: int, *, force: bool = False,
            wait: float = 0, app=None) -> None:
    if b.status != "ok":
        raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups can be restored")
    if disk_id not in vm.disks:
        raise InvalidInput(f"virtual server {vm.hostname} has no disk {disk_id}")
    with locks.Locks(cat, owner=f"restore {b.ref} to {vm.hostname} disk {disk_id}") as held:
        held.disk(vm.uuid, disk_id, wait, vm=vm.hostname)
        if (b.vm_uuid, b.disk_id) != (vm.uuid, disk_id):
            held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
        recover.after_takeover(cat, held.stale, app)
        b = cat.backup(b.vm_uuid, b.name)
        if b.status != "ok":  # it may have changed while we waited for the lock
            raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups can be restored")
        job = RestoreJob(cat, b, vm, disk_id, cat.node(vm.node), cat.node(b.node), app)
        check_stopped(job.compute, vm, force)
        job.preflight()
        cat.update_backup(b, status="restore")
        try:
            job.run()
        finally:
            cat.update_backup(b, status="ok")


class RestoreJob:
    def __init__(self, cat: Catalog, b: Backup, vm: VM, disk_id: int, compute: Node,
                 source: Node, reporter=None):
        self.cat, self.b, self.vm, self.compute, self.source = cat, b, vm, compute, source
        self.reporter = reporter
        self.target = vm.disks[disk_id]
        self.own_disk = (vm.uuid, disk_id)  # a dataset backup restored onto its own disk
        # keeps the received snapshot: the next backup can go on incrementally from it
        self.when = datetime.now(timezone.utc)
        self.temp = layout.restore_temp(self.target, self.when)

    def preflight(self) -> None:
        """Refuse before touching anything: corrupt file, small disk, no space,
        or datasets below the disk (not in the backup, and not named for loss)."""
        why = self.b.type == "dataset" and zfs.stream_refusal(self.source.capabilities,
                                                              self.compute.capabilities)
        if why:
            raise InvalidInput(f"cannot restore {self.b.ref} onto node {self.compute.name}: {why}")
        src_t, dst_t = nodes.session(self.source), nodes.session(self.compute)
        children = dst_t.run(zfs.list_children(self.target)).stdout.split()[1:]
        if children:
            raise InvalidInput(f"target disk {self.target} has datasets below it "
                               f"({children[0]}); restore refuses to destroy them")
        if self.b.type == "file":
            tools = self.source.capabilities.get("tools", {})
            actual = nodes.sha256(src_t, self.b.location, tools)
            if actual != self.b.checksum:
                raise OperationFailed(f"backup {self.b.ref} is corrupt: SHA-256 {actual} != "
                                      f"recorded {self.b.checksum}; target left untouched")
            needed, volsize = nodes.file_size(src_t, self.b.location), None
        else:
            props = zfs.parse_get(src_t.run(zfs.get(self.b.location,
                                                    ("referenced", "volsize"))).stdout)
            needed = int(props[self.b.location]["referenced"] or 0)
            volsize = props[self.b.location].get("volsize")
        target = zfs.parse_get(dst_t.run(zfs.get(self.target, ("refquota", "quota",
                                                                "available", "volsize"))).stdout)
        props = target[self.target]
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

    def run(self) -> None:
        receive = zfs.receive(self.temp, unmounted=True, caps=self.compute.capabilities)
        try:
            if self.b.type == "dataset":
                source_stages, input_path = [zfs.send(self.b.location)], None
            else:
                compression = layout.compression_of(self.b.location)
                tools = self.source.capabilities.get("tools", {})
                source_stages = [compress.decompressor(compression, tools) or ["cat"]]
                input_path = self.b.location
            paths.move(self.source, self.compute, source_stages=source_stages,
                       stages=[receive], input_path=input_path, reporter=self.reporter,
                       direct_ok=False)
            self.swap()
        except BaseException:
            recover.best_effort([(self.compute, zfs.destroy(self.temp, recursive=True,
                                                            force=True))], self.reporter)
            raise

    def swap(self) -> None:
        """Rename the whole new data in; the disk keeps its own local properties
        (quotas, mountpoint, user properties), which a plain stream does not carry."""
        t = nodes.session(self.compute)
        local = zfs.parse_local(t.run(zfs.get_local(self.target)).stdout)
        old = layout.restore_old(self.target, self.when)
        try:
            nodes.rename(t, self.target, old)
        except BaseException:
            t.run(zfs.mount(self.target), check=False)
            raise
        try:
            nodes.rename(t, self.temp, self.target)
        except BaseException:
            nodes.rename(t, old, self.target)  # put the disk back
            t.run(zfs.mount(self.target), check=False)
            raise
        for prop, value in local.items():
            result = t.run(zfs.set_property(self.target, prop, value), check=False)
            if result.status and self.reporter is not None:
                self.reporter.warn(f"{self.target}: could not set {prop}={value} again: "
                                   f"{result.stderr.strip()}")
        t.run(zfs.mount(self.target), check=False)
        gone = t.run(zfs.destroy(old, recursive=True, force=True), check=False)
        if gone.status and self.reporter is not None:  # e.g. a clone depends on it
            self.reporter.warn(f"restored; the old disk is kept as {old}: "
                               f"{gone.stderr.strip()}")
        received = f"{self.target}@{layout.snapshot_name(self.b.name)}"
        if self.b.type != "dataset" or (self.b.vm_uuid, self.b.disk_id) != self.own_disk:
            t.run(zfs.destroy(received), check=False)
