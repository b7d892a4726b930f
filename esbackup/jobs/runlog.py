"""Closing a run: its history row and one line to syslog/journald."""
from __future__ import annotations

import syslog
from datetime import datetime

from esbackup.catalog import Catalog, utcnow
from esbackup.models import Backup, Run


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
