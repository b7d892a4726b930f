"""The SQLite backend's connection: a catalog file created with private
modes, checked, opened in WAL mode with foreign keys on, and migrated; and how
long a writer waits for another (`BUSY_TIMEOUT_S`, PostgreSQL's too)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from esbackup.catalog.location import check_file
from esbackup.catalog.schema import check_schema, migrate

BUSY_TIMEOUT_S = 60  # many cron jobs may start in the same minute


def connect(path: Path, system_only: bool = False) -> sqlite3.Connection:
    """Open (creating with private modes) and migrate the catalog."""
    path = Path(path)
    check_file(path, system_only)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        check_schema(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
