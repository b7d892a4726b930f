"""The catalog file: creation, pragmas, migrations recorded and applied in order."""
import sqlite3

from esbackup import catalog
from esbackup.catalog import Catalog


def test_new_catalog_is_at_latest_schema_with_wal_and_foreign_keys(tmp_path):
    cat = Catalog.open(tmp_path / "c.db")
    assert cat.schema_version() == catalog.SCHEMA_VERSION
    assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    versions = [r[0] for r in cat.conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in catalog.MIGRATIONS]
    assert [d.name for d in cat.dcs()] == ["admin"]


def test_upgrade_from_first_schema_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    catalog.migrate(conn, upto=1)
    conn.execute("INSERT INTO nodes (name, address, compute, backup, created) "
                 "VALUES ('c1', 'h', 1, 0, '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO vms (hostname, uuid, dc_id, node_id, brand, created) "
                 "VALUES ('web01', 'u-1', 1, 1, 'kvm', '2026-01-01T00:00:00+00:00')")
    conn.close()

    cat = Catalog.open(path)
    assert cat.schema_version() == catalog.SCHEMA_VERSION
    vm = cat.vm("web01")
    assert vm.uuid == "u-1" and vm.qga_socket is None  # column added by migration 2
    assert cat.runs() == [] and cat.users() == []


def test_migrating_twice_is_a_no_op(tmp_path):
    Catalog.open(tmp_path / "c.db").close()
    cat = Catalog.open(tmp_path / "c.db")
    count = cat.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(catalog.MIGRATIONS)


def test_busy_timeout_is_long(tmp_path):
    cat = Catalog.open(tmp_path / "c.db")
    assert cat.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000


def test_moving_locations_aside_stays_on_its_node(tmp_path):
    from esbackup.models import Backup, Node, Storage

    cat = Catalog.open(tmp_path / "c.db")
    for name in ("b1", "b2"):
        cat.add_node(Node(name=name, address=name, backup=True, compute=False))
        cat.add_storage(Storage(node=name, name="zones", zpool="zones"))  # same pool name
    target = "zones/backups/ds/u-disk1"
    for name, node in (("a-20261126_010000", "b1"), ("b-20261126_010000", "b2")):
        cat.add_backup(Backup(name=name, vm="web01", vm_uuid="u", disk_id=1, type="dataset",
                              created="2026-11-26T01:00:00+00:00", status="ok", node=node,
                              storage="zones", location=f"{target}@esb-{name}"))
    cat.move_backup_locations("b1", "zones", f"{target}@", f"{target}-aside@")
    assert [b.location for b in cat.backups()] == [
        f"{target}-aside@esb-a-20261126_010000", f"{target}@esb-b-20261126_010000"]
