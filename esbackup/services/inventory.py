"""Rules for creating and changing DCs, nodes, storages, VMs and users.

Commands call these; they validate input, check cross-record rules and the
caller's permission, and write through the catalog.
"""
from __future__ import annotations

import re
import uuid as uuidlib

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.auth import Identity
from esbackup.domain.models import (
    ADMIN_DC,
    BRANDS,
    DC,
    DIGITS_RE,
    FREEZE_BRANDS,
    HYPERVISORS,
    MAX_BACKUPS_PER_NODE,
    MAX_DISK_ID,
    MAX_PATH,
    ROLES,
    TRANSFERS,
    VM,
    Node,
    Storage,
    User,
    parse_address,
    validate_choice,
    validate_dataset,
    validate_hostname,
    validate_int,
    validate_name,
    validate_text,
    validate_uuid,
)
from esbackup.errors import InvalidInput, NotFound


def create_dc(cat: Catalog, who: Identity, name: str, desc: str) -> DC:
    auth.require_superadmin(who, "dc create")
    return cat.add_dc(DC(validate_name(name, "dc name"), validate_text(desc, "description")))


def delete_dc(cat: Catalog, who: Identity, name: str) -> None:
    auth.require_superadmin(who, "dc delete")
    if name == ADMIN_DC:
        raise InvalidInput(f"the dc {ADMIN_DC} always exists: it cannot be deleted")
    cat.delete_dc(name)


def build_node(name: str, address: str, **options) -> Node:
    host, port = parse_address(address)
    node = Node(name=validate_name(name, "node name"), address=host, port=port)
    return apply_node_options(node, **options)


def apply_node_options(node: Node, *, address: str | None = None, user: str | None = None,
                       key: str | None = None, compute: bool | None = None,
                       backup: bool | None = None, max_backups: int | None = None,
                       transfer: str | None = None, hypervisor: str | None = None,
                       ssh_config: str | None = None) -> Node:
    if address is not None:
        node.address, node.port = parse_address(address)
    if user is not None:
        node.user = validate_name(user, "ssh user")
    if key is not None:
        node.key_path = validate_text(key, "key path", MAX_PATH) if key else None
    if compute is not None:
        node.compute = compute
    if backup is not None:
        node.backup = backup
    if max_backups is not None:
        node.max_backups = validate_int(max_backups, "max backups", 1, MAX_BACKUPS_PER_NODE)
    if transfer is not None:
        node.transfer = validate_choice(transfer, TRANSFERS, "transfer mode")
    if hypervisor is not None:
        node.hypervisor = validate_choice(hypervisor, HYPERVISORS, "hypervisor")
    if ssh_config is not None:
        node.ssh_config = validate_path(ssh_config, "ssh config") if ssh_config else None
    if not (node.compute or node.backup):
        raise InvalidInput(f"node {node.name} needs a role: --compute and/or --backup")
    return node


def check_roles_in_use(cat: Catalog, node: Node) -> None:
    """A node keeps the roles its VMs, storages and definitions rely on."""
    if not node.compute and cat.vms(node=node.name):
        raise InvalidInput(f"node {node.name} hosts virtual servers: it keeps --compute")
    if not node.backup and (cat.storages(node.name) or cat.definitions(node=node.name)):
        raise InvalidInput(f"node {node.name} has storages or definitions: it keeps --backup")


def validate_fingerprint(value: str) -> str:
    """An OpenSSH SHA256 fingerprint: 'SHA256:' and 43 characters of unpadded base64."""
    if not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", value):
        raise InvalidInput(f"invalid host key fingerprint {value!r}: expected SHA256:<43 chars>"
                           " as ssh-keygen -lf prints it")
    return value


def create_storage(cat: Catalog, who: Identity, node_name: str, name: str, zpool: str) -> Storage:
    auth.require_superadmin(who, "storage create")
    node = cat.node(node_name)
    if not node.backup:
        raise InvalidInput(f"node {node_name} has no backup role: update it with --backup first")
    storage = Storage(node=node_name, name=validate_name(name, "storage name"),
                      zpool=validate_dataset(zpool))
    return cat.add_storage(storage)


def parse_disks(specs: tuple[str, ...]) -> dict[int, str]:
    """('1=zones/abc-disk0', ...) -> {1: 'zones/abc-disk0'}."""
    disks: dict[int, str] = {}
    for spec in specs:
        disk_id, sep, dataset = spec.partition("=")
        if not sep or not DIGITS_RE.fullmatch(disk_id) or not 1 <= int(disk_id) <= MAX_DISK_ID:
            raise InvalidInput(f"invalid disk {spec!r}: expected ID=DATASET with ID from 1 to "
                               f"{MAX_DISK_ID}")
        if int(disk_id) in disks:
            raise InvalidInput(f"disk {disk_id} given twice")
        disks[int(disk_id)] = validate_dataset(dataset)
    return disks


