"""Compare the catalog with the nodes: is every backup's data still there?"""
from __future__ import annotations

from collections import defaultdict

from esbackup.actions import get_files
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import locks, recover
from esbackup.engine.presence import present
from esbackup.errors import Busy, EsbackupError, NotFound

SETTLED = {("ok", True), ("lost", False)}  # (status, data found): `settle` leaves these


def sync(cat: Catalog, node: str | None = None, reporter: Reporter | None = None, *,
         sessions: Sessions) -> tuple[list[dict], list[str]]:
    """Mark ok backups whose data is gone `lost`, lost ones whose data is back `ok`,
    and resolve pending/restore rows that no live run owns: a restore row by its
    data (ok or lost), a pending row (never whole, no location yet) is removed
    with what its run left. Returns the changes, and why nodes that could not be
    asked were not."""
    changes: list[dict] = []
    by_node: dict[str, list[Backup]] = defaultdict(list)
    for b in cat.backups(node=node):
        by_node[b.node].append(b)
    unreachable = []
    for node_name, backups in sorted(by_node.items()):
        try:
            found = present(sessions(cat.node(node_name)), backups)
            get_files.sweep(cat, node_name, {b.storage for b in backups},
                            sessions=sessions)
        except EsbackupError as error:
            unreachable.append(f"{node_name}: {error}")
            continue
        for b in backups:
            exists = b.location in found
            if (b.status, exists) in SETTLED:
                continue  # nothing to change: no lock, no second look
            change = resolve(cat, b, exists, reporter, sessions=sessions)
            if change:
                changes.append({"backup": b.ref, "was": b.status, "now": change[0],
                                "why": change[1]})
    return changes, unreachable


def resolve(cat: Catalog, b: Backup, exists: bool, reporter: Reporter | None, *,
            sessions: Sessions) -> tuple[str, str] | None:
    """Settle one backup under its disk's lock (a busy disk is left alone): the
    row is read again there, as a run may have finished or moved it meanwhile."""
    try:
        with locks.Locks(cat, owner=f"sync {b.ref}") as held:
            held.disk(b.vm_uuid, b.disk_id)
            now = cat.backup(b.vm_uuid, b.name)
            if now.location != b.location:
                return None  # moved since we looked: the next sync sees it right
            change = settle(cat, now, exists, reporter, sessions=sessions)
            recover.after_takeover(cat, held.stale, reporter,  # a dead run's leftovers
                                   sessions=sessions)
            return change
    except (Busy, NotFound):
        return None


def settle(cat: Catalog, b: Backup, exists: bool, reporter: Reporter | None, *,
           sessions: Sessions) -> tuple[str, str] | None:
    if b.status == "ok" and not exists:
        cat.update_backup(b, status="lost")
        return "lost", "data missing on the node"
    if b.status == "lost" and exists:
        cat.update_backup(b, status="ok")
        return "ok", "data found again"
    if b.status == "pending":
        recover.discard_pending(cat, b, reporter, sessions=sessions)
        return "(removed)", "pending, but no run is making it"
    if b.status == "restore":  # the restore only read it: the data decides
        if exists:
            cat.update_backup(b, status="ok")
            return "ok", "restore no longer running"
        cat.update_backup(b, status="lost")
        return "lost", "restore no longer running, and data missing on the node"
    return None
