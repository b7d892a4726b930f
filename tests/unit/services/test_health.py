"""check's verdict and perfdata, metrics for node_exporter, verify's pipelines."""
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

from esbackup.actions import verify
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Node, Run
from esbackup.services import health, metrics

UUID = "3f2a5a4e-0000-4000-8000-000000000001"


def add_backup(cat, name: str, status: str = "ok", **fields) -> Backup:
    return cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="file",
                                 created="2026-11-26T01:00:00+00:00", status=status, node="b1",
                                 storage="tank", definition="daily", **fields))


def define(inventory) -> None:
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "file",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3", "--timezone", "UTC")


def test_check_perfdata_when_all_is_well(inventory):
    define(inventory)
    cat = Catalog.open(inventory.catalog)
    add_backup(cat, "daily-20261126_010000")
    result = inventory("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ESBACKUP OK - 1 definitions, 1 ok backups | definitions=1 ok=1 lost=0 failed=0 "
        "stale=0 verify_failed=0"]


def test_check_critical_on_failed_verify_and_lost_counts(inventory):
    define(inventory)
    cat = Catalog.open(inventory.catalog)
    b = add_backup(cat, "daily-20261126_010000")
    cat.update_backup(b, verified="2026-11-27T01:00:00+00:00", verify_result="failed",
                      verify_error="SHA-256 mismatch")
    add_backup(cat, "daily-20261125_010000", status="lost")
    result = inventory("check")
    assert result.exit_code == 2
    first, *rest = result.stdout.splitlines()
    assert first.startswith("ESBACKUP CRITICAL - 2 problem(s) | definitions=1 ok=1 lost=1 ")
    assert first.endswith(" verify_failed=1")
    assert "CRITICAL: backup web01/daily-20261126_010000 failed verify at " \
           "2026-11-27T01:00:00+00:00: SHA-256 mismatch" in rest


def test_check_unknown_without_a_readable_catalog(esb, tmp_path):
    result = esb("check")  # no catalog file at that path
    assert result.exit_code == 3
    assert result.stdout == f"ESBACKUP UNKNOWN - no catalog at {esb.catalog}\n"
    assert not esb.catalog.exists()  # check creates nothing
    esb.catalog.write_bytes(b"this is not an SQLite database" * 100)
    result = esb("check")
    assert result.exit_code == 3 and result.stdout.startswith("ESBACKUP UNKNOWN - cannot judge")


def test_check_on_new_catalog_is_ok(esb):
    esb.ok("dc", "list")
    result = esb("check")
    assert result.exit_code == 0 and result.stdout.startswith("ESBACKUP OK")


def test_status_is_the_worst_finding():
    found = [health.Finding(health.WARNING, health.STALE, "a"),
             health.Finding(health.CRITICAL, health.FAILED, "b")]
    assert health.status(found) == health.CRITICAL and health.status([]) == health.OK
    assert health.perfdata(3, 5, found) == ("definitions=3 ok=5 lost=0 failed=1 stale=1 "
                                            "verify_failed=0")


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


def test_verify_pipelines_respect_the_bandwidth_limit():
    node = Node("b1", "127.0.0.3", capabilities={"tools": {"mbuffer": True, "pv": True,
                                                           "sha256sum": True}})
    assert verify.file_stages(node, 0) == [["sha256sum"]]
    assert verify.file_stages(node, 10**6) == [
        ["mbuffer", "-q", "-m", "16M", "-r", "1000000"], ["sha256sum"]]
    snap = f"tank/backups/ds/{UUID}-disk1@esb-daily-20261126_010000"
    assert verify.dataset_stages(node, snap, 0) == [["zfs", "send", snap]]
    illumos = Node("b2", "x", capabilities={"tools": {"pv": True, "sha256sum": False}})
    assert verify.dataset_stages(illumos, snap, 500) == [
        ["zfs", "send", snap], ["pv", "-q", "-L", "500"]]
    assert verify.file_stages(illumos, 0) == [["digest", "-a", "sha256"]]


def test_verify_due_only_ok_backups_not_verified_lately():
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    fresh = (now - timedelta(days=1)).isoformat()
    old = (now - timedelta(days=9)).isoformat()
    rows = [Backup("a", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=None),
            Backup("b", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=fresh),
            Backup("c", "vm", UUID, 1, "file", old, "ok", "b1", "tank", verified=old),
            Backup("d", "vm", UUID, 1, "file", old, "lost", "b1", "tank")]
    assert [b.name for b in verify.due(rows, 7, now)] == ["a", "c"]
    assert [b.name for b in verify.due(rows, None, now)] == ["a", "b", "c"]


def test_check_and_metrics_import_neither_ssh_nor_rich(inventory, tmp_path):
    import os
    import sys

    prom = tmp_path / "m.prom"
    code = ("import sys; from click.testing import CliRunner; from esbackup.cli import cli;"
            "r = CliRunner().invoke(cli, ['check']); assert r.exit_code == 0, r.output;"
            f"r = CliRunner().invoke(cli, ['metrics', '--textfile', {str(prom)!r}]);"
            "assert r.exit_code == 0, r.output;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('paramiko', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "ESBACKUP_CATALOG": str(inventory.catalog)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]" and prom.exists()


def test_cron_offers_a_weekly_verify(esb):
    lines = esb.ok("cron").stdout.splitlines()
    (weekly,) = [line for line in lines if " backup verify " in line]
    assert weekly.startswith("37 5 * * 6 root ") and str(esb.catalog) in weekly
    assert weekly.endswith("-q backup verify --older-than 6 --wait 3600")
