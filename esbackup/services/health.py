"""The verdict of `check` for Nagios/Icinga: status, summary line, perfdata.

Findings are (level, kind, text). The status is the worst level found;
UNKNOWN (3) is for a check that could not judge at all (no catalog, or one
that cannot be read). Perfdata counts are Nagios `label=value` pairs after a
`|`, so graphs can follow them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from esbackup.catalog.core import Catalog
from esbackup.domain import schedule
from esbackup.engine import locks
from esbackup.errors import OperationFailed

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# kinds of findings that perfdata counts
LOST, FAILED, STALE, LEFTOVER, VERIFY_FAILED = "lost", "failed", "stale", "leftover", "verify"
NEVER, EMPTY, COPY_BEHIND = "never", "empty", "copy"
LOOKBACK = timedelta(days=8)  # a weekly schedule still shows a missed run
GRACE = timedelta(hours=1)  # a new definition's first run may take this long past a period


@dataclass(frozen=True)
class Finding:
    level: int
    kind: str
    text: str


def problems(cat: Catalog, now: datetime, allow_empty: bool = False) -> list[Finding]:
    """What is wrong, from a few whole-catalog queries (not one per definition).

    Nothing to back up is a WARNING (unless `allow_empty`): a catalog that
    backs up nothing must not look healthy. An active definition with no ok
    backup since its schedule began (created, activated or rescheduled) plus one
    period of its schedule (and GRACE) is CRITICAL."""
    found = []
    odd = cat.backups(status=("lost", "pending", "restore"))
    busy = {h["resource"] for h in cat.locks("disk:") if not locks.is_stale(h)}
    lost = [b for b in odd if b.status == "lost"]
    copies = cat.copy_locations([b.id for b in lost if b.id is not None]) if lost else {}
    for b in lost:
        good = [loc.node for loc in copies.get(b.id or 0, []) if loc.status == "ok"]
        if good:  # issue 20: restorable from a copy
            found.append(Finding(WARNING, LOST, f"backup {b.ref} is lost on {b.node}; its copy "
                                                f"on {good[0]} is ok"))
        else:
            found.append(Finding(CRITICAL, LOST, f"backup {b.ref} is lost"))
    for status in ("pending", "restore"):
        for b in odd:
            if b.status == status and locks.disk_resource(b.vm_uuid, b.disk_id) not in busy:
                found.append(Finding(WARNING, LEFTOVER,
                                     f"backup {b.ref} is {status} but nothing runs: "
                                     "run `esbackup backup sync`"))
    states = cat.definition_states(active=True)
    if not states and not allow_empty:
        found.append(Finding(WARNING, EMPTY, "no active backup definitions: nothing is backed "
                                             "up (`check --allow-empty` accepts that)"))
    for d, last_run, last_ok in states:
        if last_run is not None and last_run.outcome == "failed":
            found.append(Finding(CRITICAL, FAILED,
                                 f"{d.ref}: last run failed: {last_run.error}"))
            continue
        if d.created is None:  # the catalog records it with every definition
            raise OperationFailed(f"definition {d.ref} has no creation time recorded")
        began = datetime.fromisoformat(d.scheduled_since or d.created)
        if last_ok is None and never_backed_up(d.schedule, d.timezone, began, now):
            what = "it was created" if began == datetime.fromisoformat(d.created) else \
                "its schedule began"
            found.append(Finding(CRITICAL, NEVER, f"{d.ref}: no ok backup since {what} "
                                                  f"({began:%Y-%m-%d %H:%M} UTC)"))
            continue
        since = max(began, now - LOOKBACK)
        missed = schedule.runs_between(d.schedule, d.timezone, since, now)
        if len(missed) >= 2 and (not last_ok or datetime.fromisoformat(last_ok) < missed[-2]):
            found.append(Finding(WARNING, STALE,
                                 f"{d.ref}: no backup since {missed[-2]:%Y-%m-%d %H:%M} UTC"))
    return found


def never_backed_up(expr: str, zone: str, created: datetime, now: datetime) -> bool:
    """A definition made at `created` should have had a backup by its second
    firing (the first one plus one period) and GRACE."""
    firings = schedule.next_runs(expr, zone, created, 2)
    return len(firings) == 2 and firings[1] + GRACE <= now


def judge(cat: Catalog, now: datetime, allow_empty: bool = False) -> tuple[int, list[str]]:
    """check's exit status and lines: the problems, the failed verifies, the counts."""
    return report(*assess(cat, now, allow_empty))


