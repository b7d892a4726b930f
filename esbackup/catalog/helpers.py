"""Helpers every catalog module shares: `where()`, which builds a WHERE clause
of the filters a caller actually gave; `starting_with()`, `ref_starting_with()`
and `vm_scope()`, the prefix and visibility clauses of shell completion; and
`utcnow()`, the timestamp text the catalog stores (UTC, to the second)."""
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


def starting_with(column: str, prefix: str) -> tuple[str, tuple]:
    """`column` starts with `prefix`, as a range its index answers. Not LIKE:
    its % and _ are wildcards, and SQLite's is case-blind, so no index serves
    it. Text compares bytewise (SQLite's BINARY, PostgreSQL's COLLATE "C"), UTF-8
    keeps code point order, and stored names are ASCII: every name starting
    with `prefix` lies in [prefix, prefix + U+10FFFF)."""
    return f"{column} >= ? AND {column} < ?", (prefix, prefix + "\U0010ffff")


def ref_starting_with(hostname: str, name: str, prefix: str) -> tuple[str, tuple]:
    """A reference VM/NAME starts with `prefix`: before a slash, the hostname
    does; after it, the hostname is the part before and the name starts with
    the rest."""
    vm, slash, rest = prefix.partition("/")
    if not slash:
        return starting_with(hostname, vm)
    sql, args = starting_with(name, rest)
    return f"{hostname} = ? AND {sql}", (vm, *args)


def vm_scope(dcs: tuple[str, ...] | None, owner: str | None) -> tuple[str, tuple]:
    """" AND ..." limiting the VMs `v` to those in `dcs` and of `owner`, where
    given: what a dcadmin or a vmowner may see (domain/auth.py's can_read_vm)."""
    sql, args = "", list[str]()
    if dcs is not None:
        marks = ", ".join("?" * len(dcs))
        sql += f" AND v.dc_id IN (SELECT id FROM dcs WHERE name IN ({marks}))" if dcs else \
            " AND 1 = 0"
        args += dcs
    if owner is not None:
        sql += " AND v.owner = ?"
        args.append(owner)
    return sql, tuple(args)


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
