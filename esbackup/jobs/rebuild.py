"""Recreate catalog rows from the manifests on a backup node: a lost admin host
does not mean lost backups. Running it again changes nothing."""
from __future__ import annotations

from esbackup import nodes
from esbackup.catalog import Catalog
from esbackup.errors import NotFound
from esbackup.jobs import layout, manifest
from esbackup.models import VM, Backup, Definition, Node

FIND_SCRIPT = 'for d in "$@"; do [ -d "$d" ] && find "$d" -type f -name "*.json"; done; true'


def rebuild(cat: Catalog, node_name: str, reporter=None) -> dict:
    node = cat.node(node_name)
    t = nodes.session(node)
    counts = {"backups": 0, "vms": 0, "definitions": 0, "nodes": 0, "skipped": 0}
    for storage in cat.storages(node_name):
        mount = nodes.mountpoint(t, storage.zpool)
        found = t.run(["sh", "-c", FIND_SCRIPT, "sh", layout.manifest_dir(mount)]).stdout.split()
        for path, data in zip(found, nodes.read_files(t, found) if found else [], strict=True):
            try:
                m = manifest.parse(data)
            except ValueError as error:
                counts["skipped"] += 1
                if reporter is not None:
                    reporter.warn(f"{path}: {error}")
                continue
            restore_rows(cat, m, node_name, storage.name, path, counts)
    return counts


def restore_rows(cat: Catalog, m: dict, node: str, storage: str, path: str,
                 counts: dict) -> None:
    vm = ensure_vm(cat, m, counts)
    record = m["backup"]
    definition = None
    if m.get("definition") and vm is not None:
        definition = ensure_definition(cat, m["definition"], vm, node, storage, counts)
    try:
        cat.backup(record["vm_uuid"], record["name"])
        return
    except NotFound:
        pass
    fields = {k: v for k, v in record.items() if k in Backup.__dataclass_fields__}
    fields.update(node=node, storage=storage, manifest=path, status="ok")
    cat.add_backup(Backup(**fields), definition_id=definition.id if definition else None)
    counts["backups"] += 1


def ensure_vm(cat: Catalog, m: dict, counts: dict) -> VM | None:
    data = m["vm"]
    try:
        return cat.vm(data["uuid"])
    except NotFound:
        pass
    compute = m.get("compute_node") or {}
    try:
        cat.node(data["node"])
    except NotFound:
        cat.add_node(Node(name=data["node"], address=compute.get("address", data["node"]),
                          port=compute.get("port", 22), user=compute.get("user", "root"),
                          hypervisor=compute.get("hypervisor", "none")))
        counts["nodes"] += 1
    try:
        cat.dc(data["dc"])
    except NotFound:
        data = {**data, "dc": "admin"}
    vm = VM(hostname=data["hostname"], uuid=data["uuid"], dc=data["dc"], node=data["node"],
            owner=data.get("owner"), brand=data.get("brand", "kvm"),
            disks={int(k): v for k, v in data.get("disks", {}).items()},
            qga_socket=data.get("qga_socket"))
    counts["vms"] += 1
    return cat.add_vm(vm)


def ensure_definition(cat: Catalog, data: dict, vm: VM, node: str, storage: str,
                      counts: dict) -> Definition | None:
    try:
        return cat.definition(vm.uuid, data["name"])
    except NotFound:
        pass
    fields = {k: v for k, v in data.items() if k in Definition.__dataclass_fields__}
    fields.update(vm=vm.hostname, node=node, storage=storage, created=None, id=None)
    counts["definitions"] += 1
    return cat.add_definition(Definition(**fields))
