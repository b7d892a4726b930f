"""Copy definitions (issue 20) on a real catalog, SQLite and PostgreSQL: validation,
the JSON shape, listings, roles as for definitions, and where backups live."""
import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.models import Backup


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def site(inventory):
    """web01/daily backs up to b1; b2 is a second backup node with storage vault."""
    inventory.ok("node", "create", "b2", "--address", "127.0.0.4", "--backup", "--no-compute",
                 "--no-connect")
    inventory.ok("storage", "create", "b2", "vault", "--zpool", "vault")
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--timezone", "Europe/Prague")
    return inventory


def make(esb, *extra, ref="web01/daily"):
    return esb.ok("copy", "create", ref, "--node", "b2", "--storage", "vault", *extra)


JSON_FIELDS = {"copy", "vm", "definition", "node", "storage", "schedule", "after_backup",
               "timezone", "next_run", "policy", "keep_last", "keep_hourly", "keep_daily",
               "keep_weekly", "keep_monthly", "keep_yearly", "bwlimit", "active", "created",
               "last_started", "last_ok", "last_error"}


def test_a_copy_is_created_named_by_definition_and_node_with_its_own_retention(site):
    out = make(site, "--schedule", "30 3 * * *", "--keep-monthly", "12", "--bwlimit", "20M")
    assert out.stdout == "created copy web01/daily/b2\n"
    shown = site.json("copy", "show", "web01/daily/b2")
    assert set(shown) == JSON_FIELDS
    assert (shown["schedule"], shown["timezone"], shown["keep_monthly"], shown["bwlimit"],
            shown["after_backup"], shown["active"]) == (
        "30 3 * * *", "Europe/Prague", 12, 20 << 20, False, True)
    assert shown["policy"] == "keep-monthly 12"
    assert shown["next_run"] is not None and shown["last_started"] is None
    assert [c["copy"] for c in site.json("copy", "list")] == ["web01/daily/b2"]
    assert site.json("copy", "list", "--node", "b1") == []


@pytest.mark.parametrize("args, code, says", [
    (["--node", "b1", "--storage", "tank", "--after-backup"], 2, "a copy goes to another node"),
    (["--node", "c1", "--storage", "tank", "--after-backup"], 2, "no backup role"),
    (["--node", "b2", "--storage", "tank", "--after-backup"], 4, "tank"),
    (["--node", "b2", "--storage", "vault"], 2, "--schedule CRON or --after-backup"),
    (["--node", "b2", "--storage", "vault", "--schedule", "61 * * * *"], 2, "minute"),
    (["--node", "b2", "--storage", "vault", "--after-backup", "--bwlimit", "1X"], 2,
     "bandwidth limit"),
    (["--node", "nope", "--storage", "vault", "--after-backup"], 4, "nope"),
])
def test_a_bad_copy_is_refused_in_one_line_and_nothing_is_saved(site, args, code, says):
    err = site.fails(code, "copy", "create", "web01/daily", *args)
    assert says in err and len(err.strip().splitlines()) == 1
    assert site.json("copy", "list") == []


def test_one_copy_per_definition_and_node(site):
    make(site, "--after-backup")
    assert "exists" in site.fails(2, "copy", "create", "web01/daily", "--node", "b2",
                                  "--storage", "vault", "--schedule", "0 2 * * *")


def test_update_changes_only_what_is_given_and_delete_keeps_nothing_else(site):
    make(site, "--schedule", "0 2 * * *", "--keep-last", "3")
    site.ok("copy", "update", "web01/daily/b2", "--inactive", "--keep-daily", "7")
    shown = site.json("copy", "show", "web01/daily/b2")
    assert (shown["active"], shown["keep_last"], shown["keep_daily"], shown["schedule"]) == (
        False, 3, 7, "0 2 * * *")
    assert shown["next_run"] is None  # inactive: never on schedule
    site.fails(2, "copy", "update", "web01/daily/b2")
    site.fails(2, "copy", "update", "web01/daily/b2", "--schedule", "")  # neither way left
    assert "not confirmed" in site.fails(2, "copy", "delete", "web01/daily/b2")
    site.ok("copy", "delete", "web01/daily/b2", "--yes")
    assert site.json("copy", "list") == []
    assert "no such copy" in site.fails(4, "copy", "show", "web01/daily/b2")
    assert "VM/DEFINITION/NODE" in site.fails(2, "copy", "show", "web01/daily")


def test_a_vmowner_sees_copies_of_its_servers_and_changes_none(site, monkeypatch):
    make(site, "--after-backup")
    site.ok("user", "create", "olga", "--role", "vmowner")
    site.ok("vm", "update", "web01", "--owner", "olga")
    monkeypatch.setattr(auth, "os_user", lambda: ("olga", 4242))
    assert [c["copy"] for c in site.json("copy", "list")] == ["web01/daily/b2"]
    site.fails(3, "copy", "update", "web01/daily/b2", "--inactive")
    site.fails(3, "copy", "delete", "web01/daily/b2", "--yes")
    site.fails(3, "copy", "run", "web01/daily/b2")
    monkeypatch.setattr(auth, "os_user", lambda: ("root", 0))
    site.ok("user", "create", "victor", "--role", "vmowner")
    monkeypatch.setattr(auth, "os_user", lambda: ("victor", 4245))
    assert site.json("copy", "list") == []
    site.fails(3, "copy", "show", "web01/daily/b2")


def test_backup_list_says_where_each_backup_lives(site):
    make(site, "--after-backup")
    cat = Catalog.open(site.catalog)
    try:
        d = cat.definition("web01", "daily")
        made = [cat.add_backup(Backup(
            name=f"daily-2026112{i}_010000", vm="web01", vm_uuid=d.vm and
            cat.vm("web01").uuid, disk_id=1, type="dataset",
            created=f"2026-11-2{i}T01:00:00+00:00", status="ok", node="b1", storage="tank",
            definition="daily", location=f"tank/backups/ds/x@esb-daily-2026112{i}_010000"),
            definition_id=d.id) for i in (5, 6)]
        copy_id = cat.copy_definition(d.id, "b2").id
        cat.add_location(made[0].id, "b2", "vault", copy_id, status="ok",
                         created=made[0].created, size=42, location="vault/backups/ds/x@s")
    finally:
        cat.close()
    listed = site.json("backup", "list")
    assert [[(loc["node"], loc["status"], loc["primary"]) for loc in b["locations"]]
            for b in listed] == [[("b1", "ok", True), ("b2", "ok", False)],
                                 [("b1", "ok", True)]]
    assert listed[0]["locations"][1]["size"] == 42
    table = site.ok("backup", "list").stdout.splitlines()
    assert "b1 +1" in table[2] and "b1 +1" not in table[3]
    full = site.ok("backup", "list", "--full").stdout
    assert "b1:tank ok, b2:vault ok" in full
    # a backup whose primary is lost but whose copy is ok may be restored; on b1 alone not
    cat = Catalog.open(site.catalog)
    try:
        for b in cat.backups():
            cat.update_backup(b, status="lost")
    finally:
        cat.close()
    assert "is lost" in site.fails(2, "backup", "restore", f"web01/{made[1].name}", "--yes")
    assert "is lost" in site.fails(2, "backup", "restore", f"web01/{made[0].name}", "--yes",
                                   "--from", "b1")
