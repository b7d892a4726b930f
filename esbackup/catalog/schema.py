"""The catalog's schema: the numbered migrations (`MIGRATIONS`) written with
the column-type names each backend fills in (`COLUMN_TYPES` for SQLite), the
tables `catalog copy` copies, and the functions that apply the migrations and
refuse a catalog that is not esbackup's or is newer than this esbackup."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from esbackup.catalog.base import CatalogConnection
from esbackup.catalog.helpers import utcnow
from esbackup.errors import InvalidInput, OperationFailed

# The DDL below names its column types {ID}, {INT}, {REAL} and {TEXT}; each backend
# fills them in (COLUMN_TYPES here, catalog/postgresql.py's for PostgreSQL).
COLUMN_TYPES = {"ID": "INTEGER PRIMARY KEY", "INT": "INTEGER", "REAL": "REAL", "TEXT": "TEXT"}
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "inventory, definitions and backups", """
CREATE TABLE dcs (
    id {ID}, name {TEXT} NOT NULL UNIQUE, "desc" {TEXT} NOT NULL DEFAULT '');
CREATE TABLE nodes (
    id {ID}, name {TEXT} NOT NULL UNIQUE, address {TEXT} NOT NULL,
    port {INT} NOT NULL DEFAULT 22, "user" {TEXT} NOT NULL DEFAULT 'root', key_path {TEXT},
    host_key {TEXT}, compute {INT} NOT NULL, backup {INT} NOT NULL,
    max_backups {INT} NOT NULL DEFAULT 2, transfer {TEXT} NOT NULL DEFAULT 'relay',
    hypervisor {TEXT} NOT NULL DEFAULT 'none', capabilities {TEXT} NOT NULL DEFAULT '{{}}',
    created {TEXT} NOT NULL);
CREATE TABLE storages (
    id {ID}, node_id {INT} NOT NULL REFERENCES nodes(id),
    name {TEXT} NOT NULL, zpool {TEXT} NOT NULL, UNIQUE (node_id, name));
CREATE TABLE vms (
    id {ID}, hostname {TEXT} NOT NULL UNIQUE, uuid {TEXT} NOT NULL UNIQUE,
    dc_id {INT} NOT NULL REFERENCES dcs(id), node_id {INT} NOT NULL REFERENCES nodes(id),
    owner {TEXT}, brand {TEXT} NOT NULL, created {TEXT} NOT NULL);
CREATE TABLE disks (
    vm_id {INT} NOT NULL REFERENCES vms(id) ON DELETE CASCADE, disk_id {INT} NOT NULL,
    dataset {TEXT} NOT NULL, PRIMARY KEY (vm_id, disk_id));
CREATE TABLE definitions (
    id {ID}, vm_id {INT} NOT NULL REFERENCES vms(id), name {TEXT} NOT NULL,
    disk_id {INT} NOT NULL, type {TEXT} NOT NULL, node_id {INT} NOT NULL REFERENCES nodes(id),
    storage_id {INT} NOT NULL REFERENCES storages(id), schedule {TEXT} NOT NULL,
    timezone {TEXT} NOT NULL, retention {INT} NOT NULL, active {INT} NOT NULL,
    "desc" {TEXT} NOT NULL DEFAULT '', compression {TEXT} NOT NULL DEFAULT 'off',
    bwlimit {INT} NOT NULL DEFAULT 0, fsfreeze {INT} NOT NULL DEFAULT 0,
    created {TEXT} NOT NULL, UNIQUE (vm_id, name));
CREATE TABLE backups (
    id {ID}, name {TEXT} NOT NULL, vm_hostname {TEXT} NOT NULL,
    vm_uuid {TEXT} NOT NULL, disk_id {INT} NOT NULL, type {TEXT} NOT NULL,
    created {TEXT} NOT NULL, status {TEXT} NOT NULL, duration {REAL}, size {INT},
    note {TEXT} NOT NULL DEFAULT '', fsfreeze {INT} NOT NULL DEFAULT 0,
    definition_id {INT} REFERENCES definitions(id) ON DELETE SET NULL,
    definition_name {TEXT}, node_id {INT} NOT NULL REFERENCES nodes(id),
    storage_id {INT} NOT NULL REFERENCES storages(id), location {TEXT}, checksum {TEXT},
    manifest {TEXT}, UNIQUE (vm_uuid, name));
