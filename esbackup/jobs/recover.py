"""Cleaning up after runs that died: their pending rows, partial data, stray snapshots."""
from __future__ import annotations

import re

from esbackup import nodes
from esbackup.catalog import Catalog
from esbackup.drivers import zfs
from esbackup.jobs import layout
from esbackup.models import Backup


def best_effort(steps: list[tuple], reporter=None) -> None:
    """Run cleanup commands [(node, argv)], reporting but never raising failures."""
    for node, argv in steps:
        try:
            result = nodes.session(node).run(argv, check=False)
            failed = result.status != 0 and zfs.classify_error(result.stderr) != zfs.NOT_FOUND
            detail = result.stderr.strip()
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the first error
            failed, detail = True, str(error)
        if failed and reporter is not None:
            reporter.warn(f"cleanup on {node.name} failed: {' '.join(argv[:3])}: {detail}")


def after_takeover(cat: Catalog, stale: list[dict], reporter=None) -> None:
    """A lock was taken from a dead process: undo what its run left on that disk,
    and close its history row (it could not: its process or admin host died)."""
    for holder in stale:
        kind, _, rest = holder["resource"].partition(":")
        if kind != "disk":
            continue
        if run := re.search(r"\(run (\d+)\)$", holder["owner"]):
            cat.abandon_run(int(run.group(1)), f"its process died (pid {holder['pid']} on "
                                               f"{holder['host']}); taken over")
        vm_uuid, _, disk_id = rest.rpartition(":")
        from esbackup.jobs import restore

        for b in cat.backups(vm=vm_uuid, disk_id=int(disk_id), status="pending"):
            discard_pending(cat, b, reporter)
        restore.recover_disk(cat, vm_uuid, int(disk_id), reporter)
        restore.reset_stale_status(cat, reporter)


def discard_pending(cat: Catalog, b: Backup, reporter=None) -> None:
    """Remove a pending backup's row and whatever part of it reached the nodes."""
    steps = []
    try:
        vm = cat.vm(b.vm_uuid)
        dataset = vm.disks.get(b.disk_id)
        if dataset:
            steps.append((cat.node(vm.node), zfs.destroy(layout.source_snapshot(dataset, b.name))))
    except Exception:  # noqa: BLE001 - the VM may be gone; its backups stay
        pass
    target_node = cat.node(b.node)
    storage = cat.storage(b.node, b.storage)
    mount = nodes.mountpoint(nodes.session(target_node), storage.zpool)
    steps.append((target_node, ["rm", "-f", "--", layout.manifest_path(
        mount, b.vm_uuid, b.disk_id, b.name)]))
    if b.type == "dataset":
        target = layout.dataset_target(storage.zpool, b.vm_uuid, b.disk_id)
        steps.append((target_node, zfs.destroy(f"{target}@{layout.snapshot_name(b.name)}")))
    else:
        for compression in layout.EXTENSIONS:
            path = layout.file_path(mount, b.vm_uuid, b.disk_id, b.name, compression)
            steps.append((target_node, ["rm", "-f", "--", path, layout.partial_path(path)]))
    best_effort(steps, reporter)
    cat.delete_backup(b)
    if reporter is not None:
        reporter.warn(f"cleaned up backup {b.ref} left pending by a run that died")
