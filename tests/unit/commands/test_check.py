"""What `esbackup check` reports (commands/check.py)."""
from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from tests.unit.shared import BOTH_BACKENDS


@BOTH_BACKENDS
def test_check_warns_about_orphaned_pending_rows(inventory):
    cat = Catalog.open(inventory.catalog)
    cat.add_backup(Backup(name="x-20261126_010000", vm="web01",
                          vm_uuid="3f2a5a4e-0000-4000-8000-000000000001", disk_id=1,
                          type="dataset", created="2026-11-26T01:00:00+00:00",
                          status="pending", node="b1", storage="tank"))
    result = inventory("check")
    assert result.exit_code == 1
    assert "is pending but nothing runs" in result.stdout
