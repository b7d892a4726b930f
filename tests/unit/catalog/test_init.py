"""Only `catalog init` makes a catalog; a missing, empty, swapped or damaged one is
refused with one line and its exit code; a failed write to stdout is said as such."""
import os
import sqlite3
import subprocess
import sys

import pytest

from esbackup.catalog import schema
from tests.conftest import Esbackup

MISSING_CATALOG_COMMANDS = [
    ("run", "--due"),
    ("run", "web01/daily"),
    ("backup", "sync"),
    ("backup", "list"),
    ("metrics", "--textfile", "{dir}/esbackup.prom"),
    ("node", "create", "c1", "--address", "127.0.0.2", "--no-connect"),
    ("dc", "list"),
    ("history",),
    ("cron",),
    ("user", "create", "olga", "--role", "vmowner"),
]


@pytest.mark.parametrize("argv", MISSING_CATALOG_COMMANDS, ids=" ".join)
def test_a_command_on_a_missing_catalog_exits_3_naming_catalog_init_and_creates_nothing(
        tmp_path, argv):
    esb = Esbackup(tmp_path / "typo" / "catalog.db")
    err = esb.fails(3, *(a.format(dir=tmp_path) for a in argv))
    assert err == (f"Error: no catalog at {esb.catalog}: create it with "
                   f"`esbackup catalog init {esb.catalog}`\n")
    assert os.listdir(tmp_path) == []  # no catalog, no directory, no metrics textfile


def test_an_empty_catalog_file_is_not_filled_in_by_other_commands(tmp_path):
    esb = Esbackup(tmp_path / "catalog.db")
    esb.catalog.touch(mode=0o600)
    assert "is empty: create it with `esbackup catalog init" in esb.fails(3, "run", "--due")
    assert esb.catalog.stat().st_size == 0


def test_catalog_init_makes_a_private_catalog_and_is_safe_to_repeat(tmp_path):
    esb = Esbackup(tmp_path / "new" / "dir" / "catalog.db")
    out = esb.ok("catalog", "init").stdout
    assert out == f"catalog {esb.catalog} ready (schema version {schema.SCHEMA_VERSION})\n"
    assert oct(esb.catalog.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "new").stat().st_mode & 0o777) == "0o700"
    esb.ok("dc", "create", "prague")
    again = esb.ok("catalog", "init", str(esb.catalog)).stdout
    assert "already exists" in again and "prague" in esb.ok("dc", "list").stdout


def test_catalog_init_takes_the_path_as_an_argument(tmp_path):
    other = tmp_path / "other.db"
    Esbackup(tmp_path / "unused.db").ok("catalog", "init", str(other))
    assert other.exists() and not (tmp_path / "unused.db").exists()
    Esbackup(other).ok("dc", "list")


def test_a_postgresql_catalog_is_made_only_by_catalog_init(pg_catalog):
    esb = Esbackup(pg_catalog)
    assert "create it with `esbackup catalog init" in esb.fails(3, "run", "--due")
    assert "create it with" in esb.fails(3, "node", "create", "c1", "--address", "h",
                                         "--no-connect")
    esb.init()
    assert "ready (schema version" in esb.ok("catalog", "init").stdout
    esb.ok("node", "create", "c1", "--address", "h", "--no-connect")


def test_a_catalog_is_never_created_or_opened_through_a_symlink(tmp_path, esb):
    aim = tmp_path / "elsewhere" / "root-owned.db"
    aim.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(aim)
    assert "not a regular file" in esb.fails(3, "catalog", "copy", str(link))
    assert "not a regular file" in Esbackup(link).fails(3, "catalog", "init")
    assert not aim.exists()
    os.symlink(esb.catalog, tmp_path / "alias.db")
    assert "not a regular file" in Esbackup(tmp_path / "alias.db").fails(3, "dc", "list")


def test_a_symlinked_journal_file_is_refused(tmp_path, esb):
    esb.ok("dc", "list")
    wal = tmp_path / "catalog.db-wal"
    wal.unlink(missing_ok=True)
    wal.symlink_to(tmp_path / "elsewhere")
    assert "-wal is a symlink" in esb.fails(3, "dc", "list")


def test_a_catalog_is_not_made_in_a_directory_others_may_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    esb = Esbackup(shared / "catalog.db")
    assert "writable by others" in esb.fails(3, "catalog", "init")
    assert not esb.catalog.exists()
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot swap a file of ours
    esb.ok("catalog", "init")
    shared.chmod(0o777)
    assert "writable by others" in esb.fails(3, "dc", "list")


def test_a_damaged_catalog_exits_5_in_one_line(tmp_path, esb):
    esb.ok("dc", "create", "prague")
    page = sqlite3.connect(esb.catalog).execute("PRAGMA page_size").fetchone()[0]
    sqlite3.connect(esb.catalog).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    with open(esb.catalog, "r+b") as file:  # every page after the first, overwritten
        file.seek(page)
        file.write(b"\xa5" * (os.path.getsize(esb.catalog) - page))
    err = esb.fails(5, "dc", "list")
    assert err.count("\n") == 1 and "is damaged: database disk image is malformed" in err
    noise = Esbackup(tmp_path / "noise.db")
    noise.catalog.write_bytes(b"this is not an SQLite database" * 200)
    noise.catalog.chmod(0o600)
    assert "is damaged: file is not a database" in noise.fails(5, "dc", "list")


def test_a_failed_write_to_stdout_says_so_not_that_the_catalog_failed(esb):
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(esb.catalog),
                                 "dc", "list"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert (result.returncode, result.stderr) == (
        1, "Error: could not write the output: No space left on device\n")
