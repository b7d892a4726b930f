"""Backup records as users see them, and who may see or change which backup."""
from __future__ import annotations

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.auth import Identity
from esbackup.domain.models import VM, Backup, Location, parse_ref
from esbackup.errors import InvalidInput, NotFound, PermissionDenied

FREEZE_FLAG = "⚑"


def record(b: Backup) -> dict:
    data = dict(vars(b))  # its fields are flat: no need for asdict's deep copy
    data.pop("id")
    data.pop("copy_id")
    return data


def table_record(b: Backup) -> dict:
    data = record(b)
    data["status"] = f"{b.status} {FREEZE_FLAG}" if b.fsfreeze else b.status
    return data


def shaped(b: Backup, fmt: str, copies: list[Location] | None = None) -> dict:
    """Raw for machines; for people the status carries the freeze flag. With
    `copies` (issue 20), where the backup lives: `locations`, the primary
    first (JSON: a list of records), and `where` in one word for a table."""
    data = record(b) if fmt in ("json", "csv", "tsv") else table_record(b)
    if copies is not None:
        places = [Location.primary_of(b), *copies]
        data["where"] = b.node + (f" +{len(copies)}" if copies else "")
        data["locations"] = ([location_record(loc) for loc in places] if fmt == "json" else
                             ", ".join(f"{loc.node}:{loc.storage} {loc.status}"
                                       for loc in places))
    return data


def location_record(loc: Location) -> dict:
    data = dict(vars(loc))
    for key in ("id", "backup_id", "copy_id"):
        data.pop(key)
    return data


def copies_of(cat: Catalog, found: list[Backup]) -> dict[int, list[Location]]:
    """The copies of `found` on other backup nodes, by backup id (one query)."""
    return cat.copy_locations([b.id for b in found if b.id is not None])


def lookup(cat: Catalog, who: Identity, ref: str, write: bool) -> Backup:
    vm, name = parse_ref(ref, "backup")
    b = cat.backup(vm_key(cat, vm), name)
    require(cat, who, b, write)
    return b


def vm_key(cat: Catalog, vm: str) -> str:
    """A live VM's backups are found by its uuid only (a deleted VM's by its
    old hostname or uuid), so no name can reach another VM's backups."""
    try:
        return cat.vm(vm).uuid
    except NotFound:
        return vm


def require(cat: Catalog, who: Identity, b: Backup, write: bool) -> None:
    """Backups of a deleted VM are the superadmin's; others follow their VM."""
    try:
        vm = cat.vm(b.vm_uuid)
    except NotFound:
        auth.require_superadmin(who, f"access to backup {b.ref} of a deleted server")
        return
    auth.require_vm(who, vm, write)


def visible(cat: Catalog, who: Identity, **filters) -> list[Backup]:
    """The backups the filters select that `who` may see. A VM or definition named
    in a filter that names nothing (no such VM, live or with backups left; no such
    definition) is NotFound, as an unknown node is: not an empty, healthy list."""
    if filters.get("vm") is not None:
        filters["vm"] = vm_key(cat, filters["vm"])
    found = cat.backups(**filters)
    if not found:
        unknown(cat, filters.get("vm"), filters.get("definition"))
    if who.is_superadmin:
        return found
    vms = {vm.uuid: vm for vm in cat.vms_without_disks()}

    def allowed(b: Backup) -> bool:
        vm = vms.get(b.vm_uuid)
        return who.is_superadmin if vm is None else auth.can_read_vm(who, vm)

    return [b for b in found if allowed(b)]


def unknown(cat: Catalog, vm: str | None, definition: str | None) -> None:
    """Raise NotFound for a filter's VM or definition that names nothing at all
    (its backups, if it had any, would have matched)."""
    if vm is not None:
        try:
            cat.vm(vm)
        except NotFound:
            if not cat.backups(vm=vm):  # a deleted VM is known by its backups
                raise NotFound(f"no such virtual server: {vm}") from None
    if definition is not None and not cat.definitions(vm=vm, name=definition) and not (
            cat.backups(vm=vm, definition=definition)):
        raise NotFound(f"no such definition: {definition}")


def restore_target(cat: Catalog, who: Identity, ref: str, vm: str | None,
                   disk_id: int | None) -> tuple[Backup, VM, int]:
    """The backup `ref` and the disk it would be restored to (the backup's own,
    unless `vm` or `disk_id` say otherwise), refused before anything is asked
    or touched: a backup that is not ok, a target VM the caller may not change."""
    b = lookup(cat, who, ref, write=False)
    copies = copies_of(cat, [b]).get(b.id or 0, [])
    if b.status != "ok" and not any(loc.status == "ok" for loc in copies):
        raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups can be restored")
    target = cat.vm(vm or b.vm_uuid)
    auth.require_vm(who, target, write=True)
    return b, target, disk_id or b.disk_id


def protect(cat: Catalog, who: Identity, ref: str, protected: bool) -> Backup:
    """Mark a backup protected (retention never removes it; deleting it needs
    --force), or not. Not a vmowner's call: protection is the operators'."""
    if who.role == "vmowner":
        raise PermissionDenied(f"{who.name} is a vmowner: only admins protect or unprotect "
                               "backups")
    b = lookup(cat, who, ref, write=True)
    return cat.update_backup(b, protected=protected)


def deletable(cat: Catalog, who: Identity, ref: str, force: bool) -> Backup:
    """The backup `ref`, if the caller may delete it now: a protected one only
    with --force."""
    b = lookup(cat, who, ref, write=True)
    if b.protected and not force:
        raise InvalidInput(f"backup {b.ref} is protected: `esbackup backup unprotect {b.ref}` "
                           "first, or delete it with --force")
    return b
