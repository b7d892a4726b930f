"""`catalog copy`: the whole catalog into another one, SQLite or PostgreSQL."""
from __future__ import annotations

import sqlite3

from esbackup.catalog.core import Catalog
from esbackup.catalog.postgresql import redact
from esbackup.catalog.schema import TABLES
from esbackup.errors import InvalidInput, OperationFailed


def copy(source: Catalog, target_location: str) -> dict[str, int]:
    """Copy every row (ids kept; locks, which belong to running processes, not)
    into a new or empty catalog; returns the rows per table, checked in the target."""
    if str(target_location) == str(source.path):
        raise InvalidInput("catalog copy: the target is the catalog itself")
    unknown = source.table_names() - {*TABLES, "locks", "schema_migrations"}
    if unknown:  # a table added to the schema but not to catalog.TABLES
        raise OperationFailed(f"catalog copy does not know the tables {sorted(unknown)}")
    try:
        target = Catalog.open(target_location, create=True)
    except (sqlite3.Error, OSError) as error:
        raise OperationFailed(f"catalog {target_location}: {error}") from None
    try:
        if target.holds_data():
            raise InvalidInput(f"catalog {redact(str(target_location))} already holds data: "
                               "copy only into a new or empty catalog")
        with source.transaction():  # one consistent picture of the source
            rows = {table: source.rows(table) for table in TABLES}
        target.load(rows)
        counts = {table: len(rows[table]) for table in TABLES}
        copied = target.counts()
    finally:
        target.close()
    if copied != counts:
        differ = ", ".join(f"{t}: {counts[t]} read, {copied[t]} in the target"
                           for t in TABLES if copied[t] != counts[t])
        raise OperationFailed(f"catalog copy: counts differ after the copy ({differ})")
    return counts
