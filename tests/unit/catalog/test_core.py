"""The catalog: creation, pragmas, migrations recorded and applied in order, and the
behaviour both backends (a SQLite file, a PostgreSQL database) share."""
import os
import sqlite3
import threading

import pytest

from esbackup.catalog import postgresql as catalog_pg
from esbackup.catalog import schema
from esbackup.catalog import sqlite as catalog_sqlite
from esbackup.catalog.core import Catalog
from esbackup.catalog.location import is_url
from esbackup.domain.models import DC, VM, Backup, Definition, Node, Run, Storage
from esbackup.engine import locks
from esbackup.errors import Busy, InvalidInput, NotFound


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def cat(catalog_location):
    c = Catalog.open(catalog_location, create=True)
    yield c
    c.close()


def raw_connect(location):
    """A connection without migrations, as an older esbackup left the catalog."""
    if is_url(location):
        return catalog_pg.connect(location, catalog_sqlite.BUSY_TIMEOUT_S)
    return sqlite3.connect(location, isolation_level=None)


def test_new_catalog_records_every_migration(cat):
    assert cat.schema_version() == schema.SCHEMA_VERSION
    versions = [r[0] for r in cat.conn.execute(
        "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in schema.MIGRATIONS]
    assert [d.name for d in cat.dcs()] == ["admin"]


def test_upgrade_from_first_schema_keeps_data_on_both(catalog_location):
    conn = raw_connect(catalog_location)
    schema.migrate(conn, upto=1)
    conn.execute("INSERT INTO nodes (name, address, compute, backup, created) "
                 "VALUES ('c1', 'h', 1, 0, '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO vms (hostname, uuid, dc_id, node_id, brand, created) "
                 "VALUES ('web01', 'u-1', 1, 1, 'kvm', '2026-01-01T00:00:00+00:00')")
    conn.close()
    cat = Catalog.open(catalog_location)
    assert cat.schema_version() == schema.SCHEMA_VERSION
    assert cat.vm("web01").qga_socket is None and cat.runs() == []
    cat.close()


def inventory(cat) -> None:
    cat.add_node(Node(name="c1", address="c1", compute=True, backup=True))
    cat.add_storage(Storage(node="c1", name="tank", zpool="tank"))
    cat.add_vm(VM(hostname="web01", uuid="u-1", dc="admin", node="c1", brand="kvm",
                  disks={1: "zones/web01-disk0"}))


def definitions(cat, *names: str) -> list[Definition]:
    """The inventory, and web01's definitions of these names (runs belong to one)."""
    inventory(cat)
    return [cat.add_definition(Definition(
        vm="web01", name=name, disk_id=1, type="dataset", node="c1", storage="tank",
        schedule="0 1 * * *", timezone="UTC", keep_last=1)) for name in names]


def test_unique_names_are_invalid_input_on_both(cat):
    inventory(cat)
    with pytest.raises(InvalidInput, match="node c1 exists"):
        cat.add_node(Node(name="c1", address="other"))
    with pytest.raises(InvalidInput, match="virtual server web01 exists"):
        cat.add_vm(VM(hostname="web01", uuid="u-2", dc="admin", node="c1", brand="kvm",
                      disks={1: "zones/x"}))
    assert [v.uuid for v in cat.vms()] == ["u-1"]  # nothing half-done
    cat.add_dc(DC(name="dc2"))
    with pytest.raises(NotFound):
        cat.dc("dc3")


def test_foreign_keys_hold_on_both(cat):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        cat.conn.execute("INSERT INTO storages (node_id, name, zpool) VALUES (99, 's', 'p')")


def test_large_sizes_and_fractions_round_trip(cat):
    inventory(cat)
    b = cat.add_backup(Backup(name="d-20261126_010000", vm="web01", vm_uuid="u-1", disk_id=1,
                              type="dataset", created="2026-11-26T01:00:00+00:00", status="ok",
                              node="c1", storage="tank", size=5 << 40, duration=1.234567,
                              fsfreeze=True))
    assert (b.size, b.duration, b.fsfreeze) == (5 << 40, 1.234567, True)


def test_listings_sort_bytewise_on_both(cat):
    for name in ("b", "B", "a", "_x"):
        cat.add_dc(DC(name=name))
    assert [d.name for d in cat.dcs()] == ["B", "_x", "a", "admin", "b"]


def test_one_run_per_firing_on_both(cat):
    (d,) = definitions(cat, "daily")
    first = cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick", started="t",
                            host="h1", firing="2026-11-26T01:00:00+00:00"))
    with pytest.raises(InvalidInput):
        cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick", started="t",
                        host="h2", firing="2026-11-26T01:00:00+00:00"))
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="manual", started="u"))
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="manual", started="u"))
    runs = cat.runs((d.id,))
    assert len(runs) == 3 and runs[-1].id == first.id and runs[-1].host == "h1"
    assert len(cat.runs((d.id,), limit=2)) == 2


