"""Run history queries: each run with the reference of its definition now,
recording and finishing runs, the newest runs and durations per definition,
and pruning old ones (`RunQueries`, a mixin of `Catalog`)."""
from __future__ import annotations

import sqlite3

from esbackup.catalog.base import QueryBase
from esbackup.catalog.helpers import utcnow, where
from esbackup.domain.models import Run, saved_id

RUN_FIELDS = ("id", "trigger", "started", "finished", "outcome", "error", "backup", "size",
              "duration", "pid", "definition_id")


class RunQueries(QueryBase):
    """Runs."""


    # --- runs ------------------------------------------------------------
    # A run's display reference is its definition's current VM/NAME; the text the run
    # was recorded under only for a deleted definition's run (an orphan).
    RUN_SELECT = ("SELECT r.*, COALESCE(v.hostname || '/' || f.name, r.definition) AS ref "
                  "FROM runs r LEFT JOIN definitions f ON f.id = r.definition_id "
                  "LEFT JOIN vms v ON v.id = f.vm_id")

    @staticmethod
    def _run(row: sqlite3.Row) -> Run:
        values = {k: row[k] for k in row.keys() if k not in ("ref", "n", "definition")}
        return Run(definition=row["ref"], **values)

    def recent_durations(self, per_definition: int = 5) -> dict[int, list[float]]:
        """Durations of each definition's newest ok runs, newest first, by definition
        id, in one query."""
        rows = self.conn.execute(
            "SELECT definition_id, duration FROM (SELECT definition_id, duration, ROW_NUMBER() "
            "OVER (PARTITION BY definition_id ORDER BY started DESC, id DESC) AS n FROM runs "
            "WHERE definition_id IS NOT NULL AND outcome = 'ok' AND duration IS NOT NULL) AS r "
            "WHERE n <= ? ORDER BY definition_id, n", (per_definition,))
        found: dict[int, list[float]] = {}
        for definition_id, duration in rows:
            found.setdefault(definition_id, []).append(duration)
        return found

    def add_run(self, run: Run) -> Run:
        values = {k: v for k, v in run.to_dict().items() if k != "id"}
        run.id = self._insert_unique("runs", values, "run exists")
        return run

    def finish_run(self, run: Run) -> None:
        values = {k: v for k, v in run.to_dict().items() if k != "id"}
        self._update("runs", values, saved_id(run.id, f"run of {run.definition}"))

    def abandon_run(self, run_id: int, error: str) -> None:
        """A run whose process died is failed, if it was still running."""
        self.conn.execute("UPDATE runs SET outcome = 'failed', error = ?, finished = ? "
                          "WHERE id = ? AND outcome = 'running'", (error, utcnow(), run_id))

    def runs(self, definition_ids: tuple[int, ...] | None = None, failed: bool = False,
             limit: int | None = None) -> list[Run]:
        """Runs newest first: of these definitions (by id), or every run, orphans too."""
        clause, args = where((definition_ids, "r.definition_id IN (?)"),
                             ("failed" if failed else None, "r.outcome = ?"))
        sql = f"{self.RUN_SELECT}{clause} ORDER BY r.started DESC, r.id DESC"
        if limit is not None:
            sql, args = sql + " LIMIT ?", (*args, limit)
        return [self._run(r) for r in self.conn.execute(sql, args)]

    def last_runs(self, outcome: str | None = None) -> dict[int, Run]:
        """Each definition's newest finished run (of that outcome, if given), by
        definition id, in one query."""
        where, args = ["definition_id IS NOT NULL", "outcome != 'running'"], []
        if outcome is not None:
            where, args = ["definition_id IS NOT NULL", "outcome = ?"], [outcome]
        rows = self.conn.execute(
            "SELECT r.*, v.hostname || '/' || f.name AS ref FROM (SELECT *, ROW_NUMBER() OVER "
            "(PARTITION BY definition_id ORDER BY started DESC, id DESC) AS n FROM runs "
            f"WHERE {' AND '.join(where)}) AS r JOIN definitions f ON f.id = r.definition_id "
            "JOIN vms v ON v.id = f.vm_id WHERE r.n = 1", args)
        return {r["definition_id"]: self._run(r) for r in rows}

    def prune_runs(self, before: str) -> int:
        """Delete finished runs started before `before`, except each definition's
        newest ok and newest failed run; returns how many went."""
        cur = self.conn.execute(
            "DELETE FROM runs WHERE started < ? AND outcome != 'running' AND id NOT IN ("
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY definition_id, CASE "
            "WHEN definition_id IS NULL THEN definition END, outcome "
            "ORDER BY started DESC, id DESC) AS newest FROM runs "
            "WHERE outcome IN ('ok', 'failed')) AS r WHERE newest = 1)", (before,))
        return cur.rowcount
