"""Recreate catalog rows from the manifests on a backup node: a lost admin host
does not mean lost backups. Running it again changes nothing.

A backup node's files are untrusted input. Every field of a manifest passes
the rules the CLI applies to its own input; a manifest may name only
registered nodes, may not map a dataset another VM has, may not change a row
that exists, and must sit where its own backup would put it. One that breaks
a rule is skipped with one warning line; the rest are imported in one
transaction. A backup whose data is gone is imported as `lost`.
"""
from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from esbackup.catalog.core import Catalog
from esbackup.domain.models import (
    BACKUP_TYPES,
    BRANDS,
    MAX_DISK_ID,
    VM,
    Backup,
    Definition,
    Storage,
    escape_controls,
    validate_choice,
    validate_hostname,
    validate_int,
    validate_name,
    validate_text,
    validate_uuid,
)
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import layout, manifest, presence
from esbackup.errors import EsbackupError, InvalidInput, NotFound
from esbackup.services import definitions, inventory

MAX_MANIFEST = 1024 * 1024
MAX_DURATION_S = 10**8
MAX_BACKUP_SIZE = 2**62
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
PATH_RE = re.compile(rf"/({UUID})/disk([0-9]{{1,4}})/({NAME})\.json", re.ASCII)
STAMPED_RE = re.compile(rf"({NAME})-[0-9]{{8}}_[0-9]{{6}}", re.ASCII)


@dataclass
class Found:
    path: str
    storage: Storage
    data: dict
    backup: Backup


def rebuild(cat: Catalog, node_name: str, reporter: Reporter | None = None, *,
            sessions: Sessions) -> dict:
    node = cat.node(node_name)
    t = sessions(node)
    counts = {"backups": 0, "vms": 0, "definitions": 0, "lost": 0, "skipped": 0}

    def skip(path: str, why: str) -> None:
        counts["skipped"] += 1
        if reporter is not None:
            reporter.warn(f"manifest {escape_controls(path)} skipped: {escape_controls(why)}")

    found: list[Found] = []
    for storage in cat.storages(node_name):
        mount = t.mountpoint(storage.zpool)
        top = layout.manifest_dir(mount)
        listed = t.find_manifests(top)
        paths = []
        for path in listed:
            if PATH_RE.fullmatch(path[len(top):]) and path.startswith(top + "/"):
                paths.append(path)
            else:
                skip(path, "not a manifest's file name")
        for path, raw in zip(paths, t.read_files(paths, MAX_MANIFEST), strict=True):
            try:
                data, backup = parse(raw, path[len(top):], storage, mount)
            except (InvalidInput, ValueError, TypeError, KeyError, AttributeError,
                    OverflowError) as error:
                skip(path, str(error) or type(error).__name__)
                continue
            found.append(Found(path, storage, data, backup))
    present = presence.present(t, [f.backup for f in found]) if found else set()
    with cat.transaction():
        for f in found:
            try:
                with cat.transaction():
                    restore_rows(cat, f, node_name, f.backup.location in present, counts)
            except (EsbackupError, TypeError, ValueError, KeyError, sqlite3.Error) as error:
                skip(f.path, str(error) or type(error).__name__)
    return counts


def parse(raw: bytes | None, relative: str, storage: Storage, mount: str) -> tuple[dict, Backup]:
    """A manifest's bytes -> its data and its backup record, each field checked."""
    if raw is None:
        raise InvalidInput(f"unreadable or larger than {MAX_MANIFEST} bytes")
    data = manifest.parse(raw.decode("utf-8"))
    if not isinstance(data, dict) or data.get("format") != manifest.FORMAT:
        raise InvalidInput("unknown manifest format")
    match = PATH_RE.fullmatch(relative)
    if match is None:
        raise InvalidInput("not a manifest's file name")
    uuid, disk, name = match.groups()
    vm, record = data["vm"], data["backup"]
    if not isinstance(vm, dict) or not isinstance(record, dict):
        raise InvalidInput("vm and backup must be objects")
    if validate_uuid(vm["uuid"]) != vm["uuid"] or vm["uuid"] != uuid:
        raise InvalidInput("its vm uuid does not match its place")
    b = Backup(
        name=validate_name(record["name"], "backup name"), vm=validate_hostname(vm["hostname"]),
        vm_uuid=uuid, disk_id=validate_int(record["disk_id"], "disk id", 1, MAX_DISK_ID),
        type=validate_choice(record["type"], BACKUP_TYPES, "backup type"),
        created=created_time(record["created"]), status="ok", node=storage.node,
        storage=storage.name, duration=number(record.get("duration"), "duration"),
        size=size(record.get("size")), note=validate_text(record.get("note", ""), "note"),
        fsfreeze=flag(record.get("fsfreeze", False), "freeze"),
        definition=record.get("definition"), location=record.get("location"),
        checksum=checksum(record.get("checksum")), manifest=None)
    stamped = STAMPED_RE.fullmatch(b.name)
    if (b.name != name or record.get("vm_uuid") != uuid or str(b.disk_id) != disk
            or not stamped or b.definition not in (None, stamped.group(1))):
        raise InvalidInput("its backup does not match its place")
    if b.location not in expected_locations(b, storage, mount):
        raise InvalidInput(f"location {b.location!r} is not where this backup lives")
    return data, b


