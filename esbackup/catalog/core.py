"""The catalog's `Catalog`: queries over one connection, composed of one
mixin per kind of record (inventory, definitions, backups, runs, locks, copy,
copy definitions and locations).

Only the catalog package has SQL. It returns `models` records and raises
`NotFound`/`InvalidInput`; rules that span records live in the core modules.
The catalog is a SQLite file, or a PostgreSQL database named by a
postgresql:// URL: the SQL is SQLite's, and catalog/postgresql.py runs the same text
on PostgreSQL. Here: opening either; the transactions and row helpers the
mixins share are catalog/base.py's.
"""
from __future__ import annotations

from pathlib import Path

from esbackup.catalog.backups import BackupQueries
from esbackup.catalog.base import CatalogConnection
from esbackup.catalog.copy_definitions import CopyDefinitionQueries
from esbackup.catalog.copying import CopyQueries
from esbackup.catalog.definitions import DefinitionQueries
from esbackup.catalog.inventory import InventoryQueries
from esbackup.catalog.location import SYSTEM_PATH, default_path, init_hint, is_url
from esbackup.catalog.locks import LockQueries
from esbackup.catalog.runs import RunQueries
from esbackup.catalog.schema import migrate, refuse_newer
from esbackup.catalog.sqlite import BUSY_TIMEOUT_S, connect
from esbackup.errors import InvalidInput, NotSetUp, PermissionDenied


class Catalog(InventoryQueries, DefinitionQueries, BackupQueries, RunQueries, LockQueries,
              CopyQueries, CopyDefinitionQueries):
    """Queries over one catalog connection. Open with `Catalog.open(path)`."""

    def __init__(self, conn: CatalogConnection, path: Path | str):
        self.conn, self.path = conn, path

    @classmethod
    def open(cls, path: Path | str | None = None, system_only: bool = False,
             create: bool = False) -> Catalog:
        """Open a SQLite file or, for a postgresql:// URL, a PostgreSQL database,
        migrating an older schema. Only `create` (`catalog init`, a copy's target)
        makes a new catalog; any other open of a missing or empty one is NotSetUp.
        `system_only` (under sudo): nothing but root's system SQLite catalog."""
        path = path or default_path()
        if is_url(path):
            from esbackup.catalog import postgresql as catalog_pg

            if system_only:
                raise PermissionDenied(f"through sudo, esbackup opens only {SYSTEM_PATH}, "
                                       f"not {catalog_pg.redact(str(path))}")
            conn = catalog_pg.connect(str(path), BUSY_TIMEOUT_S)
            try:
                if conn.execute("SELECT to_regclass('schema_migrations')").fetchall()[0][0]:
                    refuse_newer(conn, catalog_pg.redact(str(path)))
                elif not create:
                    raise NotSetUp(f"no catalog in {catalog_pg.redact(str(path))}: "
                                   f"{init_hint(path)}")
                elif conn.table_names():
                    raise InvalidInput(f"{catalog_pg.redact(str(path))} holds tables that are "
                                       "not an esbackup catalog: refused")
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            return cls(conn, str(path))
        path = Path(path)
        return cls(connect(path, system_only, create), path)

    def owner_uid(self) -> int | None:
        """Who owns a SQLite catalog file; None for PostgreSQL (its roles decide)."""
        return None if self.is_postgresql else Path(self.path).stat().st_uid

    def close(self) -> None:
        self.conn.close()

    def schema_version(self) -> int:
        return self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
