"""The verdict of `check` for Nagios/Icinga: status, summary line, perfdata.

Findings are (level, kind, text). The status is the worst level found;
UNKNOWN (3) is for a check that could not judge at all (no catalog, or one
that cannot be read). Perfdata counts are Nagios `label=value` pairs after a
`|`, so graphs can follow them.
"""
from __future__ import annotations

from dataclasses import dataclass

from esbackup.catalog.core import Catalog

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# kinds of findings that perfdata counts
LOST, FAILED, STALE, LEFTOVER, VERIFY_FAILED = "lost", "failed", "stale", "leftover", "verify"


@dataclass(frozen=True)
class Finding:
    level: int
    kind: str
    text: str


def verify_findings(cat: Catalog) -> list[Finding]:
    return [Finding(CRITICAL, VERIFY_FAILED, f"backup {b.ref} failed verify at {b.verified}: "
                                             f"{b.verify_error}")
            for b in cat.verify_failures()]


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
