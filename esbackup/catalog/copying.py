"""Whole-catalog copy helpers for `catalog copy`: row counts per table,
whether a catalog holds anything beyond a new one, and reading and loading
every row with its id (`CopyQueries`, a mixin of `Catalog`)."""
from __future__ import annotations

from esbackup.catalog.base import QueryBase
from esbackup.catalog.schema import TABLES


class CopyQueries(QueryBase):
    """The whole catalog, table by table."""


    # --- whole-catalog copy ----------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per copied table (one query)."""
        sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in TABLES)
        return {name: count for name, count in self.conn.execute(sql)}

    def table_names(self) -> set[str]:
        if self.is_postgresql:
            return set(self._postgresql().table_names())
        return {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")}

    def holds_data(self) -> bool:
        """Anything beyond what a new catalog starts with (the dc `admin`)."""
        counts = self.counts()
        return (any(n for t, n in counts.items() if t != "dcs") or counts["dcs"] > 1
                or [(d.name, d.desc) for d in self.dcs()] != [
                    ("admin", "default virtual data center")])

    def rows(self, table: str) -> list[dict]:
        if table not in TABLES:
            raise ValueError(f"not a catalog table: {table}")
        return [dict(r) for r in self.conn.execute(f"SELECT * FROM {table}")]

    def load(self, tables: dict[str, list[dict]]) -> None:
        """Fill a new catalog with another's rows, ids kept, in one transaction."""
        with self.transaction():
            self.conn.execute("DELETE FROM dcs")  # the seeded `admin` comes with the rows
            for table in TABLES:
                rows = tables.get(table, [])
                if rows:
                    columns = ", ".join(f'"{c}"' for c in rows[0])
                    marks = ", ".join("?" for _ in rows[0])
                    self.conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                          [tuple(r.values()) for r in rows])
            if self.is_postgresql:
                self._postgresql().reset_ids([t for t in TABLES if tables.get(t) and "id" in
                                              tables[t][0]])
