"""Tests of esbackup.domain.prune: PBS's retention rule on hand-made sets, validation,
the README's worked example, and a property test against an independent reference
(PBS's strftime period formats, one rule at a time over the undecided backups).
"""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from esbackup.domain.prune import MAX_KEEP, RULES, Mark, Policy, marks
from esbackup.errors import InvalidInput

UTC = timezone.utc
PRAGUE = "Europe/Prague"
NEW_YORK = "America/New_York"
REMOVED = Mark(False, None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rules(times, policy, zone="UTC", protected=None):
    """The rule of each mark, False for a removed backup (shorter to compare)."""
    return [m.rule if m.keep else False for m in marks(times, policy, zone, protected)]


# --- hand-made sets -----------------------------------------------------------------

def test_several_backups_in_one_day_keep_the_newest():
    times = [utc(2026, 5, 3, h) for h in (1, 9, 17, 23)] + [utc(2026, 5, 2, 12)]
    assert rules(times, Policy.of(daily=1)) == [False, False, False, "daily", False]
    assert rules(times, Policy.of(daily=2)) == [False, False, False, "daily", "daily"]


def test_periods_without_backups_do_not_count():
    # Days 1, 5 and 9 only: keep-daily 2 keeps the two newest days that hold one.
    times = [utc(2026, 6, d, 3) for d in (1, 5, 9)]
    assert rules(times, Policy.of(daily=2)) == [False, "daily", "daily"]
    # Months with a gap: March and January, February has none.
    times = [utc(2026, 1, 20), utc(2026, 3, 2), utc(2026, 3, 1)]
    assert rules(times, Policy.of(monthly=2)) == ["monthly", "monthly", False]


def test_input_order_is_free_and_the_output_follows_it():
    times = [utc(2026, 6, d, 3) for d in (9, 1, 5)]
    assert rules(times, Policy.of(last=2)) == ["last", False, "last"]


def test_last_and_daily_overlap_daily_reaches_further_back():
    # Nightly backups on days 1..10; keep-last 2 keeps days 10 and 9, so keep-daily 3
    # skips those days and keeps 8, 7, 6.
    times = [utc(2026, 4, d, 1) for d in range(1, 11)]
    got = rules(times, Policy.of(last=2, daily=3))
    assert got == [False] * 5 + ["daily"] * 3 + ["last"] * 2
    # Two backups a day: keep-last 1 takes day 10's newest, daily skips day 10 entirely
    # (its older backup is not kept), then keeps the newest of days 9 and 8.
    times = [utc(2026, 4, d, h) for d in range(1, 11) for h in (1, 13)]
    got = rules(times, Policy.of(last=1, daily=2))
    assert got == [False] * 14 + [False, "daily", False, "daily", False, "last"]


def test_iso_weeks_across_new_year():
    assert date(2026, 12, 31).isocalendar()[:2] == (2026, 53)
    assert date(2027, 1, 1).isocalendar()[:2] == (2026, 53)
    assert date(2027, 1, 3).isocalendar()[:2] == (2026, 53)
    assert date(2027, 1, 4).isocalendar()[:2] == (2027, 1)
    assert date(2026, 12, 27).isocalendar()[:2] == (2026, 52)
    times = [utc(2026, 12, 27, 5), utc(2026, 12, 31, 5), utc(2027, 1, 1, 5), utc(2027, 1, 4, 5)]
    # 2027-01-04 (2027-W01) and 2027-01-01 (2026-W53, with 2026-12-31) and 2026-12-27.
    assert rules(times, Policy.of(weekly=2)) == [False, False, "weekly", "weekly"]
    assert rules(times, Policy.of(weekly=3)) == ["weekly", False, "weekly", "weekly"]
    # The calendar year, not the ISO one: 2027-01-01 is in year 2027.
    assert rules(times, Policy.of(yearly=2)) == [False, "yearly", False, "yearly"]


def test_periods_are_those_of_the_zone():
    # 2026-03-10 03:00 UTC is 2026-03-09 23:00 in New York (EDT since 2026-03-08).
    times = [utc(2026, 3, 9, 20), utc(2026, 3, 10, 3)]
    assert rules(times, Policy.of(daily=1), "UTC") == [False, "daily"]
    assert rules(times, Policy.of(daily=2), "UTC") == ["daily", "daily"]
    assert rules(times, Policy.of(daily=2), NEW_YORK) == [False, "daily"]
    # New Year in Prague comes an hour before UTC's.
    times = [utc(2026, 12, 31, 22), utc(2026, 12, 31, 23, 30)]
    assert rules(times, Policy.of(yearly=2), "UTC") == [False, "yearly"]
    assert rules(times, Policy.of(yearly=2), PRAGUE) == ["yearly", "yearly"]


def test_dst_fall_back_in_prague():
    prague = ZoneInfo(PRAGUE)
    # 2026-10-25: 03:00 CEST -> 02:00 CET; local 02:30 happens twice.
    first = datetime(2026, 10, 25, 2, 30, tzinfo=prague)  # fold 0: CEST, 00:30 UTC
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=prague)  # CET, 01:30 UTC
    assert first.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert second.astimezone(UTC) == utc(2026, 10, 25, 1, 30)
    # Given in the local zone, the later one (fold 1) is newer, though a comparison
    # sharing the tzinfo would call them equal.
    assert rules([second, first], Policy.of(last=1), PRAGUE) == ["last", False]
    assert rules([first, second], Policy.of(last=1), PRAGUE) == [False, "last"]
    # One local day.
    assert rules([first, second], Policy.of(daily=2), PRAGUE) == [False, "daily"]
    # In UTC they are one day too, but two hours.
    assert rules([first, second], Policy.of(hourly=2), "UTC") == ["hourly", "hourly"]
    # The repeated local hour 02 is one hourly period (PBS formats local time).
    times = [
        utc(2026, 10, 24, 23, 50),  # 01:50 CEST
        utc(2026, 10, 25, 0, 10),  # 02:10 CEST
        utc(2026, 10, 25, 1, 40),  # 02:40 CET
        utc(2026, 10, 25, 2, 10),  # 03:10 CET
    ]
    assert rules(times, Policy.of(hourly=2), PRAGUE) == [False, False, "hourly", "hourly"]
    assert rules(times, Policy.of(hourly=3), PRAGUE) == ["hourly", False, "hourly", "hourly"]
    assert rules(times, Policy.of(hourly=3), "UTC") == [False, "hourly", "hourly", "hourly"]


