"""What every query mixin of `Catalog` shares: the connection they query
(`CatalogConnection`, which sqlite3.Connection and catalog/postgresql.py's
Connection both are), transactions, and the row helpers (`QueryBase`, the
mixins' common base). Methods one mixin calls on another are declared here for
the type checker only; `Catalog` composes the mixins that define them."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from esbackup.catalog.location import is_url
from esbackup.errors import InvalidInput, NotFound, OperationFailed

if TYPE_CHECKING:
    from esbackup.catalog.postgresql import Connection as PostgreSQLConnection
    from esbackup.domain.models import DC, VM, Backup, Node, Storage


class CatalogCursor(Protocol):
    """The rows of one statement: sqlite3.Cursor, or postgresql.Cursor."""

    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class CatalogConnection(Protocol):
    """The connection the catalog queries: sqlite3.Connection, or postgresql.Connection."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, args: Any = ..., /) -> CatalogCursor: ...

    def executemany(self, sql: str, rows: Iterable[Any], /) -> object: ...

    def close(self) -> None: ...


class QueryBase:
    """The connection, transactions and row helpers the query mixins share."""

    conn: CatalogConnection
    path: Path | str

    if TYPE_CHECKING:  # defined by InventoryQueries, used by its sibling mixins
        def dc(self, name: str) -> DC: ...
        def dcs(self) -> list[DC]: ...
        def node(self, name: str) -> Node: ...
        def storage(self, node: str, name: str) -> Storage: ...
        def vm(self, hostname_or_uuid: str) -> VM: ...
        # defined by BackupQueries, used by CopyDefinitionQueries
        def backup(self, vm: str, name: str) -> Backup: ...
        # defined by DefinitionQueries, used by InventoryQueries
        def _rename_refs(self, vm_uuid: str, hostname: str) -> None: ...

    @property
    def is_postgresql(self) -> bool:
        return is_url(self.path)

    def _postgresql(self) -> PostgreSQLConnection:
        """The connection as PostgreSQL's, for what only it has (when `is_postgresql`)."""
        return cast("PostgreSQLConnection", self.conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; inside another transaction, a savepoint of it."""
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO nested")
                self.conn.execute("RELEASE nested")
                raise
            self.conn.execute("RELEASE nested")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple, missing: str) -> Any:
        row = self.conn.execute(sql, args).fetchone()
        if row is None:
            raise NotFound(missing)
        return row

    def _insert_unique(self, table: str, values: dict, exists: str) -> int:
        """Insert one row; returns its id."""
        columns = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join("?" for _ in values)
        try:
            cur = self.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                    tuple(values.values()))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise InvalidInput(exists) from None
            raise
        if cur.lastrowid is None:
            raise OperationFailed(f"catalog: the new row in {table} has no id")
        return cur.lastrowid

    def _update(self, table: str, values: dict, row_id: int) -> None:
        sets = ", ".join(f'"{c}" = ?' for c in values)
        try:
            self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?",
                              (*values.values(), row_id))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise InvalidInput(f"{table[:-1]} name already in use") from None
            raise
