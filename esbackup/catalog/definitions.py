"""Backup definition queries: a definition joined with its VM, node, storage
and DC, and what a tick or check needs of each (its newest run, its newest ok
backup) in one query (`DefinitionQueries`, a mixin of `Catalog`)."""
from __future__ import annotations

import sqlite3

from esbackup.catalog.base import QueryBase
from esbackup.catalog.helpers import ref_starting_with, utcnow, vm_scope, where
from esbackup.catalog.runs import RUN_FIELDS
from esbackup.domain.models import Definition, Run, saved_id

KEEP_COLUMNS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
                "keep_yearly")


class DefinitionQueries(QueryBase):
    """Backup definitions."""


    # --- definitions -----------------------------------------------------
    DEF_COLUMNS = ("f.*, v.hostname AS vm_name, v.uuid AS vm_uuid, n.name AS node_name, "
                   "s.name AS storage_name, dc.name AS dc_name")
    DEF_FROM = ("FROM definitions f JOIN vms v ON v.id = f.vm_id JOIN nodes n ON n.id = f.node_id "
                "JOIN storages s ON s.id = f.storage_id JOIN dcs dc ON dc.id = v.dc_id")
    DEF_SELECT = f"SELECT {DEF_COLUMNS} {DEF_FROM}"

    def _definition_values(self, d: Definition) -> dict:
        return {"vm_id": self.vm(d.vm).id, "name": d.name, "disk_id": d.disk_id, "type": d.type,
                "node_id": self.node(d.node).id, "storage_id": self.storage(d.node, d.storage).id,
                "schedule": d.schedule, "timezone": d.timezone,
                **{f"keep_{rule}": count for rule, count in d.keep.items()},
                "active": d.active, "desc": d.desc, "compression": d.compression,
                "bwlimit": d.bwlimit, "fsfreeze": d.fsfreeze}

    def add_definition(self, d: Definition) -> Definition:
        now = utcnow()
        values = self._definition_values(d) | {"created": now, "scheduled_since": now}
        self._insert_unique("definitions", values, f"definition {d.ref} exists")
        return self.definition(d.vm, d.name)

    def update_definition(self, d: Definition) -> Definition:
        """Save `d`; a new schedule or time zone, or an activation, starts its
        schedule anew (`scheduled_since`): no firing from before runs."""
        old = self._one("SELECT schedule, timezone, active FROM definitions WHERE id = ?",
                        (d.id,), f"no such definition: {d.ref}")
        values = self._definition_values(d)
        if (old["schedule"], old["timezone"]) != (d.schedule, d.timezone) or (
                d.active and not old["active"]):
            values["scheduled_since"] = utcnow()
        with self.transaction():
            self._update("definitions", values, saved_id(d.id, f"definition {d.ref}"))
            self.conn.execute("UPDATE backups SET definition_name = ? WHERE definition_id = ?",
                              (d.name, d.id))
        return self.definition(d.vm, d.name)

    def _rename_refs(self, vm_uuid: str, hostname: str) -> None:
        """Backups follow a VM's new hostname (its runs do by their definitions' ids)."""
        self.conn.execute("UPDATE backups SET vm_hostname = ? WHERE vm_uuid = ?",
                          (hostname, vm_uuid))

    def definition(self, vm: str, name: str) -> Definition:
        row = self._one(f"{self.DEF_SELECT} WHERE (v.hostname = ? OR v.uuid = ?) AND f.name = ?",
                        (vm, vm, name), f"no such definition: {vm}/{name}")
        return self._definition(row)

    def definitions(self, vm: str | None = None, dc: str | None = None,
                    node: str | None = None, active: bool | None = None,
                    ids: tuple[int, ...] | None = None,
                    name: str | None = None) -> list[Definition]:
        clause, args = where((vm, "(v.hostname = ? OR v.uuid = ?)"), (dc, "dc.name = ?"),
                             (node, "n.name = ?"), (active, "f.active = ?"),
                             (ids, "f.id IN (?)"), (name, "f.name = ?"))
        rows = self.conn.execute(f"{self.DEF_SELECT}{clause} ORDER BY v.hostname, f.name", args)
        return [self._definition(r) for r in rows]

    def definition_refs_from(self, prefix: str, limit: int,
                             dcs: tuple[str, ...] | None = None,
                             owner: str | None = None) -> list[str]:
        """The first `limit` references VM/NAME starting with `prefix`, of the VMs
        in `dcs` and of `owner` where given (shell completion): a range of the
        hostname index, then each VM's definitions by the (vm, name) index."""
        sql, args = ref_starting_with("v.hostname", "f.name", prefix)
        scope, scope_args = vm_scope(dcs, owner)
        return [r[0] for r in self.conn.execute(
            "SELECT v.hostname || '/' || f.name FROM vms v JOIN definitions f ON f.vm_id = v.id "
            f"WHERE {sql}{scope} ORDER BY v.hostname, f.name LIMIT ?",
            (*args, *scope_args, limit))]

    def last_starts(self, active: bool | None = None
                    ) -> list[tuple[int, str, str, str | None, str | None]]:
        """(id, schedule, timezone, start of the newest run or None, since when the
        schedule counts) per definition: all a tick needs to find what is due,
        without building 10,000 records."""
        clause, args = where((active, "f.active = ?"))
        return [tuple(row) for row in self.conn.execute(
            "SELECT f.id, f.schedule, f.timezone, (SELECT MAX(r.started) FROM runs r "
            f"WHERE r.definition_id = f.id), f.scheduled_since FROM definitions f{clause}",
            args)]

    def definition_states(self, active: bool | None = None
                          ) -> list[tuple[Definition, Run | None, str | None]]:
        """Each definition with its newest run and the creation time of its newest
        ok backup, in one query (check, run --due): the runs and backups indexes
        answer each definition's part without scanning either table."""
        clause, args = where((active, "f.active = ?"))
        rows = self.conn.execute(
            "SELECT d.*, r.id AS run_id, r.trigger AS run_trigger, r.started AS run_started, "
            "r.finished AS run_finished, r.outcome AS run_outcome, r.error AS run_error, "
            "r.backup AS run_backup, r.size AS run_size, r.duration AS run_duration, "
            "r.pid AS run_pid, r.definition_id AS run_definition_id, (SELECT MAX(b.created) "
            "FROM backups b WHERE b.definition_id = d.id AND b.status = 'ok') AS last_ok "
            f"FROM ({self.DEF_SELECT}{clause}) d LEFT JOIN runs r ON r.id = (SELECT id FROM runs "
            "WHERE definition_id = d.id ORDER BY started DESC, id DESC LIMIT 1) "
            "ORDER BY d.vm_name, d.name", args)
        states = []
        for row in rows:
            run = None
            if row["run_id"] is not None:
                run = Run(definition=f"{row['vm_name']}/{row['name']}",
                          **{k: row[f"run_{k}"] for k in RUN_FIELDS})
            states.append((self._definition(row), run, row["last_ok"]))
        return states

    @staticmethod
    def _definition(row: sqlite3.Row) -> Definition:
        return Definition(
            vm=row["vm_name"], name=row["name"], disk_id=row["disk_id"], type=row["type"],
            node=row["node_name"], storage=row["storage_name"], schedule=row["schedule"],
            timezone=row["timezone"], **{k: row[k] for k in KEEP_COLUMNS},
            active=bool(row["active"]),
            desc=row["desc"], compression=row["compression"], bwlimit=row["bwlimit"],
            fsfreeze=bool(row["fsfreeze"]), created=row["created"],
            scheduled_since=row["scheduled_since"], id=row["id"])

    def delete_definition(self, vm: str, name: str) -> None:
        d = self.definition(vm, name)
        self.conn.execute("DELETE FROM definitions WHERE id = ?", (d.id,))
