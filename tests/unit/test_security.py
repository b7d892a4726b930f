"""Attacks from issue 8, each on a real SQLite catalog through the CLI: every
one of these passed (or crashed) before the fix."""
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from esbackup.catalog.schema import SCHEMA_VERSION
from esbackup.domain import auth

OTHER = "3f2a5a4e-0000-4000-8000-000000000002"


def as_user(monkeypatch, name, uid=4243):
    monkeypatch.setattr(auth, "os_user", lambda: (name, uid))


@pytest.fixture
def two_dcs(inventory):
    """web01 (dc admin) with a backup, and db01 in dc2 run by dcadmin dave."""
    from esbackup.catalog.core import Catalog
    from esbackup.domain.models import Backup

    inventory.ok("dc", "create", "dc2")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--uuid", OTHER,
                 "--disk", "1=zones/db01")
    inventory.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "dc2")
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3")
    cat = Catalog.open(inventory.catalog)
    try:
        cat.add_backup(Backup(name="daily-20261126_010000", vm="web01",
                              vm_uuid="3f2a5a4e-0000-4000-8000-000000000001", disk_id=1,
                              type="dataset", created="2026-11-26T01:00:00+00:00", status="ok",
                              node="b1", storage="tank", definition="daily"))
    finally:
        cat.close()
    return inventory


# --- VM identity ----------------------------------------------------------

@pytest.mark.parametrize("hostname", ["3f2a5a4e-0000-4000-8000-000000000001",
                                      "3f2a5a4e000040008000000000000001",
                                      "3F2A5A4E-0000-4000-8000-000000000009"])
def test_hostname_may_not_look_like_a_uuid(two_dcs, monkeypatch, hostname):
    assert "may not look like a uuid" in two_dcs.fails(2, "vm", "create", hostname,
                                                       "--node", "c1", "--disk", "1=z/x")
    as_user(monkeypatch, "dave")
    assert "may not look like a uuid" in two_dcs.fails(2, "vm", "update", "db01",
                                                       "--hostname", hostname)


def test_rename_cannot_reach_another_vms_backups(two_dcs, monkeypatch):
    web01 = "3f2a5a4e-0000-4000-8000-000000000001"
    as_user(monkeypatch, "dave")
    two_dcs.fails(2, "vm", "update", "db01", "--hostname", web01)
    for argv in (["backup", "show", f"{web01}/daily-20261126_010000"],
                 ["backup", "note", f"{web01}/daily-20261126_010000", "mine"],
                 ["backup", "delete", f"{web01}/daily-20261126_010000", "--yes"],
                 ["definition", "show", f"{web01}/daily"]):
        two_dcs.fails(3, *argv)
    assert two_dcs.json("backup", "list") == []


def test_a_vmowner_may_not_start_a_verify_that_takes_the_disk_lock(two_dcs, monkeypatch):
    # a verify holds the disk's lock and a node slot for as long as it reads:
    # a read-only user looping it would keep the disk's scheduled backups out
    two_dcs.ok("user", "create", "olga", "--role", "vmowner")
    two_dcs.ok("vm", "update", "web01", "--owner", "olga")
    as_user(monkeypatch, "olga")
    assert two_dcs.json("backup", "show", "web01/daily-20261126_010000")["status"] == "ok"
    assert "may not change virtual server web01" in two_dcs.fails(
        3, "backup", "verify", "web01/daily-20261126_010000")


def test_a_uuid_may_not_be_another_vms_name(two_dcs):
    web01 = "3f2a5a4e-0000-4000-8000-000000000001"
    conn = sqlite3.connect(two_dcs.catalog)  # a hostname from before the rule
    conn.execute("UPDATE vms SET hostname = ? WHERE hostname = 'db01'", (OTHER.replace("2", "7"),))
    conn.commit()
    conn.close()
    for uuid in (web01, OTHER.replace("2", "7")):
        assert "already names virtual server" in two_dcs.fails(
            2, "vm", "create", "x9", "--node", "c1", "--uuid", uuid, "--disk", "1=z/x9")


def test_a_reference_that_means_two_vms_is_refused(two_dcs):
    """A catalog from before the rule (or edited by hand) keeps working: the
    reference is refused, never resolved to one of them at random."""
    web01 = "3f2a5a4e-0000-4000-8000-000000000001"
    conn = sqlite3.connect(two_dcs.catalog)
    conn.execute("UPDATE vms SET hostname = ? WHERE hostname = 'db01'", (web01,))
    conn.commit()
    conn.close()
    assert "names two virtual servers" in two_dcs.fails(2, "vm", "show", web01)
    two_dcs.fails(2, "backup", "show", f"{web01}/daily-20261126_010000")
    two_dcs.fails(2, "definition", "show", f"{web01}/daily")
    two_dcs.fails(2, "backup", "restore", "web01/daily-20261126_010000", "--target-vm", web01,
                  "--yes")


