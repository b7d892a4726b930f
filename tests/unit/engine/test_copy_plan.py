"""What a copy run sends (engine/copy_plan.py): what the copy node lacks, oldest
first, each from the backup before it when both sit in one dataset of one node."""
from esbackup.domain.models import Backup, Location
from esbackup.engine import copy_plan


def backup(i: int, node: str = "b1", status: str = "ok", kind: str = "dataset",
           target: str = "tank/backups/ds/u-disk1") -> Backup:
    name = f"daily-2026110{i}_010000"
    return Backup(name=name, vm="web01", vm_uuid="u", disk_id=1, type=kind,
                  created=f"2026-11-0{i}T01:00:00+00:00", status=status, node=node,
                  storage="tank", location=f"{target}@esb-{name}", id=i)


def on_b2(*backups: Backup, status: str = "ok") -> dict[int, list[Location]]:
    return {b.id: [Location(node="b2", storage="vault", status=status, created=b.created)]
            for b in backups}


def plan(backups, copies):
    return [(s.backup.id, s.base.id if s.base else None)
            for s in copy_plan.to_send(backups, copies, "b2")]


def test_a_first_copy_sends_all_oldest_first_each_from_the_one_before():
    chain = [backup(1), backup(2), backup(3)]
    assert plan(chain, {}) == [(1, None), (2, 1), (3, 2)]


def test_only_backups_newer_than_the_newest_copy_are_sent_never_a_pruned_one_again():
    chain = [backup(1), backup(2), backup(3), backup(4)]
    assert plan(chain, on_b2(chain[1])) == [(3, 2), (4, 3)]
    assert plan(chain, on_b2(chain[3])) == []
    assert plan(chain, on_b2(chain[1], status="pending")) == [(1, None), (2, 1), (3, 2),
                                                              (4, 3)]


def test_a_backup_in_another_dataset_or_node_or_a_file_starts_afresh():
    chain = [backup(1), backup(2, target="tank/backups/ds/u-disk1-20261102_000000"),
             backup(3, node="b3"), backup(4, kind="file"), backup(5, kind="file")]
    assert plan(chain, {}) == [(1, None), (2, None), (3, None), (4, None), (5, None)]


def test_backups_not_ok_or_already_on_the_copy_node_are_not_sent():
    chain = [backup(1, status="lost"), backup(2, node="b2"), backup(3)]
    assert plan(chain, {}) == [(3, None)]
