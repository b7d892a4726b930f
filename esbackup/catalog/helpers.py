"""Helpers every catalog module shares: `where()`, which builds a WHERE clause
of the filters a caller actually gave, and `utcnow()`, the timestamp text the
catalog stores (UTC, to the second)."""
from __future__ import annotations

from datetime import datetime, timezone


def where(*filters: tuple[object, str]) -> tuple[str, tuple]:
    """A WHERE clause of the filters actually given: `(value, sql)` pairs whose
    value is not None, each `?` of `sql` bound to that value (a tuple value binds
    its items in turn; an empty one matches nothing)."""
    clauses: list[str] = []
    args: list[object] = []
    for value, sql in filters:
        if value is None:
            continue
        if isinstance(value, tuple):
            sql = sql.replace("(?)", "(" + ", ".join("?" * len(value)) + ")") if value else "1 = 0"
            args.extend(value)
        else:
            args.extend([value] * sql.count("?"))
        clauses.append(sql)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
