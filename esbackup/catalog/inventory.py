"""Inventory queries: virtual data centers, nodes, their storages, virtual
servers with their disks, and users with the DCs they may see (`InventoryQueries`,
a mixin of `Catalog`)."""
from __future__ import annotations

import json
import sqlite3

from esbackup.catalog.base import QueryBase
from esbackup.catalog.helpers import starting_with, utcnow, vm_scope, where
from esbackup.domain.models import DC, VM, Node, Storage, User, saved_id
from esbackup.errors import InvalidInput, NotFound


class InventoryQueries(QueryBase):
    """DCs, nodes, storages, VMs and users."""


    # --- DCs -------------------------------------------------------------
    def add_dc(self, dc: DC) -> DC:
        self._insert_unique("dcs", {"name": dc.name, "desc": dc.desc}, f"dc {dc.name} exists")
        return self.dc(dc.name)

    def dc(self, name: str) -> DC:
        row = self._one("SELECT * FROM dcs WHERE name = ?", (name,), f"no such dc: {name}")
        return DC(name=row["name"], desc=row["desc"], id=row["id"])

    def dcs(self) -> list[DC]:
        rows = self.conn.execute("SELECT * FROM dcs ORDER BY name")
        return [DC(name=r["name"], desc=r["desc"], id=r["id"]) for r in rows]

    def delete_dc(self, name: str) -> None:
        dc = self.dc(name)
        if self.conn.execute("SELECT 1 FROM vms WHERE dc_id = ?", (dc.id,)).fetchone():
            raise InvalidInput(f"dc {name} still has virtual servers")
        self.conn.execute("DELETE FROM dcs WHERE id = ?", (dc.id,))

    # --- nodes -----------------------------------------------------------
    NODE_COLUMNS = ("name", "address", "port", "user", "key_path", "host_key", "compute",
                    "backup", "max_backups", "transfer", "hypervisor", "ssh_config")

    def add_node(self, node: Node) -> Node:
        values = {c: getattr(node, c) for c in self.NODE_COLUMNS}
        values |= {"capabilities": json.dumps(node.capabilities), "created": utcnow()}
        self._insert_unique("nodes", values, f"node {node.name} exists")
        return self.node(node.name)

    def update_node(self, node: Node) -> Node:
        values = {c: getattr(node, c) for c in self.NODE_COLUMNS}
        values["capabilities"] = json.dumps(node.capabilities)
        self._update("nodes", values, saved_id(node.id, f"node {node.name}"))
        return self.node(node.name)

    def node(self, name: str) -> Node:
        row = self._one("SELECT * FROM nodes WHERE name = ?", (name,), f"no such node: {name}")
        return self._node(row)

    def node_names_from(self, prefix: str, limit: int) -> list[str]:
        """The first `limit` node names starting with `prefix` (shell completion)."""
        sql, args = starting_with("name", prefix)
        return [r[0] for r in self.conn.execute(
            f"SELECT name FROM nodes WHERE {sql} ORDER BY name LIMIT ?", (*args, limit))]

    def nodes(self) -> list[Node]:
        return [self._node(r) for r in self.conn.execute("SELECT * FROM nodes ORDER BY name")]

    @staticmethod
    def _node(row: sqlite3.Row) -> Node:
        values = {c: row[c] for c in InventoryQueries.NODE_COLUMNS}
        values.update(compute=bool(row["compute"]), backup=bool(row["backup"]))
        return Node(**values, capabilities=json.loads(row["capabilities"]),
                    created=row["created"], id=row["id"])

    def delete_node(self, name: str) -> None:
        node = self.node(name)
        for table, what in (("vms", "virtual servers"), ("storages", "storages"),
                            ("definitions", "backup definitions"), ("backups", "backups"),
                            ("copies", "copy definitions"), ("backup_copies", "backup copies")):
            if self.conn.execute(f"SELECT 1 FROM {table} WHERE node_id = ?", (node.id,)).fetchone():
                raise InvalidInput(f"node {name} still has {what}")
        self.conn.execute("DELETE FROM nodes WHERE id = ?", (node.id,))

    # --- storages --------------------------------------------------------
    def add_storage(self, storage: Storage) -> Storage:
        node = self.node(storage.node)
        self._insert_unique(
            "storages", {"node_id": node.id, "name": storage.name, "zpool": storage.zpool},
            f"storage {storage.name} exists on node {storage.node}")
        return self.storage(storage.node, storage.name)

    STORAGE_SELECT = ("SELECT s.*, n.name AS node_name FROM storages s "
                      "JOIN nodes n ON n.id = s.node_id")

    def storage(self, node: str, name: str) -> Storage:
        row = self._one(f"{self.STORAGE_SELECT} WHERE n.name = ? AND s.name = ?", (node, name),
                        f"no such storage: {name} on node {node}")
        return self._storage(row)

    def storages(self, node: str | None = None) -> list[Storage]:
        if node is not None:
            self.node(node)
        clause, args = where((node, "n.name = ?"))
        rows = self.conn.execute(f"{self.STORAGE_SELECT}{clause} ORDER BY n.name, s.name", args)
        return [self._storage(r) for r in rows]

    @staticmethod
    def _storage(row: sqlite3.Row) -> Storage:
        return Storage(node=row["node_name"], name=row["name"], zpool=row["zpool"], id=row["id"])

    def storage_has_backups(self, storage_id: int) -> bool:
        """Whether any backup row (pending ones too) is on this storage."""
        return self.conn.execute("SELECT 1 FROM backups WHERE storage_id = ? LIMIT 1",
                                 (storage_id,)).fetchone() is not None

    def delete_storage(self, node: str, name: str) -> None:
        storage = self.storage(node, name)
        for table, what in (("definitions", "backup definitions"), ("backups", "backups"),
                            ("copies", "copy definitions"), ("backup_copies", "backup copies")):
            if self.conn.execute(f"SELECT 1 FROM {table} WHERE storage_id = ?",
                                 (storage.id,)).fetchone():
                raise InvalidInput(f"storage {name} on node {node} still has {what}")
        self.conn.execute("DELETE FROM storages WHERE id = ?", (storage.id,))

    # --- VMs -------------------------------------------------------------
    def add_vm(self, vm: VM) -> VM:
        dc, node = self.dc(vm.dc), self.node(vm.node)
        if self.conn.execute("SELECT 1 FROM vms WHERE uuid = ?", (vm.uuid,)).fetchone():
            raise InvalidInput(f"a virtual server with uuid {vm.uuid} exists")
        with self.transaction():
            vm_id = self._insert_unique("vms", {
                "hostname": vm.hostname, "uuid": vm.uuid, "dc_id": dc.id, "node_id": node.id,
                "owner": vm.owner, "brand": vm.brand, "qga_socket": vm.qga_socket,
                "created": utcnow()}, f"virtual server {vm.hostname} exists")
            self._set_disks(vm_id, vm.disks)
        return self.vm(vm.hostname)

    def update_vm(self, vm: VM) -> VM:
        dc, node = self.dc(vm.dc), self.node(vm.node)
        vm_id = saved_id(vm.id, f"virtual server {vm.hostname}")
        with self.transaction():
            self._update("vms", {"hostname": vm.hostname, "dc_id": dc.id, "node_id": node.id,
                                 "owner": vm.owner, "brand": vm.brand,
                                 "qga_socket": vm.qga_socket}, vm_id)
            self.conn.execute("DELETE FROM disks WHERE vm_id = ?", (vm_id,))
            self._set_disks(vm_id, vm.disks)
            self._rename_refs(vm.uuid, vm.hostname)
        return self.vm(vm.hostname)

    def _set_disks(self, vm_id: int, disks: dict[int, str]) -> None:
        self.conn.executemany("INSERT INTO disks VALUES (?, ?, ?)",
                              [(vm_id, d, ds) for d, ds in sorted(disks.items())])

    VM_SELECT = ("SELECT v.*, d.name AS dc_name, n.name AS node_name FROM vms v "
                 "JOIN dcs d ON d.id = v.dc_id JOIN nodes n ON n.id = v.node_id")

    def vm(self, hostname_or_uuid: str) -> VM:
        """One VM by hostname or uuid; a reference that names two is refused."""
        rows = self.conn.execute(f"{self.VM_SELECT} WHERE v.hostname = ? OR v.uuid = ?",
                                 (hostname_or_uuid, hostname_or_uuid)).fetchall()
        if not rows:
            raise NotFound(f"no such virtual server: {hostname_or_uuid}")
        if len(rows) > 1:
            raise InvalidInput(f"{hostname_or_uuid!r} names two virtual servers (a hostname "
                               "and a uuid): use the uuid")
        return self._vm(rows[0])

    def vms(self, dc: str | None = None, node: str | None = None) -> list[VM]:
        clause, args = where((dc, "d.name = ?"), (node, "n.name = ?"))
        rows = self.conn.execute(f"{self.VM_SELECT}{clause} ORDER BY v.hostname", args).fetchall()
        disks: dict[int, dict[int, str]] = {}  # every VM's disks in one query, not one per VM
        for vm_id, disk_id, dataset in self.conn.execute(
                "SELECT vm_id, disk_id, dataset FROM disks ORDER BY vm_id, disk_id"):
            disks.setdefault(vm_id, {})[disk_id] = dataset
        return [self._vm(r, disks.get(r["id"], {})) for r in rows]

    def _vm(self, row: sqlite3.Row, disks: dict[int, str] | None = None) -> VM:
        if disks is None:
            disks = {d: ds for d, ds in self.conn.execute(
                "SELECT disk_id, dataset FROM disks WHERE vm_id = ? ORDER BY disk_id",
                (row["id"],))}
        return VM(hostname=row["hostname"], uuid=row["uuid"], dc=row["dc_name"],
                  node=row["node_name"], owner=row["owner"], brand=row["brand"], disks=disks,
                  qga_socket=row["qga_socket"], created=row["created"], id=row["id"])

    def hostnames_from(self, prefix: str, limit: int, dcs: tuple[str, ...] | None = None,
                       owner: str | None = None) -> list[str]:
        """The first `limit` hostnames starting with `prefix`, of the VMs in `dcs`
        and of `owner` where given (shell completion): one range of the hostname index."""
        sql, args = starting_with("v.hostname", prefix)
        scope, scope_args = vm_scope(dcs, owner)
        return [r[0] for r in self.conn.execute(
            f"SELECT v.hostname FROM vms v WHERE {sql}{scope} ORDER BY v.hostname LIMIT ?",
            (*args, *scope_args, limit))]

    def delete_vm(self, hostname: str) -> None:
        """Delete a VM and its definitions; its backups stay, keeping hostname and uuid."""
        vm = self.vm(hostname)
        with self.transaction():
            self.conn.execute("DELETE FROM definitions WHERE vm_id = ?", (vm.id,))
            self.conn.execute("DELETE FROM vms WHERE id = ?", (vm.id,))

    def vms_without_disks(self) -> list[VM]:
        """Every VM in one query, `disks` left empty: who may see what, and where
        each VM runs, for commands that list thousands of records."""
        rows = self.conn.execute(f"{self.VM_SELECT} ORDER BY v.hostname")
        return [VM(hostname=r["hostname"], uuid=r["uuid"], dc=r["dc_name"], node=r["node_name"],
                   owner=r["owner"], brand=r["brand"], qga_socket=r["qga_socket"],
                   created=r["created"], id=r["id"]) for r in rows]

    # --- users -----------------------------------------------------------
    def add_user(self, user: User) -> User:
        dcs = [self.dc(d) for d in user.dcs]
        with self.transaction():
            user_id = self._insert_unique("users", {"name": user.name, "role": user.role},
                                          f"user {user.name} exists")
            self.conn.executemany("INSERT INTO user_dcs VALUES (?, ?)",
                                  [(user_id, dc.id) for dc in dcs])
        return self.user(user.name)

    def user(self, name: str) -> User:
        row = self._one("SELECT * FROM users WHERE name = ?", (name,), f"no such user: {name}")
        dcs = [r[0] for r in self.conn.execute(
            "SELECT d.name FROM user_dcs u JOIN dcs d ON d.id = u.dc_id WHERE u.user_id = ? "
            "ORDER BY d.name", (row["id"],))]
        return User(name=row["name"], role=row["role"], dcs=dcs, id=row["id"])

    def users(self) -> list[User]:
        return [self.user(r[0]) for r in self.conn.execute("SELECT name FROM users ORDER BY name")]

    def delete_user(self, name: str) -> None:
        self.conn.execute("DELETE FROM users WHERE id = ?", (self.user(name).id,))