INSERT INTO dcs (name, "desc") VALUES ('admin', 'default virtual data center');
"""),
    (2, "run history, locks, users, guest agent sockets", """
CREATE TABLE runs (
    id {ID}, definition {TEXT} NOT NULL, trigger {TEXT} NOT NULL,
    started {TEXT} NOT NULL, finished {TEXT}, outcome {TEXT} NOT NULL, error {TEXT},
    backup {TEXT}, size {INT}, duration {REAL}, pid {INT});
CREATE INDEX runs_definition ON runs (definition, started);
CREATE TABLE locks (
    resource {TEXT} PRIMARY KEY, owner {TEXT} NOT NULL, pid {INT} NOT NULL,
    host {TEXT} NOT NULL, acquired {TEXT} NOT NULL, lease_until {TEXT} NOT NULL);
CREATE TABLE users (
    id {ID}, name {TEXT} NOT NULL UNIQUE, role {TEXT} NOT NULL);
CREATE TABLE user_dcs (
    user_id {INT} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    dc_id {INT} NOT NULL REFERENCES dcs(id) ON DELETE CASCADE, PRIMARY KEY (user_id, dc_id));
ALTER TABLE vms ADD COLUMN qga_socket {TEXT};
"""),
    (3, "client config for direct pulls", """
ALTER TABLE nodes ADD COLUMN ssh_config {TEXT};
"""),
    (4, "when each backup's data was last verified, and the outcome", """
ALTER TABLE backups ADD COLUMN verified {TEXT};
ALTER TABLE backups ADD COLUMN verify_result {TEXT};
ALTER TABLE backups ADD COLUMN verify_error {TEXT};
CREATE INDEX backups_verify ON backups (verify_result);
"""),
    (5, "admin host of each run; one tick run per schedule firing", """
ALTER TABLE runs ADD COLUMN host {TEXT};
ALTER TABLE runs ADD COLUMN firing {TEXT};
CREATE UNIQUE INDEX runs_firing ON runs (definition, firing);
"""),
    (6, "indexes for catalogs of 10,000 definitions and 100,000 backups", """
CREATE INDEX backups_vm ON backups (vm_uuid, definition_name, status, created);
CREATE INDEX backups_vm_hostname ON backups (vm_hostname, created);
CREATE INDEX backups_definition ON backups (definition_id, status, created);
CREATE INDEX backups_status ON backups (status, created);
CREATE INDEX backups_node ON backups (node_id, created);
CREATE INDEX backups_storage ON backups (storage_id);
CREATE INDEX backups_created ON backups (created, name);
CREATE INDEX runs_outcome ON runs (definition, outcome, started);
CREATE INDEX runs_started ON runs (started);
CREATE INDEX definitions_node ON definitions (node_id);
CREATE INDEX definitions_storage ON definitions (storage_id);
CREATE INDEX vms_dc ON vms (dc_id);
CREATE INDEX vms_node ON vms (node_id);
"""),
    (7, "bytes each run sent, and what a resumed transfer did not send again", """
ALTER TABLE runs ADD COLUMN sent {INT};
ALTER TABLE runs ADD COLUMN resumed {INT};
"""),
    # A run's `definition` text (VM/NAME when it started) stays for display; the
    # id says whose it is. An existing run goes to the definition its text names
    # now, if it started after that definition was made: a deleted VM's runs
    # never join a new VM of that hostname. The others keep NULL: orphans.
    (8, "runs keyed by their definition's id", """
ALTER TABLE runs ADD COLUMN definition_id {INT} REFERENCES definitions(id) ON DELETE SET NULL;
UPDATE runs SET definition_id = (
    SELECT f.id FROM definitions f JOIN vms v ON v.id = f.vm_id
    WHERE v.hostname || '/' || f.name = runs.definition AND f.created <= runs.started);
DROP INDEX runs_firing;
CREATE UNIQUE INDEX runs_firing ON runs (definition_id, firing);
CREATE INDEX runs_definition_id ON runs (definition_id, started);
CREATE INDEX runs_definition_outcome ON runs (definition_id, outcome, started);
"""),
    # Retention by age buckets (domain/prune.py): today's count is keep-last.
    (9, "retention policies, protected backups", """
