"""Bookmarks on the source: the base of the next incremental without held space.

After a dataset backup succeeds, a source with `bookmarks` (OpenZFS, illumos)
turns the backup's snapshot into the bookmark `ds#esb-<backup>` and destroys
the snapshot: between runs the hypervisor keeps no snapshot, so no space is
held. `zfs send -i ds#esb-<backup> ds@esb-<new>` then sends the next
incremental. zfs-fuse has no bookmarks and keeps the snapshot.
"""
from __future__ import annotations

from esbackup.domain.models import Definition
from esbackup.drivers import zfs
from esbackup.engine import layout


def base(newest: zfs.Snapshot, snaps: list[zfs.Snapshot],
         marks: list[zfs.Bookmark]) -> str | None:
    """The source's snapshot, else bookmark, that is the target's newest
    snapshot (same name and guid): the base of an incremental; else None."""
    for snap in snaps:
        if snap.snapname == newest.snapname and snap.guid == newest.guid:
            return snap.name
    for mark in marks:
        if mark.mark == newest.snapname and mark.guid == newest.guid:
            return mark.name
    return None


def stale(marks: list[zfs.Bookmark], d: Definition, mine: set[str], keep: str) -> list[str]:
    """This definition's bookmarks but `keep` (the next incremental's base).
    `mine` are the snapshot names of its backups made under an earlier name."""
    return [m.name for m in marks
            if m.name != keep and (m.mark in mine or layout.owned_by(m.mark, d))]
