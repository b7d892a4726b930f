"""web01/daily's definition and backups on the `inventory` fixture's catalog, for the
tests of check and metrics."""
from esbackup.domain.models import Backup
from tests.unit.shared import UUID


def add_backup(cat, name: str, status: str = "ok", **fields) -> Backup:
    return cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="file",
                                 created="2026-11-26T01:00:00+00:00", status=status, node="b1",
                                 storage="tank", definition="daily", **fields))


def define(inventory) -> None:
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "file",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3", "--timezone", "UTC")
