"""Closing a run: its history row and one line to syslog/journald; pruning the history."""
from __future__ import annotations

import syslog
from datetime import datetime, timedelta, timezone

from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import utcnow
from esbackup.domain.models import Backup, Run
from esbackup.errors import InvalidInput

KEEP_DAYS = 90  # `history --prune` keeps every run of this many days by default


def finish(cat: Catalog, run: Run, outcome: str, *, error: str | None = None,
           backup: Backup | None = None) -> None:
    run.outcome, run.error, run.finished = outcome, error, utcnow()
    run.duration = round((datetime.fromisoformat(run.finished)
                          - datetime.fromisoformat(run.started)).total_seconds(), 3)
    if backup is not None:
        run.backup, run.size, run.duration = backup.name, backup.size, backup.duration
    cat.finish_run(run)
    log(run)


def log(run: Run) -> None:
    words = [f"run {run.definition}", f"trigger={run.trigger}", f"outcome={run.outcome}"]
    if run.backup:
        words.append(f"backup={run.backup}")
    if run.size is not None:
        words.append(f"size={run.size}")
    if run.duration is not None:
        words.append(f"duration={run.duration:.1f}s")
    if run.error:
        words.append(f"error={run.error}")
    priority = syslog.LOG_INFO if run.outcome == "ok" else (
        syslog.LOG_WARNING if run.outcome == "skipped" else syslog.LOG_ERR)
    syslog.openlog("esbackup", syslog.LOG_PID, syslog.LOG_USER)
    syslog.syslog(priority, " ".join(words))


def prune(cat: Catalog, keep_days: int = KEEP_DAYS, now: datetime | None = None) -> int:
    """Forget finished runs older than `keep_days`; each definition's newest ok and
    newest failed run always stay (check and history still say when it last
    worked and why it last failed). Returns how many runs went."""
    if keep_days < 1:
        raise InvalidInput(f"invalid --keep-days {keep_days}: must be >= 1")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
    return cat.prune_runs(cutoff.replace(microsecond=0).isoformat())
