"""Metrics for node_exporter's textfile collector (services/metrics.py)."""
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from esbackup.catalog.core import Catalog
from esbackup.domain.models import STATUSES, Run
from esbackup.services import metrics
from esbackup.services.metrics import OUTCOMES
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


SAMPLE = re.compile(r'(esbackup_\w+)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, frozenset], str]:
    """The exposition text's samples: (series name, label set) -> value."""
    found = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, labels, value = SAMPLE.fullmatch(line).groups()
            found[name, frozenset(LABEL.findall(labels or ""))] = value
    return found


def test_metrics_on_stdout_carry_every_documented_series_for_every_definition(inventory):
    inventory.ok("node", "create", "b2", "--address", "127.0.0.4", "--backup", "--no-compute",
                 "--no-connect")
    for name in ("daily", "weekly", "monthly"):  # ok, failed only, never run
        inventory.ok("definition", "create", f"web01/{name}", "--disk-id", "1", "--type",
                     "file", "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                     "--retention", "3", "--timezone", "UTC")
    cat = Catalog.open(inventory.catalog)
    for name, outcome in (("daily", "ok"), ("weekly", "failed")):
        d = cat.definition("web01", name)
        cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="cron", outcome=outcome,
                        size=4096, duration=12.5, started="2026-11-26T01:00:00+00:00",
                        finished="2026-11-26T01:00:13+00:00"))
    cat.close()
    inventory.ok("storage", "create", "b2", "vault", "--zpool", "vault")
    inventory.ok("copy", "create", "web01/monthly", "--node", "b2", "--storage", "vault",
                 "--schedule", "0 3 * * *")  # never ran
    text = inventory.ok("metrics", "--textfile", "-").stdout
    found = samples(text)
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    documented = set(re.findall(r"`(esbackup_\w+)", readme))
    assert documented >= {"esbackup_last_success_timestamp_seconds", "esbackup_backups",
                          "esbackup_definitions"}
    assert documented <= {name for name, _ in found}
    for name in ("daily", "weekly", "monthly"):
        labels = {("definition", f"web01/{name}"), ("node", "b1")}
        for series in ("last_success_timestamp_seconds", "last_duration_seconds",
                       "last_size_bytes"):
            assert (f"esbackup_{series}", frozenset(labels)) in found, (series, name)
        for outcome in OUTCOMES:
            assert ("esbackup_last_run_outcome",
                    frozenset(labels | {("outcome", outcome)})) in found, (outcome, name)

    def value(series: str, **labels: str) -> str:
        return found[f"esbackup_{series}", frozenset(labels.items())]

    never = {"definition": "web01/monthly", "node": "b1"}
    failed = {"definition": "web01/weekly", "node": "b1"}
    assert [value("last_success_timestamp_seconds", **labels) for labels in (never, failed)] \
        == ["NaN", "NaN"]
    assert value("last_size_bytes", **never) == "NaN"
    assert [value("last_run_outcome", **never, outcome=o) for o in OUTCOMES] == ["0", "0", "0"]
    assert value("last_run_outcome", **failed, outcome="failed") == "1"
    assert value("last_size_bytes", definition="web01/daily", node="b1") == "4096"
    for node in ("b1", "b2"):  # b2 has no backups yet: zeros, not silence
        assert [value("backups", node=node, status=s) for s in STATUSES] == ["0"] * 4
        assert value("verify_failed_backups", node=node) == "0"
    assert (value("definitions"), value("active_definitions")) == ("3", "3")
    copy = {"copy": "web01/monthly/b2", "node": "b2"}
    assert (value("copy_last_success_timestamp_seconds", **copy),
            value("copy_lag_seconds", **copy)) == ("NaN", "0")
    assert not (Path.cwd() / "-").exists()
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"],
                             input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_of_a_catalog_without_definitions_say_so_for_alerts(inventory):
    lines = inventory.ok("metrics", "--textfile", "-").stdout.splitlines()
    assert "esbackup_definitions 0" in lines
    assert "esbackup_active_definitions 0" in lines
    assert 'esbackup_backups{node="b1",status="ok"} 0' in lines
