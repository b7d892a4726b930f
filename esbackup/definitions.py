"""Backup definitions: validation of every seed parameter, and their records."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from esbackup import auth, schedule
from esbackup.auth import Identity
from esbackup.catalog import Catalog
from esbackup.errors import InvalidInput
from esbackup.models import (
    BACKUP_TYPES,
    COMPRESSIONS,
    FREEZE_BRANDS,
    Definition,
    parse_size,
    validate_choice,
    validate_name,
)


def check(cat: Catalog, d: Definition) -> Definition:
    """Validate a definition as a whole; returns it with normalized fields."""
    validate_name(d.name, "definition name")
    vm = cat.vm(d.vm)
    if d.disk_id not in vm.disks:
        have = ", ".join(str(i) for i in vm.disks) or "none"
        raise InvalidInput(f"virtual server {vm.hostname} has no disk {d.disk_id} (disks: {have})")
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
    if d.retention < 0:
        raise InvalidInput(f"invalid retention {d.retention}: must be >= 0 (0 keeps all)")
    return replace(d, vm=vm.hostname, schedule=schedule.validate_cron(d.schedule),
                   timezone=schedule.validate_timezone(d.timezone),
                   bwlimit=parse_size(d.bwlimit, "bandwidth limit"))


def create(cat: Catalog, who: Identity, d: Definition) -> Definition:
    auth.require_vm(who, cat.vm(d.vm), write=True)
    return cat.add_definition(check(cat, d))


def update(cat: Catalog, who: Identity, d: Definition, changes: dict) -> Definition:
    auth.require_vm(who, cat.vm(d.vm), write=True)
    return cat.update_definition(check(cat, replace(d, **changes)))


def delete(cat: Catalog, who: Identity, d: Definition) -> None:
    auth.require_vm(who, cat.vm(d.vm), write=True)
    cat.delete_definition(d.vm, d.name)


def visible(cat: Catalog, who: Identity, **filters) -> list[Definition]:
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
    """The JSON shape of a definition (DESIGN.md / issue 2)."""
    now = now or datetime.now(timezone.utc)
    nxt = schedule.next_runs(d.schedule, d.timezone, now, 1) if d.active else []
    return {
        "name": d.name, "vm": d.vm, "disk_id": d.disk_id, "type": d.type, "node": d.node,
        "storage": d.storage, "schedule": d.schedule, "timezone": d.timezone,
        "schedule_utc": utc_schedule(d, now),
        "next_run": nxt[0].isoformat() if nxt else None, "retention": d.retention,
        "active": d.active, "desc": d.desc, "compression": d.compression,
        "bwlimit": d.bwlimit, "fsfreeze": d.fsfreeze, "created": d.created,
    }
