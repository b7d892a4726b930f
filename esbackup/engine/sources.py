"""Where a backup is read from (issue 20): its primary location or a copy's.

A restore (or anything else that reads a backup's data) names a node, or
takes the primary unless it is not ok, then the copies in node order.
"""
from __future__ import annotations

from dataclasses import replace

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Location
from esbackup.errors import InvalidInput, NotFound


def places(cat: Catalog, b: Backup, node: str | None = None) -> list[Location]:
    """The ok locations of `b` to try in order: the one on `node` alone, or the
    primary (when ok) and then every ok copy. InvalidInput when there is none."""
    copies = cat.copy_locations([b.id or 0]).get(b.id or 0, [])
    every = [Location.primary_of(b), *copies]
    if node is not None:
        on_node = [loc for loc in every if loc.node == node]
        if not on_node:
            raise NotFound(f"backup {b.ref} has no copy on node {node}")
        if on_node[0].status != "ok":
            raise InvalidInput(f"backup {b.ref} on node {node} is {on_node[0].status}: only "
                               "ok backups can be restored")
        return on_node
    usable = [loc for loc in every if loc.status == "ok"]
    if not usable:
        raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups can be restored")
    return usable


def read_from(b: Backup, place: Location) -> Backup:
    """`b` as stored at `place`: its node, storage, data and checksum there."""
    if place.primary:
        return b
    return replace(b, node=place.node, storage=place.storage, location=place.location,
                   checksum=place.checksum or b.checksum, manifest=place.manifest)
