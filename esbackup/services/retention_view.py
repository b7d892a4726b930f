"""What a retention policy keeps, for people: `retention preview`, `backup prune
--dry-run` and `definition update --keep-... --dry-run` (engine/retention.py
decides; this shapes the answer).

A record per backup (or per time): its time (ISO-8601 UTC), `keep`, `remove`
or `protected`, and the rule that keeps it (`last`, `hourly`, ..., `newest`).
A backup that is not ok is shown with its status as the mark: retention
neither counts nor removes it (a `lost` one is reported, never kept).
"""
from __future__ import annotations

from datetime import datetime, timezone

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.domain.prune import Mark, Policy, marks
from esbackup.engine import retention


def _mark(mark: Mark) -> str:
    if mark.rule == "protected":
        return "protected"
    return "keep" if mark.keep else "remove"


def _utc(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


def of_times(times: list[datetime], rule: Policy, zone: str) -> list[dict]:
    """Records for bare times (a file of times, or a schedule's firings), in order."""
    return [{"time": _utc(t), "mark": _mark(m), "rule": _rule(m)}
            for t, m in zip(times, marks(times, rule, zone), strict=True)]


def _rule(mark: Mark) -> str | None:
    """The rule that keeps it; None for a removed or a protected one."""
    return mark.rule if mark.keep and mark.rule != "protected" else None


def of_definition(cat: Catalog, d: Definition, rule: Policy | None = None) -> list[dict]:
    """Records for a definition's backups, oldest first, under its policy (or `rule`)."""
    found = retention.backups_of(cat, d)
    chosen = retention.select(found, rule or d.policy, d.timezone)
    return [_backup_record(b, m) for b, m in zip(found, chosen, strict=True)]


def _backup_record(b: Backup, mark: Mark | None) -> dict:
    when = datetime.fromisoformat(b.created)
    if mark is None:
        return {"time": _utc(when), "backup": b.name, "mark": b.status, "rule": None}
    return {"time": _utc(when), "backup": b.name, "mark": _mark(mark), "rule": _rule(mark)}
