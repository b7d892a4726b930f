"""Keep at most `retention` ok backups of a definition (0 keeps all)."""
from __future__ import annotations

from esbackup.catalog import Catalog
from esbackup.jobs import delete
from esbackup.models import Backup, Definition


def excess(backups: list[Backup], keep: int) -> list[Backup]:
    """The oldest ok backups beyond `keep`; backups must be oldest first."""
    ok = [b for b in backups if b.status == "ok"]
    return ok[:-keep] if keep and len(ok) > keep else []


def apply(cat: Catalog, d: Definition, newest: Backup) -> list[Backup]:
    """Delete what exceeds retention; the caller holds the disk lock."""
    mine = cat.backups(vm=newest.vm_uuid, definition=d.name, disk_id=d.disk_id)
    removed = excess(mine, d.retention)
    for old in removed:
        delete.remove(cat, old)
    return removed