def created_time(value) -> str:
    if not isinstance(value, str) or len(value) > 40 or not value.isascii():
        raise InvalidInput(f"invalid created time {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or not 2000 <= moment.year <= 9998:
        raise InvalidInput(f"invalid created time {value!r}: ISO 8601 with a zone")
    return moment.astimezone(timezone.utc).isoformat()


def number(value, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not 0 <= value <= MAX_DURATION_S:
        raise InvalidInput(f"invalid {what} {value!r}")
    return float(value)


def size(value) -> int | None:
    return None if value is None else validate_int(value, "size", 0, MAX_BACKUP_SIZE)


def flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"invalid {what} flag {value!r}")
    return value


def checksum(value) -> str | None:
    if value is not None and not (isinstance(value, str)
                                  and re.fullmatch(r"[0-9a-f]{64}", value)):
        raise InvalidInput(f"invalid checksum {value!r}")
    return value


def expected_locations(b: Backup, storage: Storage, mount: str) -> list[str]:
    """Where this backup's data may lie: its target (or one renamed aside), or its file."""
    if b.type == "file":
        return [layout.file_path(mount, b.vm_uuid, b.disk_id, b.name, compression)
                for compression in layout.EXTENSIONS]
    target = layout.dataset_target(storage.zpool, b.vm_uuid, b.disk_id)
    snap = "@" + layout.snapshot_name(b.name)
    location = b.location if isinstance(b.location, str) else ""
    aside = re.fullmatch(re.escape(target) + r"-[0-9]{8}_[0-9]{6}" + re.escape(snap), location)
    return [target + snap, *([location] if aside else [])]


def restore_rows(cat: Catalog, f: Found, node: str, present: bool, counts: dict) -> None:
    """The rows of one manifest, inside the caller's savepoint; rows that exist stay."""
    vm = ensure_vm(cat, f.data["vm"], counts)
    definition = None
    if f.data.get("definition") is not None:
        definition = ensure_definition(cat, f.data["definition"], vm, f.backup, node,
                                       f.storage.name, counts)
    try:
        existing = cat.backup(vm.uuid, f.backup.name)
    except NotFound:
        existing = None
    if existing is not None:  # known from another node: this one holds a copy of it
        if existing.node != node and present and node not in {
                loc.node for loc in cat.copy_locations([existing.id or 0]).get(
                    existing.id or 0, [])}:
            cat.add_location(existing.id or 0, node, f.storage.name, None, status="ok",
                             created=existing.created, size=f.backup.size,
                             location=f.backup.location, manifest=f.path,
                             checksum=f.backup.checksum)
            counts["copies"] = counts.get("copies", 0) + 1
        return
    status = "ok" if present else "lost"
    b = Backup(**{**f.backup.to_dict(), "vm": vm.hostname, "status": status,
                  "manifest": f.path})
    cat.add_backup(b, definition_id=definition.id if definition else None)
    counts["backups" if present else "lost"] += 1


def ensure_vm(cat: Catalog, data: dict, counts: dict) -> VM:
    """The VM by uuid; a new one only on a registered compute node, with a free
    hostname and datasets no other VM has."""
    try:
        return cat.vm(data["uuid"])
    except NotFound:
        pass
    try:
        cat.vm(data["hostname"])
        raise InvalidInput(f"hostname {data['hostname']} belongs to another virtual server")
    except NotFound:
        pass
    node = cat.node(validate_name(data["node"], "node name"))
    if not node.compute:
        raise InvalidInput(f"node {node.name} has no compute role")
    try:
        dc = cat.dc(validate_name(data["dc"], "dc name")).name
    except NotFound:
        dc = "admin"
    disks = data["disks"]
    if not isinstance(disks, dict):
        raise InvalidInput("disks must be an object")
    owner = data.get("owner")
    vm = VM(hostname=validate_hostname(data["hostname"]), uuid=data["uuid"], dc=dc,
            node=node.name, owner=validate_name(owner, "owner") if owner is not None else None,
            brand=validate_choice(data.get("brand", "kvm"), BRANDS, "brand"),
            disks=inventory.parse_disks(tuple(f"{k}={v}" for k, v in disks.items())),
            qga_socket=inventory.validate_socket(data.get("qga_socket")))
    inventory.check_disks_free(cat, vm)
    counts["vms"] += 1
    return cat.add_vm(vm)


def ensure_definition(cat: Catalog, data: dict, vm: VM, b: Backup, node: str, storage: str,
                      counts: dict) -> Definition:
    """Checked whole even when it exists (a bad manifest is skipped, not half
    used); an existing definition stays as it is."""
    if not isinstance(data, dict) or data.get("name") != b.definition:
        raise InvalidInput("its definition does not match its backup")
    if "retention" in data:  # a manifest of before keep-*: its retention is keep-last
        if data.get("keep_last", data["retention"]) != data["retention"]:
            raise InvalidInput("its definition's retention and keep_last disagree")
        data = {**data, "keep_last": data["retention"]}
    fields = {k: v for k, v in data.items()
              if k in Definition.__dataclass_fields__ and k not in ("created", "id")}
    fields.update(vm=vm.uuid, node=node, storage=storage)
    d = definitions.check(cat, Definition(**fields))
    try:
        return cat.definition(vm.uuid, d.name)
    except NotFound:
        pass
    counts["definitions"] += 1
    return cat.add_definition(d)
