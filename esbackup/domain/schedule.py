"""Cron schedules: validation, time zones, next runs as Debian's cron fires them, load.

Pure functions: no catalog, no SSH (``local_timezone`` only reads the host's zone
settings).  croniter is not used: it accepts lines this module must reject, and its
day and DST rules differ from Debian's cron.

Syntax (README, "Cron format"): five whitespace-separated fields, minute 0-59,
hour 0-23, day-of-month 1-31, month 1-12, day-of-week 0-6 (Sunday=0).  A field is a
comma list of ``*``, ``N``, ``A-B``, ``*/S`` or ``A-B/S``; leading zeros are fine.
Stricter than Vixie cron on purpose: no names (``mon``, ``jan``), no 7 for Sunday,
no ``N/S`` (Vixie silently drops that step), no step 0, no reversed range, no empty
list item, and no day-of-month that none of the chosen months has (``0 0 31 2 *``
would never run).

Day rule (Vixie/Debian cron, find_jobs() in cron.c; load_entry() in entry.c sets
DOM_STAR/DOW_STAR when the field's first character is ``*``, so ``*/2`` counts as a
star): when day-of-month or day-of-week is a star, a day must match both fields;
when both are restricted, either one suffices (``0 0 13 * 5``: the 13th and every
Friday).

Clock changes (Debian cron 3.0pl1, cron.c main loop, and cron(8) "Special
considerations exist when the clock is changed by less than 3 hours").  cron counts
local wall-clock minutes; on each wake-up it compares the local minute with the last
one it handled: ``timeDiff = timeRunning - virtualTime``.  A job is a *wildcard* job
when its minute or hour field starts with ``*`` (MIN_STAR/HR_STAR), otherwise a
*fixed-time* job.  With J = the size of the change in minutes:

* forward, 5 <= J < 180 (DST starts; cron.c case 2, "DST begins"): wildcard jobs
  just follow the new local time, skipped minutes are lost; a fixed-time job that
  matched any skipped local minute runs at the jump, i.e. at the first minute of the
  new local time (Europe/Prague 2026-03-29: ``30 2 * * *`` runs at 03:00 CEST =
  01:00 UTC);
* forward, 1 <= J <= 4 (case 1, "woke up late"): every job that matched a skipped
  minute runs at the jump;
* forward, J >= 180 (a clock correction): skipped minutes are lost;
* back, J <= 180 (DST ends; case 0, "DST ends"): in the repeated local minutes only
  wildcard jobs run (so ``*/15 * * * *`` runs 8 times in the repeated hour);
  fixed-time jobs ran in the first pass and are not repeated;
* back, J > 180: everything runs again.

Debian starts a fixed-time job once per skipped minute it matched, ~10 s apart;
here the catch-up is one run at the jump (one instant, also when the job matches
the first new minute itself).  Offsets are taken from the zone at every minute and
floored to whole minutes, as cron.c does; Debian re-reads its offset only when
tm_isdst flips, which is the same for DST changes (an offset change without one is
followed here at once, by a running cron only after a restart).  cron is assumed
idle enough to finish a catch-up within its minute.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from itertools import accumulate, islice, pairwise
from pathlib import Path
from typing import TypeGuard, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from esbackup.errors import InvalidInput

FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)
_ITEM = re.compile(r"(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?\Z")
_MONTH_DAYS = dict(enumerate((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1))
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*\Z")
_NOT_ZONES = {"localtime", "posixrules", "Factory"}

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=timezone.utc)
_MINUTE = timedelta(minutes=1)
_DAY_MINUTES = 1440
_PROBE = _DAY_MINUTES  # offset changes are assumed to be more than a day apart
_HORIZON = 50 * 366 * _DAY_MINUTES  # give up when nothing fires for 50 years
_LATE = 5  # cron.c: timeDiff 2..5 means "woke up late", run everything missed
_JUMP = 180  # cron.c: 3*MINUTE_COUNT, beyond it the clock was corrected

K = TypeVar("K", bound=Hashable)


class _Bad(Exception):
    """A detail of a rejected field or conversion; wrapped into InvalidInput."""


@dataclass(frozen=True)
class CronSpec:
    """A parsed schedule: the value sets of its fields and Vixie cron's star flags."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool
    wildcard: bool  # minute or hour starts with '*': cron.c's "wildcard" job

    def day_matches(self, day: date) -> bool:
        """Vixie's day rule: both day fields if either is a star, else either one."""
        dom_ok = day.day in self.doms
        dow_ok = day.isoweekday() % 7 in self.dows
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def every_day(self) -> bool:
        """Whether the day fields together select every day of the year."""
        all_doms, all_dows = len(self.doms) == 31, len(self.dows) == 7
        if self.dom_star or self.dow_star:
            days = all_doms and all_dows
        else:
            days = all_doms or all_dows
        return days and len(self.months) == 12

    def first_time(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The earliest (hour, minute) of the schedule at or after hour:minute of a day."""
        i = bisect_left(self.hours, hour)
        if i < len(self.hours) and self.hours[i] == hour:
            j = bisect_left(self.minutes, minute)
            if j < len(self.minutes):
                return hour, self.minutes[j]
            i += 1
        return (self.hours[i], self.minutes[0]) if i < len(self.hours) else None


# --- validation ---------------------------------------------------------------------


def validate_cron(expr: str) -> str:
    """Check a 5-field cron schedule; return it with single spaces between fields."""
    return parse_cron(expr).text


@lru_cache(maxsize=4096)
def parse_cron(expr: str) -> CronSpec:
    """Parse a schedule (see the module doc) or raise InvalidInput naming the field."""
    fields = expr.split()
    text = " ".join(fields)
    if len(fields) != len(FIELDS):
        names = " ".join(name for name, _, _ in FIELDS)
        raise InvalidInput(
            f'invalid cron schedule "{text}": expected 5 fields ({names}), got {len(fields)}'
        )
    sets = []
    for field, (name, lo, hi) in zip(fields, FIELDS, strict=True):
        try:
            sets.append(_parse_field(field, lo, hi))
        except _Bad as exc:
            raise InvalidInput(f'invalid cron schedule "{text}": {name} field: {exc}') from None
    minutes, hours, doms, months, dows = sets
    spec = CronSpec(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        doms=frozenset(doms),
        months=frozenset(months),
        dows=frozenset(dows),
        dom_star=fields[2].startswith("*"),
        dow_star=fields[4].startswith("*"),
        wildcard=fields[0].startswith("*") or fields[1].startswith("*"),
    )
    _check_reachable(spec)
    return spec


def _parse_field(field: str, lo: int, hi: int) -> set[int]:
    """The values of one field: a comma list of items."""
    values: set[int] = set()
    for item in field.split(","):
        values.update(_parse_item(item, lo, hi))
    return values


def _parse_item(item: str, lo: int, hi: int) -> range:
    """The values of one list item: *, N, A-B, */S or A-B/S."""
    if not item:
        raise _Bad("empty list item")
    match = _ITEM.match(item)
    if not match:
        if item.isalpha():
            raise _Bad(f'"{item}" is not a number; names are not supported, use {_span(lo, hi)}')
        raise _Bad(f'"{item}" is not *, a number, a range A-B or a step */S or A-B/S')
    star, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        raise _Bad(f'"{item}": step 0')
    if star:
        return range(lo, hi + 1, int(step or 1))
    if step is not None and last is None:
        raise _Bad(f'"{item}": a step needs a range: write {first}-{hi}/{step} or */{step}')
    start, end = int(first), int(last or first)
    for value in (start, end):
        if not lo <= value <= hi:
            raise _Bad(f"{value} is out of range {_span(lo, hi)}")
    if start > end:
        raise _Bad(f'"{item}": reversed range')
    return range(start, end + 1, int(step or 1))


def _span(lo: int, hi: int) -> str:
    """The allowed range of a field as shown in messages."""
    return f"{lo}-{hi} (Sunday=0)" if hi == 6 else f"{lo}-{hi}"


def _check_reachable(spec: CronSpec) -> None:
    """Reject a day-of-month that none of the months has when it alone picks the days."""
    if spec.dom_star or not spec.dow_star:
        return
    if any(day <= _MONTH_DAYS[month] for day in spec.doms for month in spec.months):
        return
    days = ",".join(map(str, sorted(spec.doms)))
    months = ",".join(map(str, sorted(spec.months)))
    raise InvalidInput(
        f'invalid cron schedule "{spec.text}": day-of-month field: '
        f"day {days} never occurs in month {months}"
    )


# --- time zones ---------------------------------------------------------------------


def validate_timezone(name: str) -> str:
    """Check an IANA time zone name (Europe/Prague, UTC); return it stripped."""
    name = name.strip()
    if (
        _ZONE_NAME.match(name)
        and name not in _NOT_ZONES
        and not name.startswith(("posix/", "right/"))
    ):
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise InvalidInput(f'unknown time zone "{name}": use an IANA name such as Europe/Prague')


def _is_zone(name: str | None) -> TypeGuard[str]:
    """Whether name is a valid IANA zone name."""
    if not name:
        return False
    try:
        return validate_timezone(name) == name
    except InvalidInput:
        return False


def local_timezone(*, environ: Mapping[str, str] | None = None, etc: Path = Path("/etc")) -> str:
    """The admin host's zone by name: TZ, /etc/timezone, the /etc/localtime link, else UTC."""
    env = os.environ if environ is None else environ
    finders = (
        lambda: _zone_from_tz(env.get("TZ")),
        lambda: _read_first_line(etc / "timezone"),
        lambda: _zone_from_link(etc / "localtime"),
    )
    for find in finders:
        name = find()
        if _is_zone(name):
            return name
    return "UTC"


def _zone_from_tz(value: str | None) -> str | None:
    """The zone name in a TZ value (``Europe/Prague``, ``:Europe/Prague`` or a path)."""
    if not value:
        return None
    value = value.removeprefix(":")
    return _zone_from_path(value) if value.startswith("/") else value


def _read_first_line(path: Path) -> str | None:
    """The first line of a small text file, or None when unreadable."""
    try:
        return path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return None


def _zone_from_link(path: Path) -> str | None:
    """The zone name an /etc/localtime symlink points to."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    return _zone_from_path(os.path.normpath(os.path.join(path.parent, target)))


def _zone_from_path(path: str) -> str | None:
    """``.../zoneinfo/[posix/|right/]Europe/Prague`` -> ``Europe/Prague``."""
    _, found, name = path.partition("/zoneinfo/")
    if not found:
        return None
    return name.removeprefix("posix/").removeprefix("right/")


@lru_cache(maxsize=1024)
def _zone(tz: str) -> ZoneInfo:
    """The ZoneInfo of a validated zone name."""
    return ZoneInfo(validate_timezone(tz))


# --- next runs ----------------------------------------------------------------------


# A catalog of 10,000 definitions holds a few hundred distinct (schedule, zone)
# pairs, and one command asks about them all at the same moment: the fire
# minutes are remembered per (schedule, zone, window), so the work grows with
# the distinct schedules, not with the definitions.


def next_runs(expr: str, tz: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next `count` runs (aware UTC) strictly after `after`, as Debian's cron in tz."""
    first = _floor_minute(_aware(after, "after")) + 1
    return [_utc(minute) for minute in _minutes(expr, tz, first, None, max(count, 0))]


def runs_between(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """All runs (aware UTC) with start <= run < end, as Debian's cron in tz."""
    first = _ceil_minute(_aware(start, "start"))
    stop = _ceil_minute(_aware(end, "end"))
    return [_utc(minute) for minute in _minutes(expr, tz, first, stop, None)]


@lru_cache(maxsize=8192)
def _minutes(expr: str, tz: str, first: int, stop: int | None,
             count: int | None) -> tuple[int, ...]:
    """Fire minutes from `first`: before `stop`, or the first `count` of them."""
    return tuple(islice(_fire_minutes(parse_cron(expr), _zone(tz), first, stop), count))


def _aware(moment: datetime, name: str) -> datetime:
    """moment itself; InvalidInput when it has no time zone."""
    if moment.utcoffset() is None:
        raise InvalidInput(f"{name} must carry a time zone (UTC), got {moment.isoformat()}")
    return moment


def _floor_minute(moment: datetime) -> int:
    """Minutes since the epoch, rounded down."""
    return (moment - _EPOCH_UTC) // _MINUTE


def _ceil_minute(moment: datetime) -> int:
    """Minutes since the epoch, rounded up."""
    return -((_EPOCH_UTC - moment) // _MINUTE)


def _utc(minute: int) -> datetime:
    """An epoch minute as an aware UTC datetime."""
    return _EPOCH_UTC + minute * _MINUTE


def _naive(minute: int) -> datetime:
    """An epoch minute as a naive (wall-clock) datetime."""
    return _EPOCH + minute * _MINUTE


def _offset(zone: ZoneInfo, minute: int) -> int:
    """The zone's UTC offset at a UTC epoch minute, floored to whole minutes."""
    offset = datetime.fromtimestamp(minute * 60, zone).utcoffset()
    return offset // _MINUTE if offset is not None else 0


def _fire_minutes(spec: CronSpec, zone: ZoneInfo, first: int, stop: int | None) -> Iterator[int]:
    """UTC epoch minutes >= first (and < stop) at which cron starts the job."""
    x, blocked = first, _blocked_until(spec, zone, first)
    entering = _offset(zone, first - 1) != _offset(zone, first)
    while stop is None or x < stop:
        offset = _offset(zone, x)
        if entering:
            entering = False
            fires, blocked = _at_change(spec, x, _offset(zone, x - 1), offset, blocked)
            if fires:
                yield x
                x += 1
                continue
        start = x if spec.wildcard else max(x, blocked)
        end = start + _HORIZON if stop is None else min(stop, start + _HORIZON)
        found = _next_local(spec, _naive(start + offset), _naive(end + offset))
        candidate = end if found is None else (found - _EPOCH) // _MINUTE - offset
        change = _next_change(zone, x, min(candidate, end))
        if change is not None:
            x, entering = change, True
        elif found is not None and candidate < end:
            yield candidate
            x = candidate + 1  # the offset may change right here (a run at 01:59 before 02:00)
            entering = _offset(zone, x - 1) != _offset(zone, x)
        else:
            return


def _at_change(
    spec: CronSpec, minute: int, before: int, after: int, blocked: int
) -> tuple[bool, int]:
    """cron.c's wake-up after the offset changed: (job runs now?, fixed jobs blocked until)."""
    time_diff = 1 + after - before  # timeRunning - virtualTime
    if time_diff > _JUMP or time_diff <= -_JUMP:
        return False, blocked
    if time_diff <= 0:
        return False, minute + before - after
    if time_diff > _LATE and spec.wildcard:
        return False, blocked
    missed = _next_local(spec, _naive(minute + before), _naive(minute + after))
    return missed is not None, blocked


def _blocked_until(spec: CronSpec, zone: ZoneInfo, first: int) -> int:
    """When first lies in local time repeated by a recent step back: where it ends."""
    if spec.wildcard:
        return first
    change = _next_change(zone, first - _JUMP, first)
    if change is None:
        return first
    back = _offset(zone, change - 1) - _offset(zone, change)
    return change + back if 0 < back <= _JUMP and first < change + back else first


def _next_change(zone: ZoneInfo, minute: int, limit: int) -> int | None:
    """The first minute in (minute, limit] whose UTC offset differs from minute's."""
    base, low = _offset(zone, minute), minute
    while low < limit:
        high = min(low + _PROBE, limit)
        if _offset(zone, high) != base:
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == base:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None


def _next_local(spec: CronSpec, start: datetime, limit: datetime) -> datetime | None:
    """The first wall-clock minute in [start, limit) the schedule matches: days, then times."""
    day, hour, minute = start.date(), start.hour, start.minute
    while datetime.combine(day, time()) < limit:
        if day.month not in spec.months:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            hour = minute = 0
            continue
        found = spec.first_time(hour, minute) if spec.day_matches(day) else None
        if found is not None:
            moment = datetime.combine(day, time(*found))
            return moment if moment < limit else None
        day += timedelta(days=1)
        hour = minute = 0
    return None


# --- conversion to UTC --------------------------------------------------------------


@lru_cache(maxsize=4096)
def schedule_utc(expr: str, tz: str, on: date) -> str:
    """The schedule with its times moved to UTC at tz's offset on that date (local noon).

    Hours (and minutes, for offsets that are not whole hours) are shifted; when the
    shift moves the times to the previous or next day, the day fields follow where a
    single 5-field line can say so exactly.  InvalidInput otherwise: times split across
    two UTC days, UTC times that are not one hour list x one minute list, weekdays with
    restricted months, day shifts that depend on the month length or the leap year.
    """
    spec, zone = parse_cron(expr), _zone(tz)
    noon = datetime.combine(on, time(12), zone).utcoffset()
    offset = noon // _MINUTE if noon is not None else 0
    if offset == 0:
        return spec.text
    try:
        return _shift_to_utc(spec, offset)
    except _Bad as exc:
        sign, (hours, minutes) = "+-"[offset < 0], divmod(abs(offset), 60)
        raise InvalidInput(
            f'cron schedule "{spec.text}" in {tz} (UTC{sign}{hours:02d}:{minutes:02d}) '
            f"cannot be written in UTC: {exc}"
        ) from None


def _shift_to_utc(spec: CronSpec, offset: int) -> str:
    """The 5 fields of the schedule moved by -offset minutes."""
    fields = spec.text.split()
    by_day: dict[int, set[tuple[int, int]]] = {}
    for hour in spec.hours:
        for minute in spec.minutes:
            day, rest = divmod(hour * 60 + minute - offset, _DAY_MINUTES)
            by_day.setdefault(day, set()).add(divmod(rest, 60))
    if spec.every_day():
        shift, times = 0, set().union(*by_day.values())
    elif len(by_day) > 1:
        raise _Bad("some of its times fall on another UTC day than the others")
    else:
        ((shift, times),) = by_day.items()
    hours = sorted({hour for hour, _ in times})
    minutes = sorted({minute for _, minute in times})
    if len(hours) * len(minutes) != len(times):
        raise _Bad("its UTC times are not one list of hours times one list of minutes")
    days = _shift_days(spec, fields, shift) if shift else fields[2:]
    return " ".join(
        [
            _field(minutes, spec.minutes, fields[0], 0, 59),
            _field(hours, spec.hours, fields[1], 0, 23),
            *days,
        ]
    )


def _shift_days(spec: CronSpec, fields: list[str], shift: int) -> list[str]:
    """The three day fields moved by one day (shift is -1 or +1)."""
    all_months = len(spec.months) == 12
    if spec.dom_star and len(spec.doms) == 31:
        if not all_months:
            raise _Bad("weekdays in chosen months cannot move across a month's end")
        return [fields[2], fields[3], _shift_dows(spec.dows, shift)]
    if spec.dow_star and len(spec.dows) == 7:
        pairs = {
            _shift_date(month, day, shift)
            for month in spec.months
            for day in spec.doms
            if day <= _MONTH_DAYS[month]
        }
        months = {month for month, _ in pairs}
        doms = {day for _, day in pairs}
        if pairs != {(m, d) for m in months for d in doms if d <= _MONTH_DAYS[m]}:
            raise _Bad("its UTC dates are not one list of days times one list of months")
        return [
            _render(doms, 1, 31),
            _field(sorted(months), sorted(spec.months), fields[3], 1, 12),
            fields[4],
        ]
    if not (spec.dom_star or spec.dow_star) and all_months:
        if all(day <= 28 and 1 <= day + shift <= 28 for day in spec.doms):
            doms = {day + shift for day in spec.doms}
            return [_render(doms, 1, 31), fields[3], _shift_dows(spec.dows, shift)]
    raise _Bad("its day fields cannot move to the neighbouring day exactly")


def _shift_dows(dows: Iterable[int], shift: int) -> str:
    """A day-of-week field moved by one day."""
    return _render({(day + shift) % 7 for day in dows}, 0, 6)


def _shift_date(month: int, day: int, shift: int) -> tuple[int, int]:
    """(month, day) moved by one day, when that does not depend on the year."""
    if shift > 0:
        if (month, day) == (2, 28):
            raise _Bad("the day after February 28 depends on the year")
        return (month, day + 1) if day < _MONTH_DAYS[month] else (month % 12 + 1, 1)
    if day > 1:
        return month, day - 1
    previous = 12 if month == 1 else month - 1
    if previous == 2:
        raise _Bad("the day before March 1 depends on the year")
    return previous, _MONTH_DAYS[previous]


def _field(values: list[int], original: Iterable[int], text: str, lo: int, hi: int) -> str:
    """The original field text when its values did not change, else the values rendered."""
    return text if list(values) == sorted(original) else _render(values, lo, hi)


def _render(values: Iterable[int], lo: int, hi: int) -> str:
    """A value set as a field: ``*`` when full, ``a-b/s`` when evenly spaced, else a list.

    Never ``*/s``: a leading ``*`` would make a restricted day field count as a star.
    """
    ordered = sorted(set(values))
    if ordered == list(range(lo, hi + 1)):
        return "*"
    steps = {b - a for a, b in pairwise(ordered)}
    if len(ordered) > 2 and len(steps) == 1:
        step = steps.pop()
        return f"{ordered[0]}-{ordered[-1]}" + (f"/{step}" if step > 1 else "")
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


# --- load ---------------------------------------------------------------------------


def _busy_intervals(runs: list[tuple[datetime, int]], start: datetime,
                    span: int) -> list[tuple[int, int]]:
    """Minutes [lo, hi) from `start` during which (start, minutes) runs of one disk
    are busy, overlapping runs merged and everything clipped to [0, span)."""
    merged: list[tuple[int, int]] = []
    for run, minutes in sorted(runs):
        first = int((run - start).total_seconds() // 60)
        lo, hi = max(0, first), min(span, first + minutes)
        if lo >= hi:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def concurrent_load(
    items: Iterable[tuple[K, Hashable, str, str, int]], start: datetime, days: int
) -> dict[tuple[K, int], int]:
    """Most backups running at once per (key, hour of day in UTC) over `days` days
    from `start`, for (key, disk, schedule, zone, expected minutes) items: a run
    counts for every minute it is expected to last, also one that began before
    `start`.

    A disk never runs twice at once (its lock: one operation per disk at a time,
    the next waits), so the minutes of all runs of one disk, of one definition or
    several, are merged into intervals and count once. Disks with equal
    (schedule, zone, minutes) sets are counted together and expanded once, and
    an interval adds +n/-n at its ends (a difference array): the work grows with
    intervals, not with runs times their minutes."""
    start = start.astimezone(timezone.utc).replace(second=0, microsecond=0)
    span = days * _DAY_MINUTES
    per_disk: dict[tuple[K, Hashable], set[tuple[str, str, int]]] = {}
    for key, disk, expr, tz, minutes in items:
        per_disk.setdefault((key, disk), set()).add((expr, tz, minutes))
    intervals: dict[frozenset, list[tuple[int, int]]] = {}
    diffs: dict[K, list[int]] = {}
    for (key, runs_of), n in Counter((key, frozenset(runs_of))
                                     for (key, _), runs_of in per_disk.items()).items():
        if runs_of not in intervals:
            intervals[runs_of] = _busy_intervals(
                [(run, minutes) for expr, tz, minutes in runs_of
                 for run in runs_between(expr, tz, start - timedelta(minutes=minutes),
                                         start + timedelta(minutes=span))], start, span)
        diff = diffs.setdefault(key, [0] * (span + 1))
        for lo, hi in intervals[runs_of]:
            diff[lo] += n
            diff[hi] -= n
    hour0 = start.hour * 60 + start.minute
    peaks: dict[tuple[K, int], int] = {}
    for key, diff in diffs.items():
        running = list(accumulate(diff[:span]))
        m0 = 0
        while m0 < span:
            m1 = min(span, m0 + 60 - (hour0 + m0) % 60)
            slot, value = (key, (hour0 + m0) // 60 % 24), max(running[m0:m1])
            if value > peaks.get(slot, 0):
                peaks[slot] = value
            m0 = m1
    return peaks