def assess(cat: Catalog, now: datetime,
           allow_empty: bool = False) -> tuple[int, int, list[Finding]]:
    """(definitions, ok backups, findings): what `check` judges, in either format."""
    found = problems(cat, now, allow_empty) + verify_findings(cat) + copy_findings(cat, now)
    counts = cat.summary_counts()
    return counts["definitions"], counts["ok_backups"], found


def as_json(definitions: int | None, ok_backups: int | None,
            findings: list[Finding]) -> dict:
    """`check -f json`: the same verdict for machines (None counts: UNKNOWN)."""
    worst = UNKNOWN if definitions is None else status(findings)
    return {"status": LABELS[worst], "exit_code": worst,
            "definitions": definitions, "ok_backups": ok_backups,
            "problems": [{"level": LABELS[f.level], "kind": f.kind, "text": f.text}
                         for f in findings]}


def verify_findings(cat: Catalog) -> list[Finding]:
    return [Finding(CRITICAL, VERIFY_FAILED, f"backup {b.ref} failed verify at {b.verified}: "
                                             f"{b.verify_error}")
            for b in cat.verify_failures()]


def copy_findings(cat: Catalog, now: datetime) -> list[Finding]:
    """A scheduled copy more than two periods behind (no successful run since
    the third-last firing of its schedule) is a WARNING; one whose last run
    failed too. One query."""
    found = []
    for c in cat.copy_definitions(active=True):
        if c.last_error:
            found.append(Finding(WARNING, COPY_BEHIND, f"copy {c.ref}: last run failed: "
                                                       f"{c.last_error}"))
            continue
        if not c.schedule or c.created is None:
            continue
        since = max(datetime.fromisoformat(c.created), now - LOOKBACK)
        fired = schedule.runs_between(c.schedule, c.timezone, since, now)
        if len(fired) >= 3 and (not c.last_ok or datetime.fromisoformat(c.last_ok) < fired[-3]):
            found.append(Finding(WARNING, COPY_BEHIND, f"copy {c.ref}: more than two periods "
                                 f"behind (no copy since {fired[-3]:%Y-%m-%d %H:%M} UTC)"))
    return found


def status(findings: list[Finding]) -> int:
    return max((f.level for f in findings), default=OK)


def perfdata(definitions: int, ok_backups: int, findings: list[Finding]) -> str:
    counts = {kind: sum(1 for f in findings if f.kind == kind)
              for kind in (LOST, FAILED, STALE, VERIFY_FAILED)}
    return (f"definitions={definitions} ok={ok_backups} lost={counts[LOST]} "
            f"failed={counts[FAILED]} stale={counts[STALE]} "
            f"verify_failed={counts[VERIFY_FAILED]}")


def report(definitions: int, ok_backups: int, findings: list[Finding]) -> tuple[int, list[str]]:
    """The exit status and the lines to print: summary with perfdata, then one per finding."""
    worst = status(findings)
    summary = (f"{len(findings)} problem(s)" if findings
               else f"{definitions} definitions, {ok_backups} ok backups")
    lines = [f"ESBACKUP {LABELS[worst]} - {summary} | "
             f"{perfdata(definitions, ok_backups, findings)}"]
    lines += [f"{LABELS[f.level]}: {f.text}" for f in findings]
    return worst, lines


def unknown(why: str) -> tuple[int, list[str]]:
    return UNKNOWN, [f"ESBACKUP UNKNOWN - {why}"]
