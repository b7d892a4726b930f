"""The syslog line of a run (engine/runlog.py), on a real catalog."""
import syslog

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Run
from esbackup.engine import runlog


def test_one_syslog_line_per_run(monkeypatch, tmp_path):
    lines = []
    monkeypatch.setattr(syslog, "openlog", lambda *a: None)
    monkeypatch.setattr(syslog, "syslog", lambda priority, text: lines.append((priority, text)))
    cat = Catalog.open(tmp_path / "c.db", create=True)
    run = cat.add_run(Run(definition="web01/daily", trigger="cron",
                          started="2026-11-26T01:00:00+00:00"))
    backup = Backup(name="daily-20261126_010000", vm="web01", vm_uuid="u", disk_id=1,
                    type="dataset", created="2026-11-26T01:00:00+00:00", status="ok",
                    node="b1", storage="tank", size=2048, duration=12.5)
    runlog.finish(cat, run, "ok", backup=backup)
    failed = cat.add_run(Run(definition="web01/daily", trigger="tick",
                             started="2026-11-27T01:00:00+00:00"))
    runlog.finish(cat, failed, "failed", error="b1: zfs failed: out of space")
    assert lines == [
        (syslog.LOG_INFO, "run web01/daily trigger=cron outcome=ok "
                          "backup=daily-20261126_010000 size=2048 duration=12.5s"),
        (syslog.LOG_ERR, "run web01/daily trigger=tick outcome=failed "
                         f"duration={failed.duration:.1f}s error=b1: zfs failed: out of space"),
    ]
    newest, oldest = cat.runs()
    assert (newest.outcome, oldest.outcome) == ("failed", "ok") and newest.finished
