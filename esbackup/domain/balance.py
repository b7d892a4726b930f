"""Move fixed-time schedules so that no node runs more backups at once than its slots.

The model is one week of UTC minutes, taken as circular (daily and weekly
schedules repeat on it). A definition occupies each of its nodes (compute and
backup side) from each run's start for its expected duration. A disk runs one
operation at a time (its lock makes the next run wait), so the runs of one
disk, of one definition or several, occupy a node once however they overlap.
A node is over at a minute when more disks occupy it than its `max_backups`;
the excess is the sum, over nodes and minutes, of the occupancy above the slots.

Only schedules with one fixed hour and one fixed minute move, to a minute on
a `STEP` grid inside the window (in the definition's own zone, the whole run
inside it); their day, month and weekday fields never change. The others only
count as load.

Local search: while some single move lowers the excess, make the one that
lowers it most, the smallest shift first (then the earliest time, then the
key). Every move strictly lowers the excess, so the search ends, and where
it ends no move helps: balancing its result again plans nothing.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from operator import gt

from esbackup.domain import schedule
from esbackup.errors import InvalidInput

STEP = 5
DAY = 1440
WEEK = 7 * DAY
_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)\Z")


@dataclass(frozen=True)
class Item:
    key: Hashable
    expr: str
    tz: str
    nodes: frozenset[str]
    minutes: int = 1  # expected duration
    fixed: bool = False  # counts as load, never moves
    disk: Hashable = None  # items of one disk never run at once; None: a disk of its own

    @property
    def disk_key(self) -> Hashable:
        return ("key", self.key) if self.disk is None else ("disk", self.disk)


@dataclass(frozen=True)
class Window:
    """Minutes of the day [start, end), crossing midnight when end <= start."""

    start: int = 0
    end: int = 0  # equal to start: the whole day

    @property
    def length(self) -> int:
        return (self.end - self.start) % DAY or DAY

    def fits(self, minute: int, duration: int) -> bool:
        """A run starting at `minute` starts inside, and ends inside where it can."""
        offset = (minute - self.start) % DAY
        return offset + min(duration, self.length) <= self.length


def parse_window(text: str | None) -> Window:
    if not text:
        return Window()
    match = _WINDOW.match(text.strip())
    if not match:
        raise InvalidInput(f"invalid window {text!r}: use HH:MM-HH:MM, e.g. 22:00-06:00")
    h1, m1, h2, m2 = map(int, match.groups())
    return Window(h1 * 60 + m1, h2 * 60 + m2)


@dataclass
class Plan:
    moves: dict[Hashable, str] = field(default_factory=dict)
    peaks: dict[str, tuple[int, int]] = field(default_factory=dict)  # node: (before, after)


@lru_cache(maxsize=4096)
def _spec(expr: str) -> schedule.CronSpec:
    return schedule.parse_cron(expr)


def movable(expr: str) -> bool:
    spec = _spec(expr)
    return not spec.wildcard and len(spec.minutes) == 1 and len(spec.hours) == 1


def at(expr: str, minute_of_day: int) -> str:
    hour, minute = divmod(minute_of_day, 60)
    return " ".join([str(minute), str(hour), *expr.split()[2:]])


def time_of(expr: str) -> int:
    spec = _spec(expr)
    return spec.hours[0] * 60 + spec.minutes[0]


def shift(expr: str, minute_of_day: int) -> int:
    """Minutes between a schedule's time and another time of its day; a schedule
    that runs every day may move across midnight."""
    distance = abs(minute_of_day - time_of(expr))
    return min(distance, DAY - distance) if _spec(expr).every_day() else distance


def candidates(item: Item, window: Window) -> list[int]:
    """Times of day the item may start at: its own, and the grid inside the window."""
    own = time_of(item.expr)
    return sorted({own} | {m for m in range(0, DAY, STEP) if window.fits(m, item.minutes)})


class Occupancy:
    """Disks running per node and minute of the week (`busy`), from the runs of
    each disk per node and minute (`runs`): a disk counts where it has any."""

    def __init__(self, start: datetime, slots: Mapping[str, int]) -> None:
        self.start = start.replace(second=0, microsecond=0)
        self.slots = slots
        self.busy: dict[str, list[int]] = {}
        self.runs: dict[tuple[str, Hashable], list[int]] = {}

    def starts(self, expr: str, tz: str) -> tuple[int, ...]:
        return _starts(expr, tz, self.start)

    def add(self, item: Item, expr: str, sign: int = 1) -> None:
        for node in item.nodes:
            busy = self.busy.setdefault(node, [0] * WEEK)
            runs = self.runs.setdefault((node, item.disk_key), [0] * WEEK)
            for first in self.starts(expr, item.tz):
                for m in range(first, first + min(item.minutes, WEEK)):
                    m %= WEEK
                    was = runs[m]
                    runs[m] = was + sign
                    if not was or not runs[m]:  # the disk starts or stops occupying m
                        busy[m] += sign

    def peak(self, node: str) -> int:
        return max(self.busy.get(node, [0]))

    def full(self, node: str, disk: Hashable) -> list[int]:
        """Prefix sums of the minutes where the node has no free slot for a run
        of `disk` (where that disk already runs, another of its runs adds nothing)."""
        busy = self.busy.get(node, [0] * WEEK)
        runs = self.runs.get((node, disk), [0] * WEEK)
        slots = self.slots.get(node, 1)
        return [0, *accumulate(b >= slots and not r for b, r in zip(busy, runs, strict=True))]

    def over_prefix(self, node: str) -> list[int]:
        """Prefix sums of the minutes where the node runs more than its slots."""
        busy = self.busy.get(node, [0] * WEEK)
        return [0, *accumulate(map(gt, busy, [self.slots.get(node, 1)] * WEEK))]


def _cost(prefix: list[int], first: int, length: int) -> int:
    """Minutes counted by `prefix` in [first, first + length) of the circular week."""
    end = first + length
    if end <= WEEK:
        return prefix[end] - prefix[first]
    return prefix[WEEK] - prefix[first] + prefix[end - WEEK]


@lru_cache(maxsize=65536)
def _starts(expr: str, tz: str, start: datetime) -> tuple[int, ...]:
    runs = schedule.runs_between(expr, tz, start, start + timedelta(minutes=WEEK))
    return tuple(int((r - start).total_seconds() // 60) for r in runs)


def balance(items: list[Item], slots: Mapping[str, int], start: datetime,
            window: Window | None = None) -> Plan:
    """New schedules for the items that should move (by key), and each node's
    peak of concurrent backups before and after."""
    window = window or Window()
    load = Occupancy(start, slots)
    current = {item.key: item.expr for item in items}
    for item in items:
        load.add(item, item.expr)
    before = {node: load.peak(node) for node in sorted(load.busy)}
    movers = [i for i in items if not i.fixed and movable(i.expr)]
    disks = Counter(i.disk_key for i in items)
    shared = frozenset(disk for disk, n in disks.items() if n > 1)
    for group in _sharing_nodes(movers):  # moves in one never change another's
        while (best := _best_move(load, group, current, window, shared)) is not None:
            item, minute = best
            load.add(item, current[item.key], -1)
            current[item.key] = at(item.expr, minute)
            load.add(item, current[item.key])
    moves = {i.key: current[i.key] for i in movers if time_of(current[i.key]) != time_of(i.expr)}
    return Plan(moves, {node: (before[node], load.peak(node)) for node in before})


def _sharing_nodes(items: list[Item]) -> list[list[Item]]:
    """The items in groups that share no node with each other, in a stable order."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for item in items:
        first, *rest = sorted(item.nodes)
        for node in rest:
            parent[root(node)] = root(first)
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(root(min(item.nodes)), []).append(item)
    return [groups[key] for key in sorted(groups)]


