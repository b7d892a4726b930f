"""The SQLite backend's connection: a catalog file checked, opened in WAL mode
with foreign keys on, and migrated (created only when asked: `catalog init`);
and how long a writer waits for another (`BUSY_TIMEOUT_S`, PostgreSQL's too)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from esbackup.catalog.location import check_file, create_file, init_hint
from esbackup.catalog.schema import check_schema, migrate
from esbackup.errors import NotSetUp

BUSY_TIMEOUT_S = 60  # many cron jobs may start in the same minute


def connect(path: Path, system_only: bool = False, create: bool = False) -> sqlite3.Connection:
    """Open and migrate the catalog; only with `create` make a missing one (or
    fill an empty file): any other command on a mistyped path must fail, not
    back up nothing into a fresh catalog."""
    path = Path(path)
    check_file(path, system_only)
    if not os.path.lexists(path):
        if not create:
            raise NotSetUp(f"no catalog at {path}: {init_hint(path)}")
        create_file(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        if not check_schema(conn, path) and not create:
            raise NotSetUp(f"catalog {path} is empty: {init_hint(path)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