# --- catalogs ---------------------------------------------------------------

def test_catalog_others_can_write_is_refused_with_the_fix(esb):
    esb.ok("dc", "list")
    os.chmod(esb.catalog, 0o666)
    assert f"chmod go-w {esb.catalog}" in esb.fails(3, "dc", "list")


def test_catalog_another_user_can_write_is_refused(esb):
    esb.ok("dc", "list")
    os.chown(esb.catalog, 65534, -1)  # nobody's: they could add nodes that run as root
    assert "belongs to uid 65534" in esb.fails(3, "dc", "list")


def test_foreign_sqlite_file_is_refused_not_migrated(tmp_path):
    from tests.conftest import Esbackup

    esb = Esbackup(tmp_path / "foreign.db")
    conn = sqlite3.connect(esb.catalog)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    os.chmod(esb.catalog, 0o600)
    assert "not an esbackup catalog" in esb.fails(2, "dc", "list")
    tables = sqlite3.connect(esb.catalog).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("accounts",)]


def test_newer_schema_is_refused(esb):
    esb.ok("dc", "list")
    conn = sqlite3.connect(esb.catalog)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', 'x')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    assert "upgrade esbackup" in esb.fails(1, "dc", "list")


def run_cli(catalog, *argv):
    return subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(catalog), *argv],
                          capture_output=True, text=True)


