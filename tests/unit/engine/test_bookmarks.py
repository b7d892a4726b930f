"""Bookmark choices (engine/bookmarks.py): the incremental base and what to trim."""
from __future__ import annotations

from esbackup.drivers import zfs
from esbackup.engine import bookmarks
from tests.unit.scripted import DAILY, SNAP, SNAP_GUID, SOURCE, snap


def test_bookmark_base_and_trim():
    newest = snap("tank/t@esb-daily-20261130_070000", SNAP_GUID)
    mark = zfs.Bookmark(f"{SOURCE}#esb-daily-20261130_070000", SNAP_GUID, 21)
    assert bookmarks.base(newest, [snap(SNAP, SNAP_GUID)], [mark]) == SNAP
    assert bookmarks.base(newest, [], [mark]) == mark.name
    assert bookmarks.base(newest, [], [zfs.Bookmark(mark.name, 1, 21)]) is None
    old = zfs.Bookmark(f"{SOURCE}#esb-daily-20261129_070000", 7, 20)
    other = zfs.Bookmark(f"{SOURCE}#esb-weekly-20261129_070000", 8, 19)
    renamed = zfs.Bookmark(f"{SOURCE}#esb-old-20261128_070000", 6, 18)
    assert bookmarks.stale([renamed, other, old, mark], DAILY, {"esb-old-20261128_070000"},
                           keep=mark.name) == [renamed.name, old.name]