def test_protected_are_kept_and_never_count():
    times = [utc(2026, 4, d, 1) for d in range(1, 6)]
    protected = [False, False, True, False, True]
    assert rules(times, Policy.of(last=2), protected=protected) == [
        False, "last", "protected", "last", "protected"]
    # A protected backup does not take its day: day 5's unprotected one is kept.
    times = [utc(2026, 4, 4, 1), utc(2026, 4, 5, 1), utc(2026, 4, 5, 2)]
    assert rules(times, Policy.of(daily=1), protected=[False, False, True]) == [
        False, "daily", "protected"]
    assert rules(times, Policy.of(daily=2), protected=[False, True, False]) == [
        "daily", "protected", "daily"]
    assert marks(times, Policy.of(daily=1), "UTC", [True] * 3) == [Mark(True, "protected")] * 3


def test_a_backup_passed_over_in_a_kept_period_is_decided():
    # As PBS's mark_selections: keep-weekly marks 2026-02-28 removed (same ISO week,
    # 2026-W09, as 2026-03-01), so keep-monthly skips it and keeps February's next
    # undecided backup, 2026-02-20, as February's newest.
    times = [utc(2026, 3, 1, 1), utc(2026, 2, 28, 1), utc(2026, 2, 20, 1)]
    assert date(2026, 2, 28).isocalendar()[:2] == date(2026, 3, 1).isocalendar()[:2]
    assert rules(times, Policy.of(weekly=1, monthly=2)) == ["weekly", False, "monthly"]


def test_ties_count_the_later_input_as_newer():
    t = utc(2026, 4, 4, 1)
    assert rules([t, t, t], Policy.of(last=1)) == [False, False, "last"]
    assert rules([t, t], Policy.of(last=2)) == ["last", "last"]
    assert rules([t, t], Policy.of(daily=3)) == [False, "daily"]
    # The same instant in two zones is a tie too.
    assert rules([t, t.astimezone(ZoneInfo(PRAGUE))], Policy.of(last=1)) == [False, "last"]


def test_keeps_all():
    assert Policy().keeps_all and Policy.of(last=None, daily=0).keeps_all
    assert not Policy.of(yearly=1).keeps_all
    times = [utc(2026, 4, d) for d in range(1, 4)]
    assert marks(times, Policy(), "UTC", [True, False, False]) == [Mark(True, "all")] * 3
    assert marks([], Policy(), "UTC") == []
    assert marks([], Policy.of(last=1), "UTC") == []


def test_zero_counts_turn_rules_off():
    times = [utc(2026, 4, d) for d in range(1, 4)]
    assert rules(times, Policy.of(last=0, daily=1, weekly=0)) == [False, False, "daily"]


def test_worked_example_of_the_readme():
    # --keep-last 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 12, nightly 01:00 UTC.
    times = [utc(2026, 1, 1, 1) + timedelta(days=n) for n in range(365)]
    assert times[-1] == utc(2026, 12, 31, 1)
    policy = Policy.of(last=3, daily=7, weekly=4, monthly=12)
    result = marks(times, policy, "UTC")
    kept = {t.date().isoformat(): m.rule for t, m in zip(times, result, strict=True) if m.keep}
    assert len(kept) == 24
    assert kept == {
        **{f"2026-{m:02d}-{d}": "monthly" for m, d in [
            (1, 31), (2, 28), (3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31),
            (9, 30), (10, 31)]},
        **{d: "weekly" for d in ("2026-11-29", "2026-12-06", "2026-12-13", "2026-12-20")},
        **{f"2026-12-{d}": "daily" for d in range(22, 29)},
        **{f"2026-12-{d}": "last" for d in (29, 30, 31)},
    }


