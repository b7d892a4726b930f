"""Deleting a backup: its data on the node, its manifest, its row."""
from __future__ import annotations

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.drivers import zfs
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import layout, locks, retention
from esbackup.errors import EsbackupError, OperationFailed


def delete_backup(cat: Catalog, b: Backup, wait: float = 0, *, sessions: Sessions) -> None:
    """Delete a backup; Busy (exit 5) while another operation holds its disk."""
    if b.status == "lost":
        cat.delete_backup(b)
        return
    with locks.Locks(cat, owner=f"delete {b.ref}") as held:
        held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
        remove(cat, cat.backup(b.vm_uuid, b.name), sessions=sessions)


def apply_retention(cat: Catalog, d: Definition, reporter: Reporter | None = None, *,
                    sessions: Sessions) -> list[Backup]:
    """Delete what exceeds the definition's retention (engine/retention.py); the
    caller holds the disk lock.

    A backup that cannot be deleted now stays (and is tried again after the
    next backup): the new backup is whole either way, so that is a warning.
    """
    removed = []
    for old in retention.due(cat, d):
        try:
            remove(cat, old, sessions=sessions)
            removed.append(old)
        except EsbackupError as error:
            if reporter is not None:
                reporter.warn(f"retention: backup {old.ref} not deleted: {error}")
    return removed


def remove(cat: Catalog, b: Backup, *, sessions: Sessions) -> None:
    """Remove data, manifest and row; the caller holds the disk lock."""
    node = cat.node(b.node)
    t = sessions(node)
    if b.location:
        if b.type == "dataset":
            check_own_snapshot(b.location)
            if node.capabilities.get("holds_list"):  # the newest carries esbackup's hold
                t.run(zfs.release(layout.HOLD_TAG, b.location), check=False)
            result = t.run(zfs.destroy(b.location), check=False)
            if result.status and zfs.classify_error(result.stderr) != zfs.NOT_FOUND:
                raise OperationFailed(f"cannot delete {b.location}: {result.stderr.strip()}")
        else:
            t.remove_files(b.location)
    if b.manifest:
        t.remove_files(b.manifest)
    cat.delete_backup(b)


def check_own_snapshot(location: str) -> None:
    """Never destroy anything but a snapshot this tool made."""
    zfs.validate_snapshot_name(location)
    if not location.split("@", 1)[1].startswith(layout.SNAP_PREFIX):
        raise OperationFailed(f"refusing to destroy {location}: not an esbackup snapshot")
