"""check's verdict and perfdata (services/health.py), and what check and metrics import."""
import subprocess

from esbackup.catalog.core import Catalog
from esbackup.services import health
from tests.unit.services.catalog_rows import add_backup, define


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


def test_check_unknown_without_a_readable_catalog(tmp_path):
    from tests.conftest import Esbackup

    esb = Esbackup(tmp_path / "none.db")
    result = esb("check")  # no catalog file at that path
    assert result.exit_code == 3
    assert result.stdout == f"ESBACKUP UNKNOWN - no catalog at {esb.catalog}\n"
    assert not esb.catalog.exists()  # check creates nothing
    esb.catalog.write_bytes(b"this is not an SQLite database" * 100)
    result = esb("check")
    assert result.exit_code == 3 and result.stdout.startswith("ESBACKUP UNKNOWN - cannot judge")


def test_check_on_new_catalog_warns_that_nothing_is_backed_up(esb):
    esb.ok("dc", "list")
    result = esb("check")
    assert result.exit_code == 1 and result.stdout.startswith("ESBACKUP WARNING")
    assert esb("check", "--allow-empty").exit_code == 0


def test_a_definition_never_backed_up_past_a_period_is_critical(inventory):
    """Created, then its first firing and one period more (and the grace) with no ok
    backup: CRITICAL, not the mere WARNING of a missed run."""
    from datetime import datetime, timedelta

    from esbackup.domain import schedule

    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--timezone", "UTC", "--keep-last", "3")
    cat = Catalog.open(inventory.catalog)
    created = datetime.fromisoformat(cat.definition("web01", "daily").created)
    _, second = schedule.next_runs("0 1 * * *", "UTC", created, 2)
    (early,) = health.problems(cat, second + health.GRACE - timedelta(minutes=1))
    assert (early.level, early.kind) == (health.WARNING, health.STALE)  # within the grace
    (found,) = health.problems(cat, second + health.GRACE)
    assert (found.level, found.kind) == (health.CRITICAL, health.NEVER)
    assert "no ok backup since it was created" in found.text
    cat.close()


def test_status_is_the_worst_finding():
    found = [health.Finding(health.WARNING, health.STALE, "a"),
             health.Finding(health.CRITICAL, health.FAILED, "b")]
    assert health.status(found) == health.CRITICAL and health.status([]) == health.OK
    assert health.perfdata(3, 5, found) == ("definitions=3 ok=5 lost=0 failed=1 stale=1 "
                                            "verify_failed=0")


def test_check_and_metrics_import_neither_ssh_nor_rich(inventory, tmp_path):
    import os
    import sys

    prom = tmp_path / "m.prom"
    code = ("import sys; from click.testing import CliRunner; from esbackup.cli import cli;"
            "r = CliRunner().invoke(cli, ['check', '--allow-empty']); "
            "assert r.exit_code == 0, r.output;"
            f"r = CliRunner().invoke(cli, ['metrics', '--textfile', {str(prom)!r}]);"
            "assert r.exit_code == 0, r.output;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('paramiko', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "ESBACKUP_CATALOG": str(inventory.catalog)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]" and prom.exists()


def test_check_json_gives_the_same_verdict_and_problems(esb, tmp_path):
    import json

    esb.ok("dc", "list")
    result = esb("check", "-f", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": "WARNING", "exit_code": 1, "definitions": 0, "ok_backups": 0,
        "problems": [{"level": "WARNING", "kind": "empty",
                      "text": "no active backup definitions: nothing is backed up "
                              "(`check --allow-empty` accepts that)"}]}
    result = esb("check", "-f", "json", "--allow-empty")
    assert (result.exit_code, json.loads(result.stdout)["status"]) == (0, "OK")
    from tests.conftest import Esbackup

    missing = Esbackup(tmp_path / "none.db")("check", "-f", "json")
    verdict = json.loads(missing.stdout)
    assert missing.exit_code == 3 and verdict["status"] == "UNKNOWN"
    assert verdict["problems"][0]["text"].startswith("no catalog at ")