# --- validation ---------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1, MAX_KEEP + 1, True, False, 1.0, "3"])
def test_bad_counts(value):
    with pytest.raises(InvalidInput, match=r"^--keep-daily must be 0\.\.100000$"):
        Policy.of(daily=value)
    with pytest.raises(InvalidInput, match="--keep-yearly"):
        Policy(yearly=value)


def test_good_counts_and_describe():
    assert Policy.of(last=None, daily=MAX_KEEP) == Policy(daily=MAX_KEEP)
    assert Policy.of(last=3, daily=7).describe() == "keep-last 3, keep-daily 7"
    assert Policy.of(yearly=1, last=2).describe() == "keep-last 2, keep-yearly 1"
    assert Policy().describe() == "keep all"
    assert RULES == ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    with pytest.raises(TypeError, match="keep_daily"):
        Policy.of(keep_daily=1)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc", "/etc/localtime", "Europe"])
def test_unknown_zone(zone):
    with pytest.raises(InvalidInput, match=f"^unknown time zone: {zone}$"):
        marks([utc(2026, 1, 1)], Policy.of(last=1), zone)
    with pytest.raises(InvalidInput):
        marks([], Policy(), zone)


def test_naive_times_and_flag_count():
    with pytest.raises(ValueError, match="naive"):
        marks([utc(2026, 1, 1), datetime(2026, 1, 2)], Policy.of(last=1), "UTC")
    with pytest.raises(ValueError, match="protected"):
        marks([utc(2026, 1, 1)], Policy.of(last=1), "UTC", [True, False])


# --- property test against a reference ----------------------------------------------

FORMATS = {"hourly": "%Y/%m/%d/%H", "daily": "%Y/%m/%d", "weekly": "%G/%V",
           "monthly": "%Y/%m", "yearly": "%Y"}


def reference(times, counts, zone, protected):
    """PBS's rule restated: per rule, the distinct periods (strftime in the zone) of the
    undecided unprotected backups, newest first, minus those an earlier rule kept; the
    first N of them are chosen; in each chosen period the newest is kept, the rest are
    decided as removed."""
    if not any(counts.values()):
        return [("all", True)] * len(times)
    tz = ZoneInfo(zone)
    newest_first = sorted(range(len(times)), key=lambda i: (times[i].timestamp(), i))[::-1]
    result = {i: ("protected", True) for i in range(len(times)) if protected[i]}
    kept_by_rule = []
    for rule in RULES:
        if not counts[rule]:
            continue

        def period(i, rule=rule):
            return i if rule == "last" else times[i].astimezone(tz).strftime(FORMATS[rule])

        taken = {period(i) for i in kept_by_rule}
        open_ = [i for i in newest_first if i not in result and period(i) not in taken]
        chosen = list(dict.fromkeys(period(i) for i in open_))[:counts[rule]]
        for p in chosen:
            members = [i for i in open_ if period(i) == p]
            result[members[0]] = (rule, True)
            kept_by_rule.append(members[0])
            for i in members[1:]:
                result[i] = (None, False)
    return [result.get(i, (None, False)) for i in range(len(times))]


START = int(utc(2025, 1, 1).timestamp())
SPAN = 3 * 365 * 86400
zones = st.sampled_from(["UTC", PRAGUE, NEW_YORK])


@st.composite
def backup_sets(draw):
    """0-60 (time, protected) pairs within 3 years, the times given in one of the
    zones; spread over the 3 years or bunched, per set, so that hours, days and weeks
    hold several (a week across a month's end then often holds the newest of one
    month and a backup of the other)."""
    width = draw(st.sampled_from([SPAN, 120 * 86400, 21 * 86400, 6 * 3600]))
    start = START + draw(st.integers(0, SPAN - width))
    offsets = draw(st.lists(st.integers(0, width), max_size=60))
    return [(datetime.fromtimestamp(start + o, ZoneInfo(draw(zones))), draw(st.booleans()))
            for o in offsets]


@settings(max_examples=400, deadline=None)
@given(backup_sets(), st.fixed_dictionaries({rule: st.integers(0, 5) for rule in RULES}), zones)
@example([(utc(2026, 3, 1, 1), False), (utc(2026, 2, 28, 1), False), (utc(2026, 2, 20, 1), False)],
         {**dict.fromkeys(RULES, 0), "weekly": 1, "monthly": 2}, "UTC")
def test_marks_match_the_reference(backups, counts, zone):
    times = [t for t, _ in backups]
    protected = [p for _, p in backups]
    got = [(m.rule, m.keep) for m in marks(times, Policy.of(**counts), zone, protected)]
    assert got == reference(times, counts, zone, protected)