def _best_move(load: Occupancy, movers: list[Item], current: dict, window: Window,
               shared: frozenset) -> tuple[Item, int] | None:
    """The move that lowers the excess most; `shared`: the disks of several items
    (such items never stand for each other)."""
    best, best_rank = None, None
    over = {node: load.over_prefix(node) for node in {n for i in movers for n in i.nodes}}
    alike: dict[tuple, Item] = {}  # items that would move the same: the first key speaks
    for item in sorted(movers, key=lambda i: str(i.key)):
        alike.setdefault((item.nodes, item.tz, item.expr, item.minutes, current[item.key],
                          item.disk_key if item.disk_key in shared else None), item)
    for item in alike.values():
        expr = current[item.key]
        length = min(item.minutes, WEEK)
        if not any(_cost(over[node], first, length) for node in item.nodes
                   for first in load.starts(expr, item.tz)):
            continue  # it is nowhere over the slots: moving it cannot lower the excess
        load.add(item, expr, -1)
        prefixes = [load.full(node, item.disk_key) for node in sorted(item.nodes)]
        load.add(item, expr)

        def cost(e: str, item=item, prefixes=prefixes) -> int:
            return sum(_cost(p, first, min(item.minutes, WEEK))
                       for p in prefixes for first in load.starts(e, item.tz))

        here = cost(expr)
        for minute in candidates(item, window):
            delta = cost(at(expr, minute)) - here
            if delta < 0:
                rank = (delta, shift(item.expr, minute), minute, str(item.key))
                if best_rank is None or rank < best_rank:
                    best, best_rank = (item, minute), rank
    return best
