"""Which of a definition's backups its retention policy removes (domain/prune.py).

Only the definition's own `ok` backups count and go, selected by its id: a
definition deleted and created again under the same name never counts, nor
deletes, the old one's backups (orphans, deleted by hand). Backups in any
other state (pending, lost, being restored or copied) are neither counted nor
removed. Protected backups are kept and count toward no rule. Whatever the
policy, the newest ok backup, the base of the next incremental, stays.
"""
from __future__ import annotations

from datetime import datetime

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.domain.prune import Mark, Policy, marks
from esbackup.errors import OperationFailed

NEWEST = Mark(True, "newest")  # kept as the next incremental's base, whatever the policy


def select(backups: list[Backup], rule: Policy, zone: str) -> list[Mark | None]:
    """A Mark for each ok backup, in the order given; None for the others."""
    ok = [b for b in backups if b.status == "ok"]
    found = marks([datetime.fromisoformat(b.created) for b in ok], rule, zone,
                  [b.protected for b in ok])
    by_backup = dict(zip((id(b) for b in ok), found, strict=True))
    if ok:
        newest = max(ok, key=lambda b: datetime.fromisoformat(b.created))
        if not by_backup[id(newest)].keep:
            by_backup[id(newest)] = NEWEST
    return [by_backup.get(id(b)) for b in backups]


def backups_of(cat: Catalog, d: Definition) -> list[Backup]:
    """The definition's own backups, oldest first, in one query."""
    if d.id is None:  # no filter would then select every definition's backups of the disk
        raise OperationFailed(f"retention of {d.ref}: the definition is not in the catalog")
    return cat.backups(definition_id=d.id, disk_id=d.disk_id)


def due(cat: Catalog, d: Definition, rule: Policy | None = None, *,
        after: Backup | None = None) -> list[Backup]:
    """The backups retention would remove now (`rule`: another policy than the
    definition's, for a preview of a change), or once the backup `after` is
    made (a run's --dry-run)."""
    found = backups_of(cat, d)
    chosen = select([*found, *([after] if after else [])], rule or d.policy, d.timezone)
    return [b for b, mark in zip(found, chosen[:len(found)], strict=True)
            if mark is not None and not mark.keep]
