"""Migration 10 and the copy-definition queries (issue 20) on both backends: copies
of a definition, where each backup's copies live, and a tick's claim of a copy."""
import pytest

from esbackup.catalog import schema
from esbackup.catalog.core import Catalog
from esbackup.domain.models import VM, Backup, CopyDefinition, Definition, Node, Storage
from esbackup.errors import InvalidInput
from tests.unit.catalog.test_core import raw_connect


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def cat(catalog_location):
    c = Catalog.open(catalog_location, create=True)
    c.add_node(Node(name="c1", address="c1"))
    for name, pool in (("b1", "tank"), ("b2", "vault")):
        c.add_node(Node(name=name, address=name, compute=False, backup=True))
        c.add_storage(Storage(node=name, name=pool, zpool=pool))
    c.add_vm(VM(hostname="web01", uuid="u-1", dc="admin", node="c1", disks={1: "zones/d1"}))
    c.add_definition(Definition(vm="web01", name="daily", disk_id=1, type="dataset", node="b1",
                                storage="tank", schedule="0 1 * * *", timezone="UTC"))
    yield c
    c.close()


def copy_to_b2(cat, **values) -> CopyDefinition:
    d = cat.definition("web01", "daily")
    return cat.add_copy(CopyDefinition(vm="web01", definition="daily", node="b2",
                                       storage="vault", definition_id=d.id, **values))


def backup(cat, day: int) -> Backup:
    d = cat.definition("web01", "daily")
    return cat.add_backup(Backup(
        name=f"daily-202611{day:02}_010000", vm="web01", vm_uuid="u-1", disk_id=1,
        type="dataset", created=f"2026-11-{day:02}T01:00:00+00:00", status="ok", node="b1",
        storage="tank", definition="daily"), definition_id=d.id)


def test_an_older_catalog_gains_the_copy_tables_with_its_data_kept(catalog_location):
    conn = raw_connect(catalog_location)
    schema.migrate(conn, upto=9)
    conn.execute("INSERT INTO nodes (name, address, compute, backup, created) "
                 "VALUES ('b1', 'h', 0, 1, '2026-01-01T00:00:00+00:00')")
    conn.close()
    cat = Catalog.open(catalog_location)
    assert cat.schema_version() == 11 == schema.SCHEMA_VERSION
    assert cat.node("b1").backup and cat.copy_definitions() == [] and cat.copy_locations() == {}
    assert {"copies", "backup_copies"} <= cat.table_names()
    cat.close()


def test_a_copy_reads_back_as_saved_with_its_definitions_time_zone(cat):
    c = copy_to_b2(cat, schedule="30 3 * * *", keep_monthly=12, bwlimit=1000)
    assert (c.ref, c.storage, c.schedule, c.timezone, c.keep_monthly, c.bwlimit, c.active) == (
        "web01/daily/b2", "vault", "30 3 * * *", "UTC", 12, 1000, True)
    assert cat.copy_definitions(node="b2") == [c] and cat.copy_definitions(node="b1") == []
    with pytest.raises(InvalidInput, match="exists"):
        copy_to_b2(cat, after_backup=True)


def test_copies_of_backups_are_found_in_one_query_and_go_with_their_backup(cat):
    c = copy_to_b2(cat, after_backup=True)
    first, second = backup(cat, 1), backup(cat, 2)
    loc = cat.add_location(first.id, "b2", "vault", c.id, status="pending",
                           created=first.created)
    cat.update_location(loc, status="ok", size=7, location="vault/backups/ds/x@esb-a")
    found = cat.copy_locations([first.id, second.id])
    assert list(found) == [first.id]
    assert [(x.node, x.storage, x.status, x.size, x.primary, x.copy_id)
            for x in found[first.id]] == [("b2", "vault", "ok", 7, False, c.id)]
    with pytest.raises(InvalidInput, match="has a copy on b2"):
        cat.add_location(first.id, "b2", "vault", c.id, status="ok", created=first.created)
    cat.move_copy_locations("b2", "vault/backups/ds/x@", "vault/backups/ds/x-old@")
    assert cat.copy_locations([first.id])[first.id][0].location == \
        "vault/backups/ds/x-old@esb-a"
    cat.delete_copy(c)  # the copy definition goes; the copies it made stay
    assert cat.copy_locations()[first.id][0].copy_id is None
    cat.delete_backup(first)
    assert cat.copy_locations() == {}


