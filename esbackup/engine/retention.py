"""Keep at most `retention` ok backups of a definition (0 keeps all)."""
from __future__ import annotations

from esbackup.actions import delete
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.errors import EsbackupError, OperationFailed


def excess(backups: list[Backup], keep: int) -> list[Backup]:
    """The oldest ok backups beyond `keep`; backups must be oldest first."""
    ok = [b for b in backups if b.status == "ok"]
    return ok[:-keep] if keep and len(ok) > keep else []


def due(cat: Catalog, d: Definition) -> list[Backup]:
    """The backups retention would delete now: only those this definition made
    (by its id), so a definition deleted and created again under the same name
    never counts, nor deletes, the old one's backups (orphans, deleted by hand)."""
    if d.id is None:  # no filter would then select every definition's backups of the disk
        raise OperationFailed(f"retention of {d.ref}: the definition is not in the catalog")
    return excess(cat.backups(definition_id=d.id, disk_id=d.disk_id), d.retention)


def apply(cat: Catalog, d: Definition, reporter=None) -> list[Backup]:
    """Delete what exceeds retention; the caller holds the disk lock.

    A backup that cannot be deleted now stays (and is tried again after the
    next backup): the new backup is whole either way, so that is a warning.
    """
    removed = []
    for old in due(cat, d):
        try:
            delete.remove(cat, old)
            removed.append(old)
        except EsbackupError as error:
            if reporter is not None:
                reporter.warn(f"retention: backup {old.ref} not deleted: {error}")
    return removed
