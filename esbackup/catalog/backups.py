"""Backup queries: the record of each backup with its node and storage, the
filters that list them, their locations and verify outcomes, and counts by
node and status (`BackupQueries`, a mixin of `Catalog`)."""
from __future__ import annotations

import sqlite3
from dataclasses import fields
from operator import itemgetter

from esbackup.catalog.base import QueryBase
from esbackup.catalog.helpers import ref_starting_with, vm_scope, where
from esbackup.domain.models import Backup, saved_id
from esbackup.errors import InvalidInput, NotFound

# Backup's fields, in order, and the column of BACKUP_SELECT each comes from.
BACKUP_COLUMNS = {f.name: {"vm": "vm_hostname", "node": "node_name", "storage": "storage_name",
                           "definition": "definition_name"}.get(f.name, f.name)
                  for f in fields(Backup)}


class BackupQueries(QueryBase):
    """Backups."""


    # --- backups ---------------------------------------------------------
    BACKUP_SELECT = ("SELECT b.*, n.name AS node_name, s.name AS storage_name FROM backups b "
                     "JOIN nodes n ON n.id = b.node_id JOIN storages s ON s.id = b.storage_id")

    def add_backup(self, b: Backup, definition_id: int | None = None) -> Backup:
        node = self.node(b.node)
        values = {"name": b.name, "vm_hostname": b.vm, "vm_uuid": b.vm_uuid,
                  "disk_id": b.disk_id, "type": b.type, "created": b.created,
                  "status": b.status, "duration": b.duration, "size": b.size, "note": b.note,
                  "fsfreeze": b.fsfreeze, "definition_id": definition_id,
                  "definition_name": b.definition, "node_id": node.id,
                  "storage_id": self.storage(b.node, b.storage).id, "location": b.location,
                  "checksum": b.checksum, "manifest": b.manifest, "protected": b.protected}
        return self._backup_by_id(self._insert_unique("backups", values, f"backup {b.ref} exists"))

    def update_backup(self, b: Backup, **changes) -> Backup:
        allowed = {"status", "duration", "size", "note", "fsfreeze", "location", "checksum",
                   "manifest", "created", "verified", "verify_result", "verify_error",
                   "protected"}
        if not changes.keys() <= allowed:
            raise ValueError(f"cannot update backup fields {set(changes) - allowed}")
        backup_id = saved_id(b.id, f"backup {b.ref}")
        self._update("backups", changes, backup_id)
        return self._backup_by_id(backup_id)

    def _backup_by_id(self, backup_id: int) -> Backup:
        return self._backup(self._one(f"{self.BACKUP_SELECT} WHERE b.id = ?", (backup_id,),
                                      f"no such backup id {backup_id}"))

    def backup(self, vm: str, name: str) -> Backup:
        """A backup by VM (hostname or uuid) and name; refused if that means two VMs."""
        rows = self.conn.execute(
            f"{self.BACKUP_SELECT} WHERE (b.vm_hostname = ? OR b.vm_uuid = ?) AND b.name = ?",
            (vm, vm, name)).fetchall()
        if not rows:
            raise NotFound(f"no such backup: {vm}/{name}")
        if len(rows) > 1:
            raise InvalidInput(f"{vm}/{name} names backups of two virtual servers: use the uuid")
        return self._backup(rows[0])

    def backups(self, vm: str | None = None, definition: str | None = None,
                status: str | tuple[str, ...] | None = None, node: str | None = None,
                dc: str | None = None, disk_id: int | None = None,
                name: str | None = None, definition_id: int | None = None) -> list[Backup]:
        """Backups oldest first. `definition` is a definition name within `vm`;
        `definition_id` the definition that made them (a deleted definition's
        backups have none: no later definition of that name selects them);
        `status` one status or a tuple of them."""
        # Without statistics SQLite takes any equality for selective; most backups
        # are ok, so beside a VM or name the status must not pick the index: an
        # expression (|| '', which PostgreSQL takes too) is not an indexed column.
        column = "b.status || ''" if (vm, definition, name) != (None, None, None) else "b.status"
        clause, args = where(
            (vm, "(b.vm_hostname = ? OR b.vm_uuid = ?)"), (definition, "b.definition_name = ?"),
            (status, f"{column} IN (?)" if isinstance(status, tuple) else f"{column} = ?"),
            (node, "n.name = ?"), (dc, "d.name = ?"), (disk_id, "b.disk_id = ?"),
            (name, "b.name = ?"), (definition_id, "b.definition_id = ?"))
        joins = (" JOIN vms v ON v.uuid = b.vm_uuid JOIN dcs d ON d.id = v.dc_id"
                 if dc is not None else "")
        cursor = self.conn.execute(
            f"{self.BACKUP_SELECT}{joins}{clause} ORDER BY b.created, b.name", args)
        names = [column[0] for column in cursor.description]
        # 100,000 rows: by position, three times faster than sqlite3.Row by name
        values = itemgetter(*(names.index(column) for column in BACKUP_COLUMNS.values()))
        found = [Backup(*values(row)) for row in cursor]
        for b in found:
            b.fsfreeze, b.copied = bool(b.fsfreeze), bool(b.copied)
        return found

    def backup_refs_from(self, prefix: str, limit: int, dcs: tuple[str, ...] | None = None,
                         owner: str | None = None) -> list[str]:
        """The first `limit` references VM/NAME starting with `prefix`, oldest
        first within a VM (the order of the hostname index), of the VMs in `dcs`
        and of `owner` where given, and then none of a deleted VM (shell
        completion)."""
        sql, args = ref_starting_with("b.vm_hostname", "b.name", prefix)
        scope, scope_args = vm_scope(dcs, owner)
        join = " JOIN vms v ON v.uuid = b.vm_uuid" if scope else ""
        return [r[0] for r in self.conn.execute(
            f"SELECT b.vm_hostname || '/' || b.name FROM backups b{join} WHERE {sql}{scope} "
            "ORDER BY b.vm_hostname, b.created, b.name LIMIT ?", (*args, *scope_args, limit))]

    def summary_counts(self) -> dict[str, int]:
        """How many definitions and ok backups the catalog holds (check's summary)."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM definitions) AS definitions, "
            "(SELECT COUNT(*) FROM backups WHERE status = 'ok') AS ok_backups").fetchone()
        return dict(row)

    @staticmethod
    def _backup(row: sqlite3.Row) -> Backup:
        b = Backup(*(row[column] for column in BACKUP_COLUMNS.values()))
        b.fsfreeze, b.protected, b.copied = bool(b.fsfreeze), bool(b.protected), bool(b.copied)
        return b

    def move_backup_locations(self, node: str, storage: str, old_prefix: str,
                              new_prefix: str) -> None:
        """Backups whose data moved (a target renamed aside) follow it; only those
        on that node's storage (pool names repeat across nodes)."""
        self.conn.execute(
            "UPDATE backups SET location = ? || substr(location, ?) "
            "WHERE substr(location, 1, ?) = ? AND storage_id = ?",
            (new_prefix, len(old_prefix) + 1, len(old_prefix), old_prefix,
             self.storage(node, storage).id))

    def delete_backup(self, b: Backup) -> None:
        self.conn.execute("DELETE FROM backups WHERE id = ?", (b.id,))

    def verify_failures(self) -> list[Backup]:
        """Backups whose last verify found their data damaged."""
        rows = self.conn.execute(f"{self.BACKUP_SELECT} WHERE b.verify_result = 'failed' "
                                 "ORDER BY b.created, b.name")
        return [self._backup(r) for r in rows]

    def backup_counts(self) -> dict[tuple[str, str], int]:
        """Backups per (backup node, status), and failed verifies as status "verify_failed"."""
        rows = self.conn.execute(
            "SELECT n.name, b.status, COUNT(*), "
            "COUNT(CASE WHEN b.verify_result = 'failed' THEN 1 END) FROM backups b "
            "JOIN nodes n ON n.id = b.node_id GROUP BY n.name, b.status ORDER BY n.name")
        counts: dict[tuple[str, str], int] = {}
        for node, status, count, failed in rows:
            counts[node, status] = count
            counts[node, "verify_failed"] = counts.get((node, "verify_failed"), 0) + failed
        return counts
