"""Planning time of `schedule balance`, as definitions and nodes grow.

    python bench/balance.py [--rounds N]

Pure planning (no catalog, no SSH): every case starts with all definitions at
`0 1 * * *`, 30 minutes each, two slots per node. The baseline is 20
definitions on one compute/backup pair; the others scale the pairs (same load
per node) and the density (more definitions on one pair). Ratios are against
the baseline in the same run; best of N rounds. Each case also reports the
moves and the peak after, and checks that balancing the result plans nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esbackup.domain import balance  # noqa: E402

START = datetime(2026, 11, 26, tzinfo=timezone.utc)


def items(pairs: int, per_pair: int) -> tuple[list[balance.Item], dict[str, int]]:
    made, slots = [], {}
    for p in range(pairs):
        nodes = frozenset({f"c{p}", f"b{p}"})
        slots.update({n: 2 for n in nodes})
        made += [balance.Item(f"vm{p}-{i}/nightly", "0 1 * * *", "UTC", nodes, 30)
                 for i in range(per_pair)]
    return made, slots


def case(pairs: int, per_pair: int, rounds: int) -> tuple[float, int, int, bool]:
    best, plan = float("inf"), None
    work, slots = items(pairs, per_pair)
    for _ in range(rounds):
        balance._starts.cache_clear()
        started = time.perf_counter()
        plan = balance.balance(work, slots, START)
        best = min(best, time.perf_counter() - started)
    after = [balance.Item(i.key, plan.moves.get(i.key, i.expr), i.tz, i.nodes, i.minutes)
             for i in work]
    stable = balance.balance(after, slots, START).moves == {}
    return best, len(plan.moves), max(a for _, a in plan.peaks.values()), stable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cases = [("baseline: 1 pair x 20", 1, 20), ("10 pairs x 20", 10, 20),
             ("1 pair x 40", 1, 40), ("1 pair x 80", 1, 80)]
    base = None
    print(f"{'case':<24}{'seconds':>9}{'ratio':>8}{'moves':>7}{'peak':>6}  idempotent")
    for label, pairs, per_pair in cases:
        seconds, moves, peak, stable = case(pairs, per_pair, args.rounds)
        base = base or seconds
        print(f"{label:<24}{seconds:>9.3f}{seconds / base:>8.1f}{moves:>7}{peak:>6}  {stable}")


if __name__ == "__main__":
    main()
