"""A catalog opened only to look (shell completion): read-only, only if it
exists, never migrated, with the checks that refuse a file others could have
written (catalog/location.py) as every opening has."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from esbackup.catalog.core import Catalog
from esbackup.catalog.location import check_file, is_url

LOOK_TIMEOUT_S = 0.1  # a completion waits for nobody


def open_existing(location: Path | str, system_only: bool) -> Catalog | None:
    """The SQLite catalog at `location`, opened read-only; None if there is none.
    A PostgreSQL catalog gives None too: its connection retries a lost server
    for a minute, longer than any key press should wait."""
    if is_url(location):
        return None
    path = Path(location)
    check_file(path, system_only)
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True,
                           timeout=LOOK_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return Catalog(conn, path)
