"""Second copies (issue 20): copy definitions, joined with their definition,
VM, node and storage; and the copies each backup has on other backup nodes
(`CopyDefinitionQueries`, a mixin of `Catalog`). A backup's own row is its
primary location; each row of `backup_copies` one more."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from esbackup.catalog.base import QueryBase
from esbackup.catalog.definitions import KEEP_COLUMNS
from esbackup.catalog.helpers import utcnow, where
from esbackup.domain.models import Backup, CopyDefinition, Location, saved_id

COPY_SELECT = (
    "SELECT c.*, f.name AS definition_name, f.timezone AS timezone, v.hostname AS vm_name, "
    "n.name AS node_name, s.name AS storage_name FROM copies c "
    "JOIN definitions f ON f.id = c.definition_id JOIN vms v ON v.id = f.vm_id "
    "JOIN nodes n ON n.id = c.node_id JOIN storages s ON s.id = c.storage_id")
LOCATION_SELECT = (
    "SELECT l.*, n.name AS node_name, s.name AS storage_name FROM backup_copies l "
    "JOIN nodes n ON n.id = l.node_id JOIN storages s ON s.id = l.storage_id")
MAX_IDS = 500  # backup ids bound in one IN (...); SQLite allows 32,766 variables at most
LOCATION_FIELDS = ("status", "created", "size", "location", "manifest", "checksum", "verified")


class CopyDefinitionQueries(QueryBase):
    """Copy definitions and the locations of copied backups."""

    # --- copy definitions ----------------------------------------------------
    def _copy_values(self, c: CopyDefinition) -> dict:
        return {"definition_id": saved_id(c.definition_id, f"definition of copy {c.ref}"),
                "node_id": self.node(c.node).id, "storage_id": self.storage(c.node, c.storage).id,
                "schedule": c.schedule, "after_backup": c.after_backup,
                **{f"keep_{rule}": count for rule, count in c.keep.items()},
                "bwlimit": c.bwlimit, "active": c.active}

    def add_copy(self, c: CopyDefinition) -> CopyDefinition:
        values = self._copy_values(c) | {"created": utcnow()}
        return self._copy_by_id(self._insert_unique("copies", values, f"copy {c.ref} exists"))

    def update_copy(self, c: CopyDefinition) -> CopyDefinition:
        copy_id = saved_id(c.id, f"copy {c.ref}")
        self._update("copies", self._copy_values(c), copy_id)
        return self._copy_by_id(copy_id)

    def note_copy_run(self, c: CopyDefinition, **changes) -> None:
        """A copy run's start, or its end: last_started, last_ok, last_error."""
        if not changes.keys() <= {"last_started", "last_ok", "last_error"}:
            raise ValueError(f"not a copy run field: {set(changes)}")
        self._update("copies", changes, saved_id(c.id, f"copy {c.ref}"))

    def _copy_by_id(self, copy_id: int) -> CopyDefinition:
        return self._copy(self._one(f"{COPY_SELECT} WHERE c.id = ?", (copy_id,),
                                    f"no such copy id {copy_id}"))

    def copy_definition(self, definition_id: int, node: str) -> CopyDefinition:
        return self._copy(self._one(f"{COPY_SELECT} WHERE c.definition_id = ? AND n.name = ?",
                                    (definition_id, node), f"no copy to node {node}"))

    def copy_definitions(self, definition_id: int | None = None, vm: str | None = None,
                         node: str | None = None, active: bool | None = None,
                         ids: tuple[int, ...] | None = None) -> list[CopyDefinition]:
        clause, args = where((definition_id, "c.definition_id = ?"),
                             (vm, "(v.hostname = ? OR v.uuid = ?)"), (node, "n.name = ?"),
                             (active, "c.active = ?"), (ids, "c.id IN (?)"))
        rows = self.conn.execute(f"{COPY_SELECT}{clause} ORDER BY v.hostname, f.name, n.name",
                                 args)
        return [self._copy(r) for r in rows]

    def copy_starts(self) -> list[tuple[int, str, str, str | None]]:
        """(id, schedule, timezone, last start) of each active scheduled copy: a tick's query."""
        return [tuple(row) for row in self.conn.execute(
            "SELECT c.id, c.schedule, f.timezone, c.last_started FROM copies c "
            "JOIN definitions f ON f.id = c.definition_id WHERE c.active = 1 "
            "AND c.schedule != ''")]

    def claim_copy(self, copy_id: int, fired: str, now: str) -> bool:
        """A tick's claim of a copy's firing: True for the one admin host whose
        update finds it not started since `fired`."""
        cur = self.conn.execute(
            "UPDATE copies SET last_started = ? WHERE id = ? AND "
            "(last_started IS NULL OR last_started < ?)", (now, copy_id, fired))
        return cur.rowcount == 1

    def copy_newest(self) -> dict[int, str]:
        """The creation time of the newest backup each copy holds, by copy id (one
        query): its copies, and the rows a copy took over."""
        rows = self.conn.execute(
            "SELECT copy_id, MAX(created) FROM (SELECT l.copy_id, b.created FROM backup_copies l "
            "JOIN backups b ON b.id = l.backup_id WHERE l.status = 'ok' UNION ALL "
            "SELECT copy_id, created FROM backups WHERE copied = 1 AND status = 'ok') x "
            "WHERE copy_id IS NOT NULL GROUP BY copy_id")
        return {copy_id: newest for copy_id, newest in rows}

    def delete_copy(self, c: CopyDefinition) -> None:
        self.conn.execute("DELETE FROM copies WHERE id = ?", (saved_id(c.id, f"copy {c.ref}"),))

    @staticmethod
    def _copy(row: sqlite3.Row) -> CopyDefinition:
        return CopyDefinition(
            vm=row["vm_name"], definition=row["definition_name"], node=row["node_name"],
            storage=row["storage_name"], schedule=row["schedule"], timezone=row["timezone"],
            after_backup=bool(row["after_backup"]), **{k: row[k] for k in KEEP_COLUMNS},
            bwlimit=row["bwlimit"], active=bool(row["active"]), created=row["created"],
            last_started=row["last_started"], last_ok=row["last_ok"],
            last_error=row["last_error"], definition_id=row["definition_id"], id=row["id"])

    # --- where copies live -----------------------------------------------------
    def add_location(self, backup_id: int, node: str, storage: str, copy_id: int | None,
                     **values) -> Location:
        if not values.keys() <= set(LOCATION_FIELDS):
            raise ValueError(f"not a location field: {set(values) - set(LOCATION_FIELDS)}")
        row = {"backup_id": backup_id, "copy_id": copy_id, "node_id": self.node(node).id,
               "storage_id": self.storage(node, storage).id, **values}
        return self._location_by_id(self._insert_unique(
            "backup_copies", row, f"backup id {backup_id} has a copy on {node}"))

    def update_location(self, loc: Location, **changes) -> Location:
        if not changes.keys() <= set(LOCATION_FIELDS):
            raise ValueError(f"not a location field: {set(changes) - set(LOCATION_FIELDS)}")
        location_id = saved_id(loc.id, f"copy on {loc.node}")
        self._update("backup_copies", changes, location_id)
        return self._location_by_id(location_id)

    def delete_location(self, loc: Location) -> None:
        self.conn.execute("DELETE FROM backup_copies WHERE id = ?",
                          (saved_id(loc.id, f"copy on {loc.node}"),))

    def move_copy_locations(self, node: str, old_prefix: str, new_prefix: str) -> None:
        """Copies whose dataset was renamed aside on `node` follow it."""
        self.conn.execute(
            "UPDATE backup_copies SET location = ? || substr(location, ?) "
            "WHERE substr(location, 1, ?) = ? AND node_id = ?",
            (new_prefix, len(old_prefix) + 1, len(old_prefix), old_prefix, self.node(node).id))

    def remove_primary(self, b: Backup) -> Backup | None:
        """The data of the backup's row (its primary, or the copy in its place) is
        gone: its first copy takes the row's place, or the row goes with its last
        location (None)."""
        copies = self.copy_locations([saved_id(b.id, f"backup {b.ref}")]).get(b.id or 0, [])
        if not copies:
            self.conn.execute("DELETE FROM backups WHERE id = ?", (b.id,))
            return None
        loc = copies[0]
        with self.transaction():
            self.conn.execute("DELETE FROM backup_copies WHERE id = ?", (loc.id,))
            self._update("backups", {
                "node_id": self.node(loc.node).id,
                "storage_id": self.storage(loc.node, loc.storage).id, "status": loc.status,
                "size": loc.size, "location": loc.location, "manifest": loc.manifest,
                "checksum": loc.checksum, "verified": loc.verified, "verify_result": None,
                "verify_error": None, "copied": 1, "copy_id": loc.copy_id}, b.id or 0)
        return self.backup(b.vm_uuid, b.name)

    def _location_by_id(self, location_id: int) -> Location:
        return self._location(self._one(f"{LOCATION_SELECT} WHERE l.id = ?", (location_id,),
                                        f"no such copy id {location_id}"))

    def copy_locations(self, backup_ids: Iterable[int] | None = None, node: str | None = None,
                       copy_id: int | None = None) -> dict[int, list[Location]]:
        """The copies of backups (all, or those of `backup_ids`), by backup id,
        in one query; each backup's in node order."""
        ids = tuple(backup_ids) if backup_ids is not None else None
        if ids == ():
            return {}
        wanted = set(ids) if ids is not None and len(ids) > MAX_IDS else None
        if wanted is not None:  # too many to bind: all copies, those wanted kept
            ids = None
        clause, args = where((ids, "l.backup_id IN (?)"), (node, "n.name = ?"),
                             (copy_id, "l.copy_id = ?"))
        found: dict[int, list[Location]] = {}
        for row in self.conn.execute(f"{LOCATION_SELECT}{clause} ORDER BY l.backup_id, n.name",
                                     args):
            if wanted is None or row["backup_id"] in wanted:
                found.setdefault(row["backup_id"], []).append(self._location(row))
        return found

    @staticmethod
    def _location(row: sqlite3.Row) -> Location:
        return Location(node=row["node_name"], storage=row["storage_name"],
                        **{k: row[k] for k in LOCATION_FIELDS}, backup_id=row["backup_id"],
                        copy_id=row["copy_id"], id=row["id"])
