"""Keep at most `retention` ok backups of a definition (0 keeps all)."""
from __future__ import annotations

from esbackup.actions import delete
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.errors import EsbackupError


def excess(backups: list[Backup], keep: int) -> list[Backup]:
    """The oldest ok backups beyond `keep`; backups must be oldest first."""
    ok = [b for b in backups if b.status == "ok"]
    return ok[:-keep] if keep and len(ok) > keep else []


def apply(cat: Catalog, d: Definition, newest: Backup, reporter=None) -> list[Backup]:
    """Delete what exceeds retention; the caller holds the disk lock.

    A backup that cannot be deleted now stays (and is tried again after the
    next backup): the new backup is whole either way, so that is a warning.
    """
    mine = cat.backups(vm=newest.vm_uuid, definition=d.name, disk_id=d.disk_id)
    removed = []
    for old in excess(mine, d.retention):
        try:
            delete.remove(cat, old)
            removed.append(old)
        except EsbackupError as error:
            if reporter is not None:
                reporter.warn(f"retention: backup {old.ref} not deleted: {error}")
    return removed
