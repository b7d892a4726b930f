"""Spread backup start times so that fewer backups start together on a node.

Backups that start within `WINDOW` of each other on the same node (compute or
backup side) count as a conflict. Schedules with one fixed hour and one fixed
minute (the usual nightly or weekly line) may move by up to `MAX_SHIFT_HOURS`
hours within their day, to a minute on a `STEP`-minute grid; day, month and
weekday fields never change, nor do other schedules, which only count as load.
Greedy: the most conflicted schedule moves first, to the least conflicted
time, preferring the time nearest its own.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from esbackup import schedule

WINDOW = timedelta(minutes=30)
STEP = 10
MAX_SHIFT_HOURS = 2
HORIZON = timedelta(days=7)


@dataclass(frozen=True)
class Item:
    key: Hashable
    expr: str
    tz: str
    nodes: frozenset[str]
    fixed: bool = False  # counts as load, never moves


def movable(expr: str) -> bool:
    spec = schedule.parse_cron(expr)
    return not spec.wildcard and len(spec.minutes) == 1 and len(spec.hours) == 1


def at(expr: str, hour: int, minute: int) -> str:
    fields = expr.split()
    return " ".join([str(minute), str(hour), *fields[2:]])


def candidates(expr: str) -> list[str]:
    spec = schedule.parse_cron(expr)
    hour, minute = spec.hours[0], spec.minutes[0]
    times = {(h, m) for h in range(max(0, hour - MAX_SHIFT_HOURS),
                                   min(23, hour + MAX_SHIFT_HOURS) + 1)
             for m in range(0, 60, STEP)} | {(hour, minute)}
    distance = {t: abs((t[0] - hour) * 60 + t[1] - minute) for t in times}
    return [at(expr, h, m) for h, m in sorted(times, key=lambda t: (distance[t], t))]


class Load:
    """Start times per node, sorted, for counting neighbours within WINDOW."""

    def __init__(self) -> None:
        self.starts: dict[str, list[datetime]] = {}

    def add(self, nodes: frozenset[str], runs: list[datetime]) -> None:
        for node in nodes:
            for run in runs:
                insort(self.starts.setdefault(node, []), run)

    def conflicts(self, nodes: frozenset[str], runs: list[datetime]) -> int:
        total = 0
        for node in nodes:
            starts = self.starts.get(node, [])
            for run in runs:
                total += bisect_right(starts, run + WINDOW) - bisect_left(starts, run - WINDOW)
        return total


def balance(items: list[Item], start: datetime) -> dict[Hashable, str]:
    """New schedules for the items that should move, by key."""
    end = start + HORIZON

    def runs(expr: str, tz: str) -> list[datetime]:
        return schedule.runs_between(expr, tz, start, end)

    load = Load()
    movers = []
    for item in items:
        if movable(item.expr) and not item.fixed:
            movers.append(item)
        else:
            load.add(item.nodes, runs(item.expr, item.tz))
    everyone = Load()
    for item in movers:
        everyone.add(item.nodes, runs(item.expr, item.tz))
    movers.sort(key=lambda i: -everyone.conflicts(i.nodes, runs(i.expr, i.tz)))
    moves = {}
    for item in movers:
        best = min(candidates(item.expr),
                   key=lambda e: load.conflicts(item.nodes, runs(e, item.tz)))
        load.add(item.nodes, runs(best, item.tz))
        if best != at(item.expr, *_time(item.expr)):
            moves[item.key] = best
    return moves


def _time(expr: str) -> tuple[int, int]:
    spec = schedule.parse_cron(expr)
    return spec.hours[0], spec.minutes[0]
