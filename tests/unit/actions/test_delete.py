"""Removing backups (actions/delete.py): retention's removals are one call on the
backup node however many go, each hold released before its snapshot is destroyed
(one more only for data that was gone already); a removal that fails leaves that
backup whole, in the catalog, with a warning."""
from esbackup.actions import delete
from esbackup.catalog.core import Catalog
from esbackup.domain.models import VM, Backup, Definition, Node, Storage
from esbackup.drivers import files, zfs
from tests.unit.replay import ReplayNode, Replays, failed, ok

UUID = "3f2a5a4e-0000-4000-8000-0000000000a1"
TARGET = f"tank/backups/ds/{UUID}-disk1"


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warn(self, message: str) -> None:
        self.lines.append(message)


def catalog(tmp_path) -> tuple[Catalog, Definition]:
    cat = Catalog.open(tmp_path / "c.db", create=True)
    cat.add_node(Node(name="b1", address="b1", compute=True, backup=True,
                      capabilities={"holds_list": True}))
    cat.add_storage(Storage(node="b1", name="tank", zpool="tank"))
    cat.add_vm(VM(hostname="web01", uuid=UUID, dc="admin", node="b1", disks={1: "zones/d"}))
    d = cat.add_definition(Definition(vm="web01", name="daily", disk_id=1, type="dataset",
                                      node="b1", storage="tank", schedule="0 1 * * *",
                                      timezone="UTC", keep_last=1))
    for day in (1, 2, 3, 4):
        name = f"daily-202611{day:02d}_010000"
        cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="dataset",
                              created=f"2026-11-{day:02d}T01:00:00+00:00", status="ok",
                              node="b1", storage="tank", definition="daily",
                              location=f"{TARGET}@esb-{name}",
                              manifest=f"/tank/backups/manifests/{UUID}/disk1/{name}.json"),
                       definition_id=d.id)
    return cat, d


def manifest(day: int) -> str:
    return f"/tank/backups/manifests/{UUID}/disk1/daily-202611{day:02d}_010000.json"


def snap(day: int) -> str:
    return f"{TARGET}@esb-daily-202611{day:02d}_010000"


def test_retention_removes_in_one_call_and_keeps_what_failed(tmp_path):
    cat, d = catalog(tmp_path)
    node = ReplayNode("b1", {
        **{tuple(zfs.release("esbackup", snap(day))): ok() for day in (1, 2, 3)},
        tuple(zfs.destroy(snap(1))): ok(),
        tuple(zfs.destroy(snap(2))): failed(f"cannot destroy '{snap(2)}': dataset is busy\n"),
        tuple(zfs.destroy(snap(3))): failed("could not find any snapshots to destroy; "
                                            "check snapshot names.\n"),
        tuple(files.remove_listed()): ok(),
        tuple(files.remove(manifest(3))): ok(),
    })
    said = Lines()
    removed = delete.apply_retention(cat, d, said, sessions=Replays(b1=node))
    assert node.calls == [("batch", [
        zfs.release("esbackup", snap(1)), zfs.destroy(snap(1)),
        zfs.release("esbackup", snap(2)), zfs.destroy(snap(2)),
        zfs.release("esbackup", snap(3)), zfs.destroy(snap(3)),
        files.remove_listed()]),
        # the one whose snapshot was gone already: its manifest, once stderr said so
        ("run", files.remove(manifest(3)))]
    assert [b.name[-15:-7] for b in removed] == ["20261101", "20261103"]  # 3: already gone
    assert [b.name[-15:-7] for b in cat.backups(definition_id=d.id)] == ["20261102", "20261104"]
    (line,) = said.lines
    assert "daily-20261102_010000 not deleted" in line and "busy" in line


def test_nothing_due_makes_no_call(tmp_path):
    cat, d = catalog(tmp_path)
    d = cat.update_definition(Definition(**{**vars(d), "keep_last": 4}))
    node = ReplayNode("b1", {})
    assert delete.apply_retention(cat, d, sessions=Replays(b1=node)) == []
    assert node.calls == []


def test_the_manifests_fed_are_those_whose_data_went():
    assert files.listed(["/a/x.json", "/a/y.json"]) == b"/a/x.json\n/a/y.json\n"
    assert files.remove_listed() == ["sh", "-c", files.REMOVE_LISTED_SCRIPT]


def test_a_definition_moved_to_another_node_prunes_each_node_on_its_own(tmp_path):
    """Backups made before `definition update --node b2` stay on b1: their removal
    goes to b1, the others' to b2; one call per node."""
    cat, d = catalog(tmp_path)
    cat.add_node(Node(name="b2", address="b2", backup=True, compute=False))
    cat.add_storage(Storage(node="b2", name="tank2", zpool="tank"))
    d = cat.update_definition(Definition(**{**vars(d), "node": "b2", "storage": "tank2"}))
    for day in (5, 6):
        name = f"daily-202611{day:02d}_010000"
        cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="dataset",
                              created=f"2026-11-{day:02d}T01:00:00+00:00", status="ok",
                              node="b2", storage="tank2", definition="daily",
                              location=f"{TARGET}@esb-{name}"), definition_id=d.id)
    old = (1, 2, 3, 4)
    b1 = ReplayNode("b1", {**{tuple(zfs.release("esbackup", snap(day))): ok() for day in old},
                           **{tuple(zfs.destroy(snap(day))): ok() for day in old},
                           tuple(files.remove_listed()): ok()})
    b2 = ReplayNode("b2", {tuple(zfs.destroy(snap(5))): ok(), tuple(files.remove_listed()): ok()})
    removed = delete.apply_retention(cat, d, sessions=Replays(b1=b1, b2=b2))
    assert sorted(b.name[-15:-7] for b in removed) == [f"202611{d:02d}" for d in (1, 2, 3, 4, 5)]
    assert [kind for kind, _ in b1.calls] == ["batch"] and [kind for kind, _ in b2.calls] == [
        "batch"]
    assert b2.calls[0][1] == [zfs.destroy(snap(5)), files.remove_listed()]  # b2 lists no holds
