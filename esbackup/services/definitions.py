"""Backup definitions: validation of every parameter README lists, and their records."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from esbackup.domain import auth, schedule
from esbackup.domain.auth import Identity
from esbackup.domain.models import (
    BACKUP_TYPES,
    COMPRESSIONS,
    FREEZE_BRANDS,
    MAX_DISK_ID,
    MAX_RETENTION,
    Definition,
    parse_ref,
    parse_size,
    validate_choice,
    validate_int,
    validate_name,
    validate_text,
)
from esbackup.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from esbackup.catalog.core import Catalog


def check(cat: Catalog, d: Definition) -> Definition:
    """Validate a definition as a whole; returns it with normalized fields.

    The same rules judge the CLI's input and a backup node's manifests."""
    validate_name(d.name, "definition name")
    disk_id = validate_int(d.disk_id, "disk id", 1, MAX_DISK_ID)
    keep: dict[str, Any] = {f"keep_{rule}": validate_int(count, f"keep-{rule}", 0, MAX_RETENTION)
                            for rule, count in d.keep.items()}
    for flag, what in ((d.active, "active"), (d.fsfreeze, "freeze")):
        if not isinstance(flag, bool):
            raise InvalidInput(f"invalid {what} flag {flag!r}: true or false")
    validate_text(d.desc, "description")
    validate_text(d.schedule, "schedule", 200)
    validate_text(d.timezone, "time zone", 200)
    if not d.schedule.isascii():
        raise InvalidInput(f"invalid cron schedule {d.schedule!r}: ASCII digits and * , - / only")
    vm = cat.vm(d.vm)
    if disk_id not in vm.disks:
        have = ", ".join(str(i) for i in vm.disks) or "none"
        raise InvalidInput(f"virtual server {vm.hostname} has no disk {disk_id} (disks: {have})")
    validate_choice(d.type, BACKUP_TYPES, "backup type")
    validate_choice(d.compression, COMPRESSIONS, "compression")
    if d.type != "file" and d.compression != "off":
        raise InvalidInput("compression applies to file backups only (--type file)")
    node = cat.node(d.node)
    if not node.backup:
        raise InvalidInput(f"node {d.node} has no backup role")
    owners = [s.node for s in cat.storages() if s.name == d.storage]
    if owners and d.node not in owners:
        raise InvalidInput(f"storage {d.storage} belongs to node {owners[0]}, not to {d.node}")
    cat.storage(d.node, d.storage)
    if d.fsfreeze and vm.brand not in FREEZE_BRANDS:
        raise InvalidInput(f"freeze needs a kvm or bhyve virtual server; {vm.hostname} is "
                           f"{vm.brand}")
    return replace(d, vm=vm.hostname, disk_id=disk_id, **keep,
                   schedule=schedule.validate_cron(d.schedule),
                   timezone=schedule.validate_timezone(d.timezone),
                   bwlimit=parse_size(d.bwlimit, "bandwidth limit"))


def find(cat: Catalog, ref: str) -> Definition:
    """`VM/NAME` -> its definition; the VM is resolved first, to one VM only."""
    vm, name = parse_ref(ref, "definition")
    try:
        return cat.definition(cat.vm(vm).uuid, name)
    except NotFound:
        raise NotFound(f"no such definition: {ref}") from None


def create(cat: Catalog, who: Identity, d: Definition) -> Definition:
    auth.require_vm(who, cat.vm(d.vm), write=True)
    return cat.add_definition(check(cat, d))


def update(cat: Catalog, who: Identity, d: Definition, changes: dict) -> Definition:
    return cat.update_definition(proposed(cat, who, d, changes))


def proposed(cat: Catalog, who: Identity, d: Definition, changes: dict) -> Definition:
    """The definition as `changes` would make it, checked; nothing is saved."""
    auth.require_vm(who, cat.vm(d.vm), write=True)
    return check(cat, replace(d, **changes))


def delete(cat: Catalog, who: Identity, d: Definition) -> None:
    auth.require_vm(who, cat.vm(d.vm), write=True)
    cat.delete_definition(d.vm, d.name)


def visible(cat: Catalog, who: Identity, **filters) -> list[Definition]:
    if filters.get("vm") is not None:
        filters["vm"] = cat.vm(filters["vm"]).uuid  # one VM, by its uuid
    found = cat.definitions(**filters)
    if who.is_superadmin:
        return found
    vms = {vm.hostname: vm for vm in cat.vms_without_disks()}
    return [d for d in found if auth.can_read_vm(who, vms[d.vm])]


def utc_schedule(d: Definition, now: datetime) -> str | None:
    """The schedule in UTC at today's offset; None where no 5-field line can say
    it (e.g. "0 0 1 3 *" in Prague: the day before March 1 depends on the year)."""
    try:
        return schedule.schedule_utc(d.schedule, d.timezone, now.date())
    except InvalidInput:
        return None


def record(d: Definition, now: datetime | None = None) -> dict:
    """The JSON shape of a definition (README, "Usage")."""
    now = now or datetime.now(timezone.utc)
    nxt = schedule.next_runs(d.schedule, d.timezone, now, 1) if d.active else []
    return {
        "name": d.name, "vm": d.vm, "disk_id": d.disk_id, "type": d.type, "node": d.node,
        "storage": d.storage, "schedule": d.schedule, "timezone": d.timezone,
        "schedule_utc": utc_schedule(d, now),
        "next_run": nxt[0].isoformat() if nxt else None,
        "retention": d.keep_last, "policy": d.policy.describe(),  # retention: --keep-last's
        **{f"keep_{rule}": count for rule, count in d.keep.items()},
        "active": d.active, "desc": d.desc, "compression": d.compression, "bwlimit": d.bwlimit,
        "fsfreeze": d.fsfreeze, "created": d.created,
    }