def test_missing_table_is_one_line(esb):
    esb.ok("dc", "list")
    conn = sqlite3.connect(esb.catalog)
    conn.execute("DROP TABLE users")
    conn.commit()
    conn.close()
    result = run_cli(esb.catalog, "user", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "no such table: users" in result.stderr


def test_busy_catalog_exits_5(esb, monkeypatch):
    from esbackup.catalog import sqlite as catalog_sqlite

    esb.ok("dc", "list")
    monkeypatch.setattr(catalog_sqlite, "BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(esb.catalog, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert "catalog busy" in esb.fails(5, "dc", "create", "x")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_read_only_catalog_is_one_line(esb):
    esb.ok("dc", "list")
    uri = f"file:{esb.catalog}?mode=ro"
    from esbackup.catalog import sqlite as catalog_sqlite

    real = sqlite3.connect

    def read_only(path, *args, **kwargs):
        return real(uri, *args, uri=True, **kwargs)

    catalog_sqlite.sqlite3.connect = read_only
    try:
        assert "read-only" in esb.fails(1, "dc", "create", "x")
    finally:
        catalog_sqlite.sqlite3.connect = real


# --- generated text ---------------------------------------------------------

@pytest.mark.parametrize("user", ["root\n* * * * * root id", "root id", "r;x", "-u", "é", ""])
def test_cron_refuses_a_user_that_is_not_a_plain_name(esb, user):
    assert "invalid user" in esb.fails(2, "cron", "--user", user)


def test_cron_quotes_the_catalog_path(tmp_path):
    from tests.conftest import Esbackup

    odd = Esbackup(tmp_path / "my cat; rm -rf ~ %x" / "catalog.db").init()
    lines = odd.ok("cron").stdout.splitlines()
    tick = lines[2]
    assert "'" in tick and "\\%x" in tick and len(lines) == 6
    import shlex

    argv = shlex.split(tick.split(" root ", 1)[1].replace("\\%", "%"))
    assert argv[argv.index("--catalog") + 1] == str(odd.catalog)


@pytest.mark.parametrize("argv", [
    ["dc", "create", "d9", "--desc", "a\nb"],
    ["dc", "create", "d9", "--desc", "\x1b[2J"],
    ["node", "create", "n9", "--address", "h", "--no-connect", "--key", "/k\n"],
    ["node", "create", "n9", "--address", "h\r", "--no-connect"],
    ["node", "create", "web\n", "--address", "h", "--no-connect"],
    ["vm", "create", "x9\n", "--node", "c1", "--disk", "1=z/x9"],
    ["definition", "create", "web01/d9", "--disk-id", "1", "--type", "dataset", "--node",
     "b1", "--storage", "tank", "--schedule", "0 1 * * *", "--retention", "1",
     "--desc", "x\ny"],
    ["vm", "update", "web01", "--qga-socket", "/run/q\x1b"],
])
def test_control_characters_refused_everywhere(inventory, argv):
    inventory.fails(2, *argv)


INVISIBLE = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
             "\u2068", "\u2069", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


@pytest.mark.parametrize("char", INVISIBLE)
def test_bidirectional_and_zero_width_characters_refused_like_control_ones(inventory, char):
    # "Trojan Source": a note that reads as other text than it stores
    for argv in (["dc", "create", "d9", "--desc", f"safe{char}txt.exe"],
                 ["definition", "create", "web01/d9", "--disk-id", "1", "--type", "dataset",
                  "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                  "--retention", "1", "--desc", f"x{char}y"],
                 ["vm", "update", "web01", "--qga-socket", f"/run/q{char}"],
                 ["node", "create", "n9", "--address", "h", "--no-connect",
                  "--key", f"/k{char}"]):
        assert "zero-width characters are not allowed" in inventory.fails(2, *argv)
    assert [d["name"] for d in inventory.json("dc", "list")] == ["admin"]


def test_bidirectional_characters_already_stored_are_shown_escaped(inventory):
    conn = sqlite3.connect(inventory.catalog)
    conn.execute("""UPDATE dcs SET "desc" = 'a' || char(8238) || 'b' || char(65279)""")
    conn.commit()
    conn.close()
    for fmt in ("table", "plain", "csv", "tsv"):
        out = inventory.ok("dc", "list", "-f", fmt).stdout
        assert "\u202e" not in out and "a\\u202eb\\ufeff" in out


def test_control_characters_escaped_in_tables(inventory):
    conn = sqlite3.connect(inventory.catalog)
    conn.execute("""UPDATE dcs SET "desc" = 'a' || char(27) || '[2J' || char(10) || 'b'""")
    conn.commit()
    conn.close()
    for fmt in ("table", "plain", "csv", "tsv"):
        out = inventory.ok("dc", "list", "-f", fmt).stdout
        assert "\x1b" not in out and "\\x1b[2J\\nb" in out


def test_a_description_a_spreadsheet_would_run_is_quoted_in_csv_and_tsv(inventory):
    inventory.ok("dc", "create", "d9", "--desc", "=cmd|' /C calc'!A0")
    assert "d9,'=cmd|' /C calc'!A0" in inventory.ok("dc", "list", "-f", "csv").stdout
    assert "d9\t'=cmd|' /C calc'!A0" in inventory.ok("dc", "list", "-f", "tsv").stdout


# --- input bounds -----------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["node", "create", "n9", "--address", "h:0", "--no-connect"],
    ["node", "create", "n9", "--address", "h:65536", "--no-connect"],
    ["node", "create", "n9", "--address", "h:٢٢", "--no-connect"],
    ["node", "create", "n9", "--address", "x" * 300, "--no-connect"],
    ["node", "create", "n9", "--address", "-oProxyCommand=id", "--no-connect"],
    ["node", "create", "n9", "--address", "h", "--no-connect", "--max-backups", "10" * 20],
    ["node", "create", "n9", "--address", "h", "--no-connect", "--max-backups", "٣"],
    ["node", "create", "n9", "--address", "h", "--no-connect", "--key", "/" + "k" * 2000],
    ["vm", "create", "x9", "--node", "c1", "--disk", "²=z/x9"],
    ["vm", "create", "x9", "--node", "c1", "--disk", "١=z/x9"],
    ["vm", "create", "x9", "--node", "c1", "--disk", "99999999999999999999999=z/x9"],
    ["vm", "create", "x9", "--node", "c1", "--disk", "1=tank/-x"],
    ["vm", "create", "x9", "--node", "c1", "--disk", "1=1tank/x"],
    ["storage", "create", "b1", "s9", "--zpool", "tank/-x"],
    ["storage", "create", "b1", "s9", "--zpool", "9tank"],
    ["history", "--limit", "-1"],
    ["history", "--limit", "1" * 30],
    ["backup", "now", "web01/x", "--wait", "inf"],
    ["backup", "now", "web01/x", "--wait", "nan"],
    ["backup", "now", "web01/x", "--wait", "-1"],
    ["backup", "now", "web01/x", "--wait", "1e400"],
    ["run", "web01/x", "--wait", "nan"],
    ["backup", "verify", "web01/x", "--wait", "nan"],
    ["backup", "verify", "web01/x", "--wait", "inf"],
    ["backup", "verify", "web01/x", "--wait", "-1"],
    ["backup", "restore", "web01/x", "--target-disk-id", "1" * 30, "--yes"],
])
def test_numbers_and_names_out_of_range_exit_2(inventory, argv):
    result = inventory(*argv)
    assert result.exit_code == 2, (argv, result.output)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("option, value", [
    ("--retention", "-1"), ("--retention", "9" * 25), ("--retention", "٣"),
    ("--disk-id", "9" * 25), ("--disk-id", "0"), ("--bwlimit", "9" * 25 + "G"),
    ("--bwlimit", "١M"), ("--schedule", "٠ 1 * * *"), ("--schedule", "0 1 * * *\n"),
    ("--timezone", "UTC\n"),
])
def test_definition_numbers_out_of_range_exit_2(inventory, option, value):
    args = {"--disk-id": "1", "--type": "dataset", "--node": "b1", "--storage": "tank",
            "--schedule": "0 1 * * *", "--retention": "3"}
    args[option] = value
    argv = [x for pair in args.items() for x in pair]
    inventory.fails(2, "definition", "create", "web01/d9", *argv)
    assert inventory.json("definition", "list") == []


# --- small rules --------------------------------------------------------------

def test_vm_delete_with_definitions_asks(two_dcs):
    two_dcs.ok("definition", "create", "db01/daily", "--disk-id", "1", "--type", "dataset",
               "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
               "--retention", "3")
    assert "--yes" in two_dcs.fails(2, "vm", "delete", "db01")
    assert two_dcs.json("vm", "show", "db01")["hostname"] == "db01"
    two_dcs.ok("vm", "delete", "db01", "--yes")


def test_dcadmin_sees_only_the_nodes_and_storages_their_vms_use(two_dcs, monkeypatch):
    two_dcs.ok("node", "create", "b2", "--address", "127.0.0.9", "--backup", "--no-compute",
               "--no-connect", "--key", "/root/.ssh/secret")
    two_dcs.ok("storage", "create", "b2", "vault", "--zpool", "vault")
    as_user(monkeypatch, "dave")
    nodes = two_dcs.json("node", "list")
    assert [n["name"] for n in nodes] == ["c1"]
    assert all("key_path" not in n and "ssh_config" not in n for n in nodes)
    two_dcs.fails(3, "node", "show", "b2")
    assert two_dcs.json("storage", "list") == []
    two_dcs.ok("definition", "create", "db01/daily", "--disk-id", "1", "--type", "dataset",
               "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
               "--retention", "3")
    assert [n["name"] for n in two_dcs.json("node", "list")] == ["b1", "c1"]
    assert [s["name"] for s in two_dcs.json("storage", "list")] == ["tank"]
    assert "key_path" not in two_dcs.json("node", "show", "b1")


def test_catalog_files_stay_private(esb):
    esb.ok("dc", "list")
    assert not stat.S_IMODE(esb.catalog.stat().st_mode) & 0o077


def test_errors_escape_what_the_user_typed(inventory):
    err = inventory.fails(4, "vm", "show", "web\x1b[2J\x07")
    assert "\x1b" not in err and "\x07" not in err and "web\\x1b[2J\\x07" in err


@pytest.mark.parametrize("spoil", ["symlink", "group-writable dir", "missing"])
def test_sudo_system_catalog_must_be_roots_own_file(inventory, monkeypatch, tmp_path, spoil):
    from esbackup.catalog import location

    inventory.ok("user", "create", "nobody", "--role", "superadmin")
    system = tmp_path / "system" / "catalog.db"
    system.parent.mkdir()
    if spoil == "symlink":
        system.symlink_to(inventory.catalog)
    elif spoil == "group-writable dir":
        os.replace(inventory.catalog, system)
        system.parent.chmod(0o775)
    monkeypatch.setattr(location, "SYSTEM_PATH", system)
    monkeypatch.setenv("SUDO_USER", "nobody")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    from tests.conftest import Esbackup

    Esbackup(system).fails(3, "dc", "list")
    assert spoil != "missing" or not system.exists()


def test_one_transaction_with_savepoints(esb):
    """rebuild's shape: a failing inner step rolls back only itself; a failing
    outer transaction rolls back everything."""
    from esbackup.catalog.core import Catalog
    from esbackup.domain.models import DC
    from esbackup.errors import InvalidInput

    esb.ok("dc", "list")
    cat = Catalog.open(esb.catalog)
    try:
        with cat.transaction():
            cat.add_dc(DC("kept"))
            with pytest.raises(InvalidInput), cat.transaction():
                cat.add_dc(DC("dropped"))
                cat.add_dc(DC("kept"))  # exists: the inner step fails
        assert [d.name for d in cat.dcs()] == ["admin", "kept"]
        with pytest.raises(RuntimeError), cat.transaction():
            cat.add_dc(DC("gone"))
            raise RuntimeError("node lost mid-rebuild")
        assert [d.name for d in cat.dcs()] == ["admin", "kept"]
    finally:
        cat.close()