def test_a_node_or_storage_holding_copies_is_not_deleted(cat):
    c = copy_to_b2(cat, after_backup=True)
    with pytest.raises(InvalidInput, match="copy definitions"):
        cat.delete_storage("b2", "vault")
    cat.delete_copy(c)
    b = backup(cat, 1)
    cat.add_location(b.id, "b2", "vault", None, status="ok", created=b.created)
    with pytest.raises(InvalidInput, match="backup copies"):
        cat.delete_storage("b2", "vault")


def test_one_tick_claims_a_copys_firing(cat):
    c = copy_to_b2(cat, schedule="0 3 * * *")
    fired = "2026-11-26T03:00:00+00:00"
    assert cat.copy_starts() == [(c.id, "0 3 * * *", "UTC", None)]
    assert cat.claim_copy(c.id, fired, "2026-11-26T03:00:05+00:00")
    assert not cat.claim_copy(c.id, fired, "2026-11-26T03:00:06+00:00")
    assert cat.copy_starts()[0][3] == "2026-11-26T03:00:05+00:00"
    copy_to_b2_after_only = cat.update_copy(
        CopyDefinition(**{**vars(c), "schedule": "", "after_backup": True}))
    assert copy_to_b2_after_only.schedule == "" and cat.copy_starts() == []


def test_postgresql_copy_columns_hold_64_bits(pg_catalog):
    cat = Catalog.open(pg_catalog, create=True)
    columns = {(table, column): kind for table, column, kind in cat.conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()")}
    assert columns["backup_copies", "size"] == columns["copies", "bwlimit"] == "bigint"
    assert columns["backup_copies", "location"] == "text"
    cat.close()


def test_a_backups_row_is_taken_over_by_its_copy_when_its_primary_goes(cat):
    c = copy_to_b2(cat, after_backup=True)
    b = backup(cat, 1)
    cat.update_backup(b, location="tank/backups/ds/x@esb-a", checksum="aa", size=5)
    cat.add_location(b.id, "b2", "vault", c.id, status="ok", created=b.created, size=6,
                     location="vault/backups/ds/x@esb-a", manifest="/vault/m.json",
                     checksum="aa")
    moved = cat.remove_primary(b)
    assert (moved.node, moved.storage, moved.location, moved.size, moved.manifest,
            moved.copied, moved.copy_id, moved.id) == (
        "b2", "vault", "vault/backups/ds/x@esb-a", 6, "/vault/m.json", True, c.id, b.id)
    assert cat.copy_locations() == {}
    assert cat.remove_primary(moved) is None
    assert cat.backups() == []


def test_the_definitions_retention_leaves_backups_held_by_copies_to_the_copies(cat):
    from esbackup.engine import retention

    c = copy_to_b2(cat, after_backup=True, keep_last=1)
    d = cat.definition("web01", "daily")
    first, second, third = backup(cat, 1), backup(cat, 2), backup(cat, 3)
    for b in (first, second):
        cat.add_location(b.id, "b2", "vault", c.id, status="ok", created=b.created)
    cat.remove_primary(first)  # the primary's retention took it: b2's copy holds it
    assert [b.name for b in retention.backups_of(cat, d)] == [second.name, third.name]
    due = retention.copy_due(cat, d, cat.copy_definition(d.id, "b2"))
    assert [(b.name, loc.primary, loc.id is None) for b, loc in due] == [
        (first.name, False, True)]
