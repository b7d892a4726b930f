"""Keep at most `retention` ok backups of a definition (0 keeps all)."""
from __future__ import annotations

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.errors import OperationFailed


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

