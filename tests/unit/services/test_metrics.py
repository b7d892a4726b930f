"""Metrics for node_exporter's textfile collector (services/metrics.py)."""
import shutil
import subprocess
from datetime import datetime, timezone

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Run
from esbackup.services import metrics
from tests.unit.services.catalog_rows import add_backup, define


def test_metrics_textfile_is_written_whole_and_promtool_accepts_it(inventory, tmp_path):
    define(inventory)
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "daily")
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="cron", outcome="ok", size=4096,
                    duration=12.5, started="2026-11-26T01:00:00+00:00",
                    finished="2026-11-26T01:00:13+00:00"))
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="cron", outcome="failed",
                    started="2026-11-27T01:00:00+00:00", finished="2026-11-27T01:00:01+00:00",
                    error='disk "1" gone'))
    b = add_backup(cat, "daily-20261126_010000")
    cat.update_backup(b, verify_result="failed")
    add_backup(cat, "daily-20261125_010000", status="lost")
    path = tmp_path / "esbackup.prom"
    path.write_text("old\n")
    inventory.ok("metrics", "--textfile", str(path))
    text = path.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    lines = text.splitlines()
    labels = '{definition="web01/daily",node="b1"}'
    assert f"esbackup_last_success_timestamp_seconds{labels} " \
           f"{int(datetime(2026, 11, 26, 1, 0, 13, tzinfo=timezone.utc).timestamp())}" in lines
    assert f"esbackup_last_duration_seconds{labels} 12.5" in lines
    assert f"esbackup_last_size_bytes{labels} 4096" in lines
    assert 'esbackup_last_run_outcome{definition="web01/daily",node="b1",outcome="failed"} 1' \
        in lines
    assert 'esbackup_last_run_outcome{definition="web01/daily",node="b1",outcome="ok"} 0' \
        in lines
    assert 'esbackup_backups{node="b1",status="lost"} 1' in lines
    assert 'esbackup_backups{node="b1",status="ok"} 1' in lines
    assert 'esbackup_verify_failed_backups{node="b1"} 1' in lines
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install-deps.sh installs Debian's prometheus"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = subprocess.run([promtool, "check", "metrics"], input=text.replace('"} ', '" ', 1),
                         capture_output=True, text=True)
    assert bad.returncode != 0  # promtool does judge what it is given


def test_metrics_labels_are_escaped():
    family = metrics.Family("x", "help")
    family.add(1, definition='a"b\\c\nd')
    assert family.samples == ['esbackup_x{definition="a\\"b\\\\c\\nd"} 1']


def test_metrics_refuses_a_missing_directory(inventory, tmp_path):
    assert "no such directory" in inventory.fails(
        4, "metrics", "--textfile", str(tmp_path / "nowhere" / "x.prom"))