ALTER TABLE definitions RENAME COLUMN retention TO keep_last;
ALTER TABLE definitions ADD COLUMN keep_hourly {INT} NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN keep_daily {INT} NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN keep_weekly {INT} NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN keep_monthly {INT} NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN keep_yearly {INT} NOT NULL DEFAULT 0;
ALTER TABLE backups ADD COLUMN protected {INT} NOT NULL DEFAULT 0;
"""),
    (10, "when each definition's schedule began", """
ALTER TABLE definitions ADD COLUMN scheduled_since {TEXT};
UPDATE definitions SET scheduled_since = created;
"""),
    # Second copies (issue 20): a copy definition sends a definition's backups to
    # another backup node; each copy a backup has there is a row of backup_copies
    # (the backups row itself is the primary location). When retention removes the
    # primary of a backup that has copies, a copy takes the row's place: `copied`
    # (and `copy_id`, the copy definition whose retention keeps it) say so.
    (11, "copy definitions, and where each backup's copies live", """
CREATE TABLE copies (
    id {ID}, definition_id {INT} NOT NULL REFERENCES definitions(id) ON DELETE CASCADE,
    node_id {INT} NOT NULL REFERENCES nodes(id), storage_id {INT} NOT NULL REFERENCES storages(id),
    schedule {TEXT} NOT NULL DEFAULT '', after_backup {INT} NOT NULL DEFAULT 0,
    keep_last {INT} NOT NULL DEFAULT 0, keep_hourly {INT} NOT NULL DEFAULT 0,
    keep_daily {INT} NOT NULL DEFAULT 0, keep_weekly {INT} NOT NULL DEFAULT 0,
    keep_monthly {INT} NOT NULL DEFAULT 0, keep_yearly {INT} NOT NULL DEFAULT 0,
    bwlimit {INT} NOT NULL DEFAULT 0, active {INT} NOT NULL DEFAULT 1, created {TEXT} NOT NULL,
    last_started {TEXT}, last_ok {TEXT}, last_error {TEXT}, UNIQUE (definition_id, node_id));
CREATE TABLE backup_copies (
    id {ID}, backup_id {INT} NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    copy_id {INT} REFERENCES copies(id) ON DELETE SET NULL,
    node_id {INT} NOT NULL REFERENCES nodes(id), storage_id {INT} NOT NULL REFERENCES storages(id),
    status {TEXT} NOT NULL, created {TEXT} NOT NULL, size {INT}, location {TEXT},
    manifest {TEXT}, checksum {TEXT}, verified {TEXT}, UNIQUE (backup_id, node_id));
CREATE INDEX backup_copies_node ON backup_copies (node_id, status);
CREATE INDEX backup_copies_copy ON backup_copies (copy_id, status);
CREATE INDEX copies_node ON copies (node_id);
ALTER TABLE backups ADD COLUMN copied {INT} NOT NULL DEFAULT 0;
ALTER TABLE backups ADD COLUMN copy_id {INT} REFERENCES copies(id) ON DELETE SET NULL;
"""),
]
# Copied by `catalog copy`, parents before children; locks are not copied.
TABLES = ("dcs", "nodes", "storages", "vms", "disks", "definitions", "backups", "runs",
          "users", "user_dcs", "copies", "backup_copies")
SCHEMA_VERSION = MIGRATIONS[-1][0]


def check_schema(conn: sqlite3.Connection, path: Path) -> bool:
    """Only an empty file (False) or esbackup's own catalog, of this version or
    older (True)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return False
    if "schema_migrations" not in tables:
        raise InvalidInput(f"{path} is not an esbackup catalog (other tables); refused")
    refuse_newer(conn, path)
    return True


def refuse_newer(conn: CatalogConnection, where: Path | str) -> None:
    """A catalog migrated by a newer esbackup is not used: its meaning is unknown here."""
    newest = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
    if newest > SCHEMA_VERSION:
        raise OperationFailed(f"catalog {where} has schema {newest}, newer than this esbackup "
                              f"knows ({SCHEMA_VERSION}): upgrade esbackup")


def migrate(conn: CatalogConnection, upto: int = SCHEMA_VERSION) -> None:
    types = getattr(conn, "column_types", COLUMN_TYPES)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version {INT} PRIMARY KEY, description {TEXT} NOT NULL, applied {TEXT} NOT NULL)"
        .format_map(types))
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    for version, description, script in MIGRATIONS:
        if version in done or version > upto:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                conn.execute("ROLLBACK")  # another process migrated meanwhile
                continue
            for statement in filter(str.strip, script.format_map(types).split(";")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, description, utcnow())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
