"""Copy definitions (issue 20): validation, and who may see or change them
(the roles of the definition they copy: domain/auth.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from esbackup.domain import auth, schedule
from esbackup.domain.auth import Identity
from esbackup.domain.models import (
    MAX_RETENTION,
    CopyDefinition,
    Definition,
    parse_copy_ref,
    parse_size,
    validate_int,
)
from esbackup.errors import InvalidInput, NotFound
from esbackup.services import definitions

if TYPE_CHECKING:
    from esbackup.catalog.core import Catalog


def check(cat: Catalog, d: Definition, c: CopyDefinition) -> CopyDefinition:
    """A copy as a whole, normalized: a backup node other than the definition's,
    its storage, a schedule or --after-backup (or both)."""
    keep: dict[str, Any] = {f"keep_{rule}": validate_int(count, f"keep-{rule}", 0, MAX_RETENTION)
                            for rule, count in c.keep.items()}
    for flag, what in ((c.active, "active"), (c.after_backup, "after-backup")):
        if not isinstance(flag, bool):
            raise InvalidInput(f"invalid {what} flag {flag!r}: true or false")
    node = cat.node(c.node)
    if not node.backup:
        raise InvalidInput(f"node {c.node} has no backup role")
    if node.name == d.node:
        raise InvalidInput(f"{d.ref} backs up to node {d.node}: a copy goes to another node")
    cat.storage(c.node, c.storage)
    if not c.schedule and not c.after_backup:
        raise InvalidInput(f"copy {c.ref}: give --schedule CRON or --after-backup")
    cron = schedule.validate_cron(c.schedule) if c.schedule else ""
    return replace(c, vm=d.vm, definition=d.name, definition_id=d.id, timezone=d.timezone,
                   schedule=cron, **keep, bwlimit=parse_size(c.bwlimit, "bandwidth limit"))


def find(cat: Catalog, ref: str) -> tuple[Definition, CopyDefinition]:
    """`VM/DEFINITION/NODE` -> the definition and its copy to NODE."""
    vm, name, node = parse_copy_ref(ref)
    d = definitions.find(cat, f"{vm}/{name}")
    try:
        return d, cat.copy_definition(d.id or 0, node)
    except NotFound:
        raise NotFound(f"no such copy: {ref}") from None


def lookup(cat: Catalog, who: Identity, ref: str, write: bool) -> tuple[Definition,
                                                                        CopyDefinition]:
    d, c = find(cat, ref)
    auth.require_vm(who, cat.vm(d.vm), write=write)
    return d, c


def create(cat: Catalog, who: Identity, definition_ref: str, values: dict) -> CopyDefinition:
    d = definitions.find(cat, definition_ref)
    auth.require_vm(who, cat.vm(d.vm), write=True)
    c = CopyDefinition(vm=d.vm, definition=d.name, **values)
    return cat.add_copy(check(cat, d, c))


def update(cat: Catalog, who: Identity, ref: str, changes: dict) -> CopyDefinition:
    d, c = lookup(cat, who, ref, write=True)
    return cat.update_copy(check(cat, d, replace(c, **changes)))


def delete(cat: Catalog, who: Identity, ref: str) -> CopyDefinition:
    """The copy definition goes; the copies it made stay (and are listed)."""
    _, c = lookup(cat, who, ref, write=True)
    cat.delete_copy(c)
    return c


def visible(cat: Catalog, who: Identity, vm: str | None = None,
            node: str | None = None) -> list[CopyDefinition]:
    found = cat.copy_definitions(vm=cat.vm(vm).uuid if vm else None, node=node)
    if who.is_superadmin:
        return found
    vms = {v.hostname: v for v in cat.vms_without_disks()}
    return [c for c in found if auth.can_read_vm(who, vms[c.vm])]


def record(c: CopyDefinition, now: datetime | None = None) -> dict:
    """The JSON shape of a copy definition (README, "Second copies")."""
    now = now or datetime.now(timezone.utc)
    nxt = (schedule.next_runs(c.schedule, c.timezone, now, 1)
           if c.active and c.schedule else [])
    return {"copy": c.ref, "vm": c.vm, "definition": c.definition, "node": c.node,
            "storage": c.storage, "schedule": c.schedule, "after_backup": c.after_backup,
            "timezone": c.timezone, "next_run": nxt[0].isoformat() if nxt else None,
            "policy": c.policy.describe(),
            **{f"keep_{rule}": count for rule, count in c.keep.items()},
            "bwlimit": c.bwlimit, "active": c.active, "created": c.created,
            "last_started": c.last_started, "last_ok": c.last_ok, "last_error": c.last_error}
