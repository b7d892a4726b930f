"""The command line on a PostgreSQL catalog: one-line failures, `catalog copy`
both ways with every listing matching, and the admin host in `history`."""
import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Run
from lab.postgres import free_port
from tests.conftest import Esbackup

LISTINGS = [("dc", "list"), ("node", "list"), ("storage", "list"), ("vm", "list"),
            ("definition", "list"), ("backup", "list"), ("history",), ("user", "list")]


def test_unreachable_server_is_one_line_exit_1():
    esb = Esbackup(f"postgresql://esbackup@127.0.0.1:{free_port()}/esbackup")
    err = esb.fails(1, "dc", "list")
    assert err.count("\n") == 1 and "127.0.0.1" in err


def test_refused_authentication_is_one_line_exit_1(pg_catalog, monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    monkeypatch.setenv("PGPASSWORD", "wrong")
    err = Esbackup(pg_catalog).fails(1, "dc", "list")
    assert err.count("\n") == 1 and "password authentication failed" in err


def test_password_in_a_url_is_not_printed(pg_catalog, monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    url = pg_catalog.replace("postgres@", "postgres:sekret@")
    err = Esbackup(url.replace("/esbackup_tests", "/nosuchdb")).fails(1, "dc", "list")
    assert "sekret" not in err and ":***@" in err


def filled(inventory) -> Esbackup:
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--retention", "3",
                 "--schedule", "0 1 * * *")
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "daily")
    cat.add_backup(Backup(name="daily-20261126_010000", vm="web01", vm_uuid=cat.vm("web01").uuid,
                          disk_id=1, type="dataset", created="2026-11-26T01:00:00+00:00",
                          status="ok", node="b1", storage="tank", size=3 << 33,
                          definition="daily", location="tank/x@esb-daily-20261126_010000"),
                   definition_id=d.id)
    cat.add_run(Run(definition="web01/daily", trigger="tick", started="2026-11-26T01:00:00+00:00",
                    outcome="ok", host="admin1", firing="2026-11-26T01:00:00+00:00"))
    cat.close()
    return inventory


@pytest.mark.parametrize("direction", ["sqlite-to-postgresql", "postgresql-to-sqlite"])
def test_catalog_copy_moves_everything_and_listings_match(direction, tmp_path, pg_catalog):
    from tests.conftest import Esbackup as E

    sqlite = tmp_path / "catalog.db"
    source, target = (E(sqlite), pg_catalog) if direction.startswith("sqlite") else (
        E(pg_catalog), str(sqlite))
    source.init()
    source.ok("node", "create", "c1", "--address", "127.0.0.2", "--no-connect")
    source.ok("node", "create", "b1", "--address", "127.0.0.3", "--backup", "--no-compute",
              "--no-connect")
    source.ok("storage", "create", "b1", "tank", "--zpool", "tank")
    source.ok("vm", "create", "web01", "--node", "c1", "--disk", "1=zones/web01-disk0",
              "--uuid", "3f2a5a4e-0000-4000-8000-000000000001")
    filled(source)
    out = source.ok("catalog", "copy", target).stdout
    assert "1 vms, 1 disks, 1 definitions, 1 backups, 1 runs, 1 users" in out
    copy = E(target)
    for listing in LISTINGS:
        assert copy.json(*listing) == source.json(*listing), listing
    copy.ok("definition", "create", "web01/weekly", "--disk-id", "1", "--type", "dataset",
            "--node", "b1", "--storage", "tank", "--retention", "3", "--schedule", "0 2 * * 0")
    assert "already holds data" in source.fails(2, "catalog", "copy", target)


def test_history_names_the_admin_host(inventory, monkeypatch):
    filled(inventory)
    [run] = inventory.json("history")
    assert run["host"] == "admin1" and run["firing"] == "2026-11-26T01:00:00+00:00"
    assert "admin1" in inventory.ok("history", "--full").stdout


def test_cron_lines_quote_a_catalog_url(pg_catalog):
    import shlex

    line = Esbackup(pg_catalog).init().ok("cron").stdout.splitlines()[2]
    words = shlex.split(line.replace("\\%", "%"))  # cron's '%' is escaped
    assert words[words.index("--catalog") + 1] == pg_catalog
    assert words[-2:] == ["run", "--due"]


def test_through_sudo_a_postgresql_catalog_is_refused(pg_catalog, monkeypatch):
    from esbackup.domain import auth

    monkeypatch.setattr(auth, "via_sudo", lambda: True)
    monkeypatch.setattr(auth, "os_user", lambda: ("mallory", 4242))
    assert "through sudo" in Esbackup(pg_catalog).fails(3, "dc", "list")


def test_a_role_without_rights_is_one_line_exit_1(postgres, pg_catalog):
    Esbackup(pg_catalog).init()  # the schema exists
    schema = pg_catalog.rsplit("%3D", 1)[1]
    postgres.sql("CREATE ROLE reader LOGIN PASSWORD 'r'", "esbackup_tests")
    postgres.sql(f"GRANT USAGE ON SCHEMA {schema} TO reader; "
                 f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO reader", "esbackup_tests")
    err = Esbackup(pg_catalog.replace("postgres@", "reader:r@")).fails(1, "dc", "list")
    assert err.count("\n") == 1 and "permission denied" in err and ":r@" not in err


def test_a_postgresql_catalog_without_psycopg_is_one_line_naming_the_extra():
    import subprocess
    import sys

    program = ("import sys; sys.modules['psycopg'] = None\n"  # as if it were not installed
               "from esbackup.cli import main\n"
               "sys.argv = ['esbackup', '--catalog', 'postgresql://u@127.0.0.1:9/db', 'dc', "
               "'list']\nmain()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    assert done.stderr == ("Error: a postgresql:// catalog needs psycopg: "
                           "pip install 'esbackup[postgresql]'\n")