def create_vm(cat: Catalog, who: Identity, hostname: str, *, node: str, dc: str | None,
              uuid: str | None, owner: str | None, brand: str, disks: tuple[str, ...],
              qga_socket: str | None) -> VM:
    dc = dc or "admin"
    auth.require_dc(who, dc)
    auth.require_superadmin(who, "mapping disks to datasets (vm create --disk)")
    if not disks:
        raise InvalidInput("a virtual server needs at least one --disk ID=DATASET")
    compute = cat.node(node)
    if not compute.compute:
        raise InvalidInput(f"node {node} has no compute role")
    vm = VM(hostname=validate_hostname(hostname),
            uuid=validate_uuid(uuid) if uuid else str(uuidlib.uuid4()), dc=cat.dc(dc).name,
            node=node, owner=validate_name(owner, "owner") if owner else None,
            brand=validate_choice(brand, BRANDS, "brand"), disks=parse_disks(disks),
            qga_socket=validate_socket(qga_socket))
    check_name_free(cat, vm.uuid)
    check_disks_free(cat, vm)
    return cat.add_vm(vm)


def check_name_free(cat: Catalog, name: str) -> None:
    """Hostnames and uuids are one namespace: a new name may not mean a VM already."""
    try:
        other = cat.vm(name)
    except NotFound:
        return
    raise InvalidInput(f"{name} already names virtual server {other.hostname} ({other.uuid})")


def check_disks_free(cat: Catalog, vm: VM) -> None:
    """No dataset belongs to two VMs (nor lies inside another VM's disk): a
    restore destroys its target, which must be that VM's alone."""
    for other in cat.vms(node=vm.node):
        if other.uuid == vm.uuid:
            continue
        for mine in vm.disks.values():
            for theirs in other.disks.values():
                if mine == theirs or mine.startswith(theirs + "/") or \
                        theirs.startswith(mine + "/"):
                    raise InvalidInput(f"dataset {mine} overlaps disk {theirs} of "
                                       f"{other.hostname}")


def validate_path(path: str, what: str) -> str:
    """An absolute path on a node (it reaches the node as one argv item)."""
    if not path.startswith("/"):
        raise InvalidInput(f"invalid {what} {path!r}: an absolute path")
    return validate_text(path, what, MAX_PATH)


def validate_socket(path: str | None) -> str | None:
    return None if path is None else validate_path(path, "guest agent socket")


def update_vm(cat: Catalog, who: Identity, vm: VM, *, hostname: str | None, node: str | None,
              dc: str | None, owner: str | None, brand: str | None,
              disks: tuple[str, ...], qga_socket: str | None) -> VM:
    auth.require_vm(who, vm, write=True)
    own = cat.definitions(vm=vm.hostname)
    if dc is not None:
        auth.require_dc(who, dc)
        vm.dc = cat.dc(dc).name
    if hostname is not None:
        vm.hostname = validate_hostname(hostname)
    if node is not None:
        auth.require_superadmin(who, "moving a VM's disks to another node (vm update --node)")
        if not cat.node(node).compute:
            raise InvalidInput(f"node {node} has no compute role")
        vm.node = node
    if owner is not None:
        vm.owner = validate_name(owner, "owner") if owner else None
    if brand is not None:
        vm.brand = validate_choice(brand, BRANDS, "brand")
    if disks:
        auth.require_superadmin(who, "mapping disks to datasets (vm update --disk)")
        vm.disks = parse_disks(disks)
    if qga_socket is not None:
        # the freeze helper runs as root on a compute node other DCs share:
        # whoever names the socket chooses which guest it freezes and thaws
        auth.require_superadmin(who, "choosing a guest agent socket (vm update --qga-socket)")
        vm.qga_socket = validate_socket(qga_socket) if qga_socket else None
    if disks or node is not None:
        check_disks_free(cat, vm)
    if missing := {d.disk_id for d in own} - set(vm.disks):
        raise InvalidInput(f"disk {min(missing)} is used by a backup definition")
    if vm.brand not in FREEZE_BRANDS and (frozen := [d.ref for d in own if d.fsfreeze]):
        raise InvalidInput(f"brand {vm.brand} cannot freeze, but {frozen[0]} has freeze on")
    return cat.update_vm(vm)


def create_user(cat: Catalog, who: Identity, name: str, role: str, dcs: tuple[str, ...]) -> User:
    auth.require_superadmin(who, "user create")
    validate_choice(role, ROLES, "role")
    if role == "dcadmin" and not dcs:
        raise InvalidInput("a dcadmin needs at least one --dc")
    return cat.add_user(User(validate_name(name, "user name"), role, list(dcs)))


# Where the keys and ssh configs lie is the superadmin's business only.
PRIVATE_NODE_FIELDS = ("key_path", "ssh_config")


def used_by(cat: Catalog, who: Identity) -> tuple[set[str], set[tuple[str, str]]] | None:
    """The nodes and (node, storage) pairs the caller's VMs use (their compute
    node, their definitions' and backups' backup nodes); None: all (superadmin)."""
    if who.is_superadmin:
        return None
    from esbackup.services import backup_access as backups
    from esbackup.services import definitions

    nodes = {vm.node for vm in cat.vms() if auth.can_read_vm(who, vm)}
    storages = {(d.node, d.storage) for d in definitions.visible(cat, who)}
    storages |= {(b.node, b.storage) for b in backups.visible(cat, who)}
    return nodes | {node for node, _ in storages}, storages

