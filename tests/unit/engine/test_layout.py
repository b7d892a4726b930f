"""On-node names and paths of backups (engine/layout.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from esbackup.engine import layout
from tests.unit.scripted import DAILY
from tests.unit.shared import UTC, UUID


def test_backup_name_is_utc_stamp():
    created = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    assert layout.backup_name("daily", created) == "daily-20261126_010203"
    assert layout.snapshot_name("daily-20261126_010203") == "esb-daily-20261126_010203"
    assert layout.source_snapshot("zones/web01-disk0", "daily-20261126_010203") == (
        "zones/web01-disk0@esb-daily-20261126_010203")


def test_backup_name_converts_to_utc():
    created = datetime(2026, 11, 26, 2, 2, 3, tzinfo=ZoneInfo("Europe/Prague"))
    assert layout.backup_name("daily", created) == "daily-20261126_010203"


@pytest.mark.parametrize("snapname, owned", [
    ("esb-daily-20261126_010000", True),
    ("esb-daily-x-20261126_010000", False),
    ("esb-daily-20261126_010000x", False),
    ("esb-daily-2026112_010000", False),
    ("esb-dailyy-20261126_010000", False),
    ("daily-20261126_010000", False),
    ("esb-weekly-20261126_010000", False),
    ("xesb-daily-20261126_010000", False),
    ("esb-daily-20261126_0100", False),
])
def test_owned_by_only_exact_names(snapname, owned):
    assert layout.owned_by(snapname, "daily") is owned


def test_owned_by_definition_record_and_regex_characters():
    d = definition_record("d.1")
    assert layout.owned_by("esb-d.1-20261126_010000", d)
    assert not layout.owned_by("esb-dx1-20261126_010000", d)


def definition_record(name: str):
    from esbackup.domain.models import Definition

    return Definition(vm="web01", name=name, disk_id=1, type="dataset", node="b1",
                      storage="tank", schedule="0 1 * * *", timezone="UTC", keep_last=3)


def test_paths_on_the_nodes():
    assert layout.dataset_target("tank", UUID, 2) == f"tank/backups/ds/{UUID}-disk2"
    assert [layout.file_path("/tank", UUID, 1, "daily-20261126_010000", c)
            for c in ("off", "gzip", "bzip2")] == [
        f"/tank/backups/file/{UUID}/disk1/daily-20261126_010000{ext}"
        for ext in (".zfs", ".zfs.gz", ".zfs.bz2")]
    assert layout.partial_path(f"/tank/backups/file/{UUID}/disk1/d-1.zfs.gz") == (
        f"/tank/backups/file/{UUID}/disk1/.d-1.zfs.gz.part")
    assert layout.manifest_path("/tank", UUID, 1, "daily-20261126_010000") == (
        f"/tank/backups/manifests/{UUID}/disk1/daily-20261126_010000.json")
    when = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
    assert layout.aside_name("tank/backups/ds/x-disk1", when) == (
        "tank/backups/ds/x-disk1-20261126_010000")
    assert layout.restore_temp("zones/a", when) == "zones/a-esbrestore-20261126_010000"
    assert layout.restore_old("zones/a", when) == "zones/a-esbold-20261126_010000"


def test_compression_of_file_names():
    assert [layout.compression_of(f"/m/b/x{e}") for e in (".zfs", ".zfs.gz", ".zfs.bz2")] == [
        "off", "gzip", "bzip2"]
    with pytest.raises(ValueError):
        layout.compression_of("/m/b/x.tar")


def test_created_of_reads_the_backup_time_from_its_snapshot():
    assert layout.created_of("esb-daily-20261130_070000", DAILY) == datetime(
        2026, 11, 30, 7, 0, tzinfo=timezone.utc)
    assert layout.created_of("esb-weekly-20261130_070000", DAILY) is None
    assert layout.created_of("esb-daily-20261130_0700", DAILY) is None
