"""What a copy run sends (issue 20): pure choices over catalog records.

A copy holds a definition's backups from the newest it has on: a run sends
every ok backup newer than that one, oldest first (so a backup the copy's
own retention removed is never sent again), each dataset backup
incrementally from the one before it on the copy node.
"""
from __future__ import annotations

from dataclasses import dataclass

from esbackup.domain.models import Backup, Location


@dataclass(frozen=True)
class Step:
    """One backup to send, and the backup (held by both nodes) it goes on from;
    None: a full send."""

    backup: Backup
    base: Backup | None


def to_send(backups: list[Backup], copies: dict[int, list[Location]], node: str) -> list[Step]:
    """The ok `backups` (oldest first) newer than the newest one with an ok copy on
    `node`, each with its incremental base: the previous backup on `node`, when
    its primary is on the same node and dataset as this one's and ok."""
    def held(b: Backup) -> bool:  # a copy there, or the row itself (its primary gone)
        return (b.copied and b.node == node) or any(
            loc.node == node and loc.status == "ok" for loc in copies.get(b.id or 0, []))

    ok = [b for b in backups if b.status == "ok"]
    newest = max((i for i, b in enumerate(ok) if held(b)), default=-1)
    base = ok[newest] if newest >= 0 else None
    steps = []
    for b in ok[newest + 1:]:
        if b.node == node:  # the definition's own node: nothing to copy
            continue
        steps.append(Step(b, base if base is not None and same_chain(base, b) else None))
        base = b
    return steps


def same_chain(base: Backup, b: Backup) -> bool:
    """Dataset backups in one dataset of one node: `b` can be sent from `base`."""
    return (b.type == base.type == "dataset" and b.node == base.node
            and (b.location or "").split("@")[0] == (base.location or "").split("@")[0]
            and base.status == "ok")
