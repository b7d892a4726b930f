"""Which backups retention deletes (engine/retention.py): the newest ok ones kept, and
on a real catalog of each backend only those the definition itself made, by its id."""
import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain.models import VM, Backup, Definition, Node, Storage
from esbackup.domain.prune import Policy
from esbackup.engine import retention
from esbackup.errors import OperationFailed
from tests.unit.shared import UUID


@pytest.fixture
def cat(catalog_location):
    c = Catalog.open(catalog_location, create=True)
    c.add_node(Node(name="b1", address="b1", compute=True, backup=True))
    c.add_storage(Storage(node="b1", name="tank", zpool="tank"))
    c.add_vm(VM(hostname="web01", uuid="u-1", dc="admin", node="b1", brand="kvm",
                disks={1: "zones/web01-disk0"}))
    yield c
    c.close()


def define(cat: Catalog, retention_count: int = 1) -> Definition:
    return cat.add_definition(Definition(
        vm="web01", name="daily", disk_id=1, type="dataset", node="b1", storage="tank",
        schedule="0 1 * * *", timezone="UTC", keep_last=retention_count))


def made(cat: Catalog, d: Definition, day: int) -> Backup:
    return cat.add_backup(Backup(
        name=f"daily-202611{day:02d}_010000", vm="web01", vm_uuid="u-1", disk_id=1,
        type="dataset", created=f"2026-11-{day:02d}T01:00:00+00:00", status="ok",
        node="b1", storage="tank", definition=d.name), definition_id=d.id)


def test_retention_deletes_the_oldest_backups_the_definition_made(cat):
    d = define(cat, retention_count=2)
    first, _, _ = made(cat, d, 1), made(cat, d, 2), made(cat, d, 3)
    assert [b.name for b in retention.due(cat, d)] == [first.name]


def test_a_recreated_definition_never_deletes_the_old_definitions_backups(cat):
    old = define(cat)
    kept = [made(cat, old, 1).name, made(cat, old, 2).name]
    cat.delete_definition("web01", "daily")
    new = define(cat)
    made(cat, new, 3)
    assert retention.due(cat, new) == []  # today's one is its only backup
    made(cat, new, 4)
    assert [b.name for b in retention.due(cat, new)] == ["daily-20261103_010000"]
    orphans = cat.backups(vm="u-1", name=kept[0]) + cat.backups(vm="u-1", name=kept[1])
    assert [b.name for b in orphans] == kept  # still in the catalog, deleted only by hand


def test_retention_refuses_a_definition_that_is_not_in_the_catalog(cat):
    unsaved = Definition(vm="web01", name="daily", disk_id=1, type="dataset", node="b1",
                         storage="tank", schedule="0 1 * * *", timezone="UTC", keep_last=1)
    with pytest.raises(OperationFailed, match="not in the catalog"):
        retention.due(cat, unsaved)


def backup(i: int, status: str = "ok") -> Backup:
    return Backup(name=f"daily-2026112{i}_010000", vm="web01", vm_uuid=UUID, disk_id=1,
                  type="dataset", created=f"2026-11-2{i}T01:00:00+00:00", status=status,
                  node="b1", storage="tank", definition="daily")


def names(backups) -> list[str]:
    return [b.name for b in backups]


def excess(backups: list[Backup], keep: int, **rules: int) -> list[Backup]:
    """What retention.select removes of `backups` under keep-last `keep` (and `rules`)."""
    chosen = retention.select(backups, Policy(last=keep, **rules), "UTC")
    return [b for b, mark in zip(backups, chosen, strict=True) if mark and not mark.keep]


def test_retention_keeps_newest_ok():
    history = [backup(1), backup(2), backup(3, "lost"), backup(4), backup(5, "pending"),
               backup(6)]
    assert names(excess(history, 2)) == names([backup(1), backup(2)])
    assert names(excess(history, 1)) == names([backup(1), backup(2), backup(4)])
    assert names(excess(history, 3)) == names([backup(1)])
    assert excess(history, 4) == []
    assert excess(history, 0) == []
    assert excess([], 2) == []
    assert excess([backup(1, "lost"), backup(2, "lost")], 1) == []


def test_protected_backups_stay_and_count_toward_nothing():
    history = [backup(1), backup(2), backup(3), backup(4)]
    history[0].protected = history[2].protected = True
    assert names(excess(history, 1)) == [backup(2).name]  # 3 protected, 4 the one kept
    marks = retention.select(history, Policy(last=1), "UTC")
    assert [(m.keep, m.rule) for m in marks] == [
        (True, "protected"), (False, None), (True, "protected"), (True, "last")]


def test_the_newest_ok_backup_stays_whatever_the_policy():
    history = [backup(1), backup(2, "lost"), backup(3)]
    assert names(excess(history, 0, yearly=1)) == [backup(1).name]  # same year: newest kept
    history[2].protected = True  # the newest is protected: the rule keeps the one before
    assert names(excess(history, 1)) == []


def test_a_definitions_policy_is_its_keep_counts(cat):
    d = cat.update_definition(Definition(**{**vars(define(cat, 2)), "keep_daily": 3}))
    assert d.policy == Policy(last=2, daily=3)
