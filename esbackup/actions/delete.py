"""Deleting a backup: its data on the node, its manifest, its row."""
from __future__ import annotations

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from esbackup.drivers import zfs
from esbackup.engine import layout, locks
from esbackup.errors import OperationFailed
from esbackup.services import nodes


def delete_backup(cat: Catalog, b: Backup, wait: float = 0) -> None:
    """Delete a backup; Busy (exit 5) while another operation holds its disk."""
    if b.status == "lost":
        cat.delete_backup(b)
        return
    with locks.Locks(cat, owner=f"delete {b.ref}") as held:
        held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
        remove(cat, cat.backup(b.vm_uuid, b.name))


def remove(cat: Catalog, b: Backup) -> None:
    """Remove data, manifest and row; the caller holds the disk lock."""
    node = cat.node(b.node)
    t = nodes.session(node)
    if b.location:
        if b.type == "dataset":
            check_own_snapshot(b.location)
            if node.capabilities.get("holds_list"):  # the newest carries esbackup's hold
                t.run(zfs.release(layout.HOLD_TAG, b.location), check=False)
            result = t.run(zfs.destroy(b.location), check=False)
            if result.status and zfs.classify_error(result.stderr) != zfs.NOT_FOUND:
                raise OperationFailed(f"cannot delete {b.location}: {result.stderr.strip()}")
        else:
            nodes.remove_files(t, b.location)
    if b.manifest:
        nodes.remove_files(t, b.manifest)
    cat.delete_backup(b)


def check_own_snapshot(location: str) -> None:
    """Never destroy anything but a snapshot this tool made."""
    zfs.validate_snapshot_name(location)
    if not location.split("@", 1)[1].startswith(layout.SNAP_PREFIX):
        raise OperationFailed(f"refusing to destroy {location}: not an esbackup snapshot")
