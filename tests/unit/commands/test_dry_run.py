"""--dry-run says what a command would destroy or send, and changes nothing: the
catalog file keeps its bytes, and no node is asked (the sessions are
tests/unit/scripted.py's `Scripted`, which fails a test on any call)."""
from __future__ import annotations

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from tests.conftest import Esbackup
from tests.unit.scripted import Scripted
from tests.unit.shared import UUID

SNAPSHOT = "tank/backups/ds/3f2a5a4e-0000-4000-8000-000000000001/disk1@esb-daily-20261126_010000"
MANIFEST = "/tank/backups/manifests/daily-20261126_010000.json"


@pytest.fixture
def offline(inventory) -> Esbackup:
    """The inventory with one dataset backup, its node sessions a double that
    answers nothing."""
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "1", "--timezone", "UTC")
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "daily")
    cat.add_backup(Backup(name="daily-20261126_010000", vm="web01", vm_uuid=UUID, disk_id=1,
                          type="dataset", created="2026-11-26T01:00:00+00:00", status="ok",
                          node="b1", storage="tank", definition="daily", location=SNAPSHOT,
                          manifest=MANIFEST, size=5 << 30), d.id)
    cat.close()
    return Esbackup(inventory.catalog, sessions=Scripted())


def test_backup_delete_dry_run_names_what_goes_and_changes_nothing(offline):
    before = offline.catalog.read_bytes()
    out = offline.ok("backup", "delete", "web01/daily-20261126_010000", "--dry-run").stdout
    assert out.splitlines() == [
        "deleting backup web01/daily-20261126_010000 would destroy:",
        f"  snapshot {SNAPSHOT} on node b1", f"  manifest {MANIFEST} on node b1",
        "  its catalog row"]
    assert offline.catalog.read_bytes() == before


def test_backup_restore_dry_run_names_the_disk_it_replaces_and_changes_nothing(offline):
    before = offline.catalog.read_bytes()
    out = offline.ok("backup", "restore", "web01/daily-20261126_010000", "--target-disk-id",
                     "2", "--dry-run").stdout
    assert "ALL data of zones/web01-disk1 (disk 2 of web01) on node c1" in out
    assert f"replaced by backup web01/daily-20261126_010000 (dataset, {SNAPSHOT}" in out
    assert offline.catalog.read_bytes() == before
