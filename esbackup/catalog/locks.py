"""Lock rows: taking a lock (replacing a stale holder in the same
transaction), renewing and releasing this host's own, and listing them
(`LockQueries`, a mixin of `Catalog`)."""
from __future__ import annotations

from esbackup.catalog.base import QueryBase
from esbackup.catalog.helpers import utcnow


class LockQueries(QueryBase):
    """Locks."""


    # --- locks -----------------------------------------------------------
    def take_lock(self, resource: str, owner: str, pid: int, host: str, lease_until: str,
                  replace_stale=None) -> dict | None:
        """Insert a lock row; returns None when taken, else the holder's row as a dict.

        `replace_stale(holder) -> bool` decides, inside the same transaction,
        whether an existing holder may be replaced (dead process, lease over).
        """
        with self.transaction():
            row = self.conn.execute("SELECT * FROM locks WHERE resource = ?",
                                    (resource,)).fetchone()
            if row is not None:
                holder = dict(row)
                if replace_stale is None or not replace_stale(holder):
                    return holder
                self.conn.execute("DELETE FROM locks WHERE resource = ?", (resource,))
            else:
                holder = None
            self.conn.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?)",
                              (resource, owner, pid, host, utcnow(), lease_until))
        return {"stale": holder} if holder else None

    def renew_locks(self, resources: list[str], pid: int, host: str, lease_until: str) -> None:
        """Only our own rows: a lock taken over meanwhile is another holder's."""
        self.conn.executemany(
            "UPDATE locks SET lease_until = ? WHERE resource = ? AND pid = ? AND host = ?",
            [(lease_until, r, pid, host) for r in resources])

    def release_lock(self, resource: str, pid: int, host: str) -> None:
        self.conn.execute("DELETE FROM locks WHERE resource = ? AND pid = ? AND host = ?",
                          (resource, pid, host))

    def locks(self, prefix: str = "") -> list[dict]:
        rows = self.conn.execute("SELECT * FROM locks WHERE resource LIKE ? ORDER BY resource",
                                 (prefix.replace("%", "") + "%",))
        return [dict(r) for r in rows]
