"""Retention: which backups a keep-policy keeps, with Proxmox Backup Server's rules.

Pure: times in, one mark per time out (issue 19).  The rule, as PBS's
``compute_prune_info``/``mark_selections`` (pbs-datastore/src/prune.rs) apply it:

* backups are taken newest first (time descending, compared in UTC; a tie puts the
  later input first);
* the rules run in the order of ``RULES``: last, hourly, daily, weekly, monthly,
  yearly.  Each one walks the backups no earlier rule decided and keeps the newest
  backup of each of the N most recent periods that hold one: an hour
  ``%Y/%m/%d/%H``, a day ``%Y/%m/%d``, an ISO week ``%G/%V``, a month ``%Y/%m``,
  a year ``%Y``, all in local time of the given zone (the hour repeated when the
  clocks go back is one period); keep-last's period is the backup itself;
* a rule skips the periods that hold a backup an earlier rule kept, so its N
  periods reach further back;
* a backup a rule passes over inside one of its own periods (an older one of the
  same day for keep-daily) is decided as removed: later rules skip it too;
* a protected backup is kept and marked protected; it never counts toward a rule
  nor makes its period taken;
* what no rule keeps is removed; a policy whose counts are all 0 keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from esbackup.errors import InvalidInput

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
MAX_KEEP = 100_000


@dataclass(frozen=True)
class Policy:
    """How many backups (last) or periods (the others) to keep; 0 turns a rule off."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self) -> None:
        for rule in RULES:
            count = getattr(self, rule)
            if type(count) is not int or not 0 <= count <= MAX_KEEP:
                raise InvalidInput(f"--keep-{rule} must be 0..{MAX_KEEP}")

    @classmethod
    def of(cls, **counts: int | None) -> Policy:
        """A policy from option values: a missing or None count is 0.

        InvalidInput for a negative, non-integer (bool too) or too large count;
        TypeError for a name that is not one of RULES.
        """
        unknown = sorted(set(counts) - set(RULES))
        if unknown:
            raise TypeError(f"unknown keep rule: {', '.join(unknown)}")
        return cls(**{rule: 0 if count is None else count for rule, count in counts.items()})

    @property
    def keeps_all(self) -> bool:
        """Whether every count is 0: then nothing is removed."""
        return not any(getattr(self, rule) for rule in RULES)

    def describe(self) -> str:
        """``keep-last 3, keep-daily 7``, or ``keep all``."""
        parts = [f"keep-{f.name} {getattr(self, f.name)}" for f in fields(self)
                 if getattr(self, f.name)]
        return ", ".join(parts) if parts else "keep all"


@dataclass(frozen=True)
class Mark:
    """A backup's fate: kept by a rule (one of RULES), "protected", "all" when the
    policy keeps all, or removed (keep False, rule None)."""

    keep: bool
    rule: str | None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown time zone: {name}") from None


def _period_keys(zone: ZoneInfo) -> dict[str, Callable[[int, datetime], object]]:
    """Per rule: a backup's (input index, time) -> its period, a hashable key."""

    def local(t: datetime) -> datetime:
        return t.astimezone(zone)

    def week(t: datetime) -> tuple[int, int]:
        iso = local(t).isocalendar()
        return iso.year, iso.week

    return {
        "last": lambda i, t: i,
        "hourly": lambda i, t: local(t).timetuple()[:4],
        "daily": lambda i, t: local(t).timetuple()[:3],
        "weekly": lambda i, t: week(t),
        "monthly": lambda i, t: local(t).timetuple()[:2],
        "yearly": lambda i, t: local(t).year,
    }


def marks(times: Sequence[datetime], policy: Policy, zone: str,
          protected: Sequence[bool] | None = None) -> list[Mark]:
    """One Mark per time, in the input's order.

    times are aware datetimes in any order (ValueError for a naive one); protected,
    when given, has one flag per time.  InvalidInput for an unknown zone.
    """
    tz = _zone(zone)
    for t in times:
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"naive datetime: {t.isoformat()}")
    flags = [False] * len(times) if protected is None else [bool(p) for p in protected]
    if len(flags) != len(times):
        raise ValueError(f"{len(flags)} protected flags for {len(times)} times")
    if policy.keeps_all:
        return [Mark(True, "all") for _ in times]

    # Newest first.  Compare in UTC: two datetimes sharing a tzinfo compare by wall
    # clock, which ignores fold in the repeated hour.
    utc = [t.astimezone(timezone.utc) for t in times]
    order = sorted(range(len(times)), key=lambda i: (utc[i], i), reverse=True)

    decided: dict[int, Mark] = {i: Mark(True, "protected") for i in order if flags[i]}
    keys = _period_keys(tz)
    for rule in RULES:
        count: int = getattr(policy, rule)
        if not count:
            continue
        key = keys[rule]
        taken = {key(i, utc[i]) for i, m in decided.items() if m.keep and m.rule in RULES}
        chosen: set[object] = set()
        for i in order:
            if i in decided:
                continue
            period = key(i, utc[i])
            if period in taken:
                continue
            if period in chosen:
                decided[i] = Mark(False, None)
                continue
            if len(chosen) >= count:
                break
            chosen.add(period)
            decided[i] = Mark(True, rule)
    return [decided.get(i, Mark(False, None)) for i in range(len(times))]