def test_a_lock_is_won_by_exactly_one_of_many_racers(catalog_location):
    Catalog.open(catalog_location, create=True).close()
    winners, barrier = [], threading.Barrier(8)

    def race(host: str) -> None:
        own = Catalog.open(catalog_location)
        barrier.wait()
        if own.take_lock("slot:n1:0", "test", os.getpid(), host, "2999-01-01T00:00:00+00:00",
                         locks.is_stale) is None:
            winners.append(host)
        own.close()

    threads = [threading.Thread(target=race, args=(f"host{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_catalog_copy_both_ways_keeps_every_row(cat, tmp_path, pg_catalog):
    from esbackup.actions import copy

    inventory(cat)
    cat.add_run(Run(definition="web01/daily", trigger="tick", started="t", host="h1"))
    other = pg_catalog if not cat.is_postgresql else tmp_path / "copy.db"
    counts = copy.copy(cat, other)
    assert counts["vms"] == 1 and counts["disks"] == 1 and counts["runs"] == 1
    back = Catalog.open(other)
    assert back.vm("web01") == cat.vm("web01") and back.runs() == cat.runs()
    back.add_dc(DC(name="dc2"))  # new ids continue after the copied ones
    assert back.dc("dc2").id > back.dc("admin").id
    back.close()
    with pytest.raises(InvalidInput, match="already holds data"):
        copy.copy(cat, other)


def test_new_catalog_is_at_latest_schema_with_wal_and_foreign_keys(tmp_path):
    cat = Catalog.open(tmp_path / "c.db", create=True)
    assert cat.schema_version() == schema.SCHEMA_VERSION
    assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    versions = [r[0] for r in cat.conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in schema.MIGRATIONS]
    assert [d.name for d in cat.dcs()] == ["admin"]


def test_runs_of_an_older_catalog_go_to_the_definition_their_text_names_now(catalog_location):
    """Migration 8 keys runs by definition id: a run whose VM/NAME names a
    definition made before it started is that definition's; one that started
    earlier (a deleted VM's of the same hostname) or names nothing is an orphan."""
    conn = raw_connect(catalog_location)
    schema.migrate(conn, upto=7)
    for sql in [
        "INSERT INTO nodes (name, address, compute, backup, created) "
        "VALUES ('c1', 'h', 1, 1, '2026-01-01T00:00:00+00:00')",
        "INSERT INTO storages (node_id, name, zpool) VALUES (1, 'tank', 'tank')",
        "INSERT INTO vms (hostname, uuid, dc_id, node_id, brand, created) "
        "VALUES ('web01', 'u-1', 1, 1, 'kvm', '2026-06-01T00:00:00+00:00')",
        "INSERT INTO definitions (vm_id, name, disk_id, type, node_id, storage_id, schedule, "
        "timezone, retention, active, created) VALUES (1, 'daily', 1, 'dataset', 1, 1, "
        "'0 1 * * *', 'UTC', 3, 1, '2026-06-01T00:00:00+00:00')",
        *(f"INSERT INTO runs (definition, trigger, started, outcome, firing) VALUES "
          f"('{ref}', 'tick', '{started}', 'ok', '{started}')"
          for ref, started in [("web01/daily", "2026-05-01T01:00:00+00:00"),  # the old web01
                               ("web01/daily", "2026-07-01T01:00:00+00:00"),
                               ("gone/daily", "2026-07-01T01:00:00+00:00")])]:
        conn.execute(sql)
    conn.close()
    cat = Catalog.open(catalog_location)
    d = cat.definition("web01", "daily")
    assert [r.started for r in cat.runs((d.id,))] == ["2026-07-01T01:00:00+00:00"]
    assert [(r.definition, r.definition_id) for r in cat.runs()] == [  # newest first
        ("gone/daily", None), ("web01/daily", d.id), ("web01/daily", None)]
    cat.close()


def test_upgrade_from_first_schema_keeps_data_sqlite(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn, upto=1)
    conn.execute("INSERT INTO nodes (name, address, compute, backup, created) "
                 "VALUES ('c1', 'h', 1, 0, '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO vms (hostname, uuid, dc_id, node_id, brand, created) "
                 "VALUES ('web01', 'u-1', 1, 1, 'kvm', '2026-01-01T00:00:00+00:00')")
    conn.close()

    cat = Catalog.open(path)
    assert cat.schema_version() == schema.SCHEMA_VERSION
    vm = cat.vm("web01")
    assert vm.uuid == "u-1" and vm.qga_socket is None  # column added by migration 2
    assert cat.runs() == [] and cat.users() == []


def test_migrating_twice_is_a_no_op(tmp_path):
    Catalog.open(tmp_path / "c.db", create=True).close()
    cat = Catalog.open(tmp_path / "c.db")
    count = cat.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(schema.MIGRATIONS)


def test_busy_timeout_is_long(tmp_path):
    cat = Catalog.open(tmp_path / "c.db", create=True)
    assert cat.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000


def test_moving_locations_aside_stays_on_its_node(cat):
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


def test_postgresql_writers_take_turns_and_a_long_wait_is_busy(pg_catalog):
    Catalog.open(pg_catalog, create=True).close()
    holder = catalog_pg.connect(pg_catalog, catalog_sqlite.BUSY_TIMEOUT_S)
    waiter = catalog_pg.connect(pg_catalog, 0.3)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(Busy, match="catalog is busy"):
        waiter.execute("BEGIN IMMEDIATE")
    waiter.execute("ROLLBACK")
    holder.execute("COMMIT")
    waiter.execute("BEGIN IMMEDIATE")
    waiter.execute("COMMIT")
    holder.close()
    waiter.close()


def test_postgresql_unreachable_or_refused_is_one_line(postgres, pg_catalog, monkeypatch):
    from lab.postgres import free_port

    with pytest.raises(catalog_pg.CatalogUnavailable) as error:
        Catalog.open(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert "\n" not in str(error.value) and "127.0.0.1" in str(error.value)
    monkeypatch.setenv("PGPASSWORD", "wrong")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(catalog_pg.CatalogUnavailable, match="password authentication failed"):
        Catalog.open(pg_catalog)


def test_postgresql_statements_outlive_a_server_restart(postgres, pg_catalog):
    cat = Catalog.open(pg_catalog, create=True)
    postgres.restart()
    cat.add_dc(DC(name="after"))
    assert [d.name for d in cat.dcs()] == ["admin", "after"]
    cat.close()


def test_a_firing_is_claimed_by_exactly_one_of_many_ticks(catalog_location):
    from datetime import datetime, timezone

    from esbackup.actions import tick

    setup = Catalog.open(catalog_location, create=True)
    (d,) = definitions(setup, "daily")
    setup.close()
    fired = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)
    claims, barrier = [], threading.Barrier(8)

    def tick_on(host: str) -> None:
        own = Catalog.open(catalog_location)
        barrier.wait()
        claims.extend(tick.claim(own, [(d, fired)]))
        own.close()

    threads = [threading.Thread(target=tick_on, args=(f"host{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claims) == 1


def test_catalog_copy_knows_every_table(cat):
    assert cat.table_names() == {*schema.TABLES, "locks", "schema_migrations"}


def test_renew_and_release_touch_only_this_hosts_row(cat):
    cat.take_lock("disk:u:1", "run", 1234, "host2", "2000-01-01T00:00:00+00:00")
    cat.renew_locks(["disk:u:1"], 1234, "host1", "2999-01-01T00:00:00+00:00")  # same pid
    cat.release_lock("disk:u:1", 1234, "host1")
    [row] = cat.locks("disk:")
    assert (row["host"], row["lease_until"]) == ("host2", "2000-01-01T00:00:00+00:00")
    cat.release_lock("disk:u:1", 1234, "host2")
    assert cat.locks("disk:") == []


def test_each_backend_fills_in_the_column_types_of_the_ddl():
    ddl = "CREATE TABLE n (id {ID}, \"user\" {TEXT} NOT NULL DEFAULT 'x', size {INT}, d {REAL})"
    assert ddl.format_map(schema.COLUMN_TYPES) == (
        "CREATE TABLE n (id INTEGER PRIMARY KEY, \"user\" TEXT NOT NULL DEFAULT 'x', "
        "size INTEGER, d REAL)")
    assert ddl.format_map(catalog_pg.COLUMN_TYPES) == (
        'CREATE TABLE n (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "user" TEXT '
        'COLLATE "C" NOT NULL DEFAULT \'x\', size BIGINT, d DOUBLE PRECISION)')
    for _, _, script in schema.MIGRATIONS:  # no brace but the four names
        assert "{" not in script.format_map(schema.COLUMN_TYPES).replace("'{}'", "")


def test_postgresql_columns_hold_64_bits_and_sort_bytewise(pg_catalog):
    cat = Catalog.open(pg_catalog, create=True)
    columns = {(table, column): (kind, collation) for table, column, kind, collation in
               cat.conn.execute("SELECT table_name, column_name, data_type, collation_name "
                                "FROM information_schema.columns WHERE table_schema = "
                                "current_schema()")}
    assert columns["backups", "size"] == ("bigint", None)
    assert columns["runs", "definition_id"] == ("bigint", None)
    assert columns["runs", "duration"] == ("double precision", None)
    assert columns["nodes", "user"] == ("text", "C")
    cat.close()


def test_placeholders_translated_for_postgresql_exactly():
    t = catalog_pg.translate
    assert t("SELECT * FROM t WHERE a LIKE ? AND b = 'x?%'") == (
        "SELECT * FROM t WHERE a LIKE %s AND b = 'x?%%'")
    assert t("INSERT INTO t VALUES (?, ?)") == "INSERT INTO t VALUES (%s, %s) RETURNING *"
    assert t("INSERT INTO t VALUES (?)", returning=False) == "INSERT INTO t VALUES (%s)"
    assert catalog_pg.redact("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"


def test_one_claim_commit_leaves_out_only_the_firing_another_tick_has(catalog_location):
    from datetime import datetime, timezone

    from esbackup.actions import tick

    cat = Catalog.open(catalog_location, create=True)
    daily, weekly = definitions(cat, "daily", "weekly")
    fired = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)
    assert [d.name for d, _ in tick.claim(cat, [(daily, fired)])] == ["daily"]
    claimed = tick.claim(cat, [(daily, fired), (weekly, fired)])
    assert [(d.name, run.firing) for d, run in claimed] == [("weekly", fired.isoformat())]
    assert len(cat.runs()) == 2
    cat.close()
