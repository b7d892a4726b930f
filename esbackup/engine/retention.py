"""Which of a definition's backups its retention policy removes (domain/prune.py).

Only the definition's own `ok` backups count and go, selected by its id: a
definition deleted and created again under the same name never counts, nor
deletes, the old one's backups (orphans, deleted by hand). Backups in any
other state (pending, lost, being restored or copied) are neither counted nor
removed. Protected backups are kept and count toward no rule. Whatever the
policy, the newest ok backup, the base of the next incremental, stays.
A backup whose primary is gone, held only by copies, is kept by its copies'
own retention (`copy_due`), never by the definition's.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, CopyDefinition, Definition, Location
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
    """The definition's own backups (on its primaries), oldest first, in one query."""
    return [b for b in backups_of_any(cat, d) if not b.copied]


def due(cat: Catalog, d: Definition, rule: Policy | None = None, *,
        after: Backup | None = None) -> list[Backup]:
    """The backups retention would remove now (`rule`: another policy than the
    definition's, for a preview of a change), or once the backup `after` is
    made (a run's --dry-run)."""
    found = backups_of(cat, d)
    chosen = select([*found, *([after] if after else [])], rule or d.policy, d.timezone)
    return [b for b, mark in zip(found, chosen[:len(found)], strict=True)
            if mark is not None and not mark.keep]


def copy_due(cat: Catalog, d: Definition, c: CopyDefinition) -> list[tuple[Backup, Location]]:
    """What the copy's own retention removes from its node now: each backup of the
    definition held there, with that location (a row of its copies, or the
    backup's row itself when the copy took its place). Two queries."""
    held = []
    found = backups_of_any(cat, d)
    copies = cat.copy_locations([b.id for b in found if b.id is not None], node=c.node)
    for b in found:
        if b.copied and b.node == c.node:
            held.append((b, Location.primary_of(b)))
        held += [(b, loc) for loc in copies.get(b.id or 0, []) if loc.status == "ok"]
    as_there = [replace(b, status=loc.status) for b, loc in held]
    chosen = select(as_there, c.policy, c.timezone)
    return [pair for pair, mark in zip(held, chosen, strict=True)
            if mark is not None and not mark.keep]


def backups_of_any(cat: Catalog, d: Definition) -> list[Backup]:
    """The definition's backups, those held only by copies too."""
    if d.id is None:
        raise OperationFailed(f"retention of {d.ref}: the definition is not in the catalog")
    return cat.backups(definition_id=d.id, disk_id=d.disk_id)
