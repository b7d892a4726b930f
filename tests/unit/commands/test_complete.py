"""Shell completion from the catalog (commands/complete.py): Click's own
completion machinery on a real SQLite catalog, the way bash's hook calls it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

from esbackup.catalog.core import Catalog
from esbackup.cli import cli
from esbackup.commands import complete
from esbackup.domain.auth import Identity, can_read_vm
from esbackup.domain.models import VM, Backup, Definition
from tests.unit.shared import UUID

ROOT = Path(__file__).resolve().parents[3]


def completions(*words: str, incomplete: str) -> list[str]:
    """What `esbackup WORDS... INCOMPLETE<TAB>` offers."""
    found = BashComplete(cli, {}, "esbackup", "_ESBACKUP_COMPLETE").get_completions(
        list(words), incomplete)
    return [item.value for item in found]


@pytest.fixture
def catalog(inventory) -> Path:
    """web01 (daily, weekly; three backups), web02, web_x (daily each), webzz
    (nothing), db1 (daily), on nodes c1 and b1."""
    for hostname in ("web02", "web_x", "webzz", "db1"):
        inventory.ok("vm", "create", hostname, "--node", "c1", "--disk", f"1=zones/{hostname}")
    for ref in ("web01/daily", "web01/weekly", "web02/daily", "web_x/daily", "db1/daily"):
        inventory.ok("definition", "create", ref, "--disk-id", "1", "--type", "file", "--node",
                     "b1", "--storage", "tank", "--schedule", "0 1 * * *", "--retention", "3",
                     "--timezone", "UTC")
    cat = Catalog.open(inventory.catalog)
    for day, name in ((26, "daily-b"), (24, "daily-c"), (25, "weekly-a")):
        cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="file",
                              created=f"2026-11-{day}T01:00:00+00:00", status="ok", node="b1",
                              storage="tank", definition=name.split("-")[0]))
    cat.close()
    return Path(inventory.catalog)


def test_definition_references_complete_by_prefix_with_underscore_taken_literally(catalog):
    def offered(incomplete: str) -> list[str]:
        return completions("--catalog", str(catalog), "definition", "show",
                           incomplete=incomplete)

    assert offered("") == ["db1/daily", "web01/daily", "web01/weekly", "web02/daily",
                           "web_x/daily"]
    assert offered("web") == ["web01/daily", "web01/weekly", "web02/daily", "web_x/daily"]
    assert offered("web_") == ["web_x/daily"]  # not LIKE's any-one-character
    assert offered("web01/w") == ["web01/weekly"]
    assert offered("web0/") == []  # the VM part is whole once a slash is typed
    assert offered("%") == []
    assert completions("--catalog", str(catalog), "run", incomplete="d") == ["db1/daily"]
    assert completions("--catalog", str(catalog), "backup", "list", "--definition",
                       incomplete="web02") == ["web02/daily"]


def test_vm_hostnames_node_names_and_backup_references_complete_from_the_catalog(catalog):
    where = ("--catalog", str(catalog))
    assert completions(*where, "vm", "show", incomplete="web") == [
        "web01", "web02", "web_x", "webzz"]
    assert completions(*where, "vm", "show", incomplete="web_") == ["web_x"]
    assert completions(*where, "backup", "list", "--vm", incomplete="d") == ["db1"]
    assert completions(*where, "node", "show", incomplete="") == ["b1", "c1"]
    assert completions(*where, "definition", "list", "--node", incomplete="b") == ["b1"]
    # a VM's backups oldest first
    assert completions(*where, "backup", "show", incomplete="web") == [
        "web01/daily-c", "web01/weekly-a", "web01/daily-b"]
    assert completions(*where, "backup", "delete", incomplete="web01/d") == [
        "web01/daily-c", "web01/daily-b"]
    assert completions(*where, "backup", "show", incomplete="web02/") == []


def test_completion_reads_the_catalog_esbackup_catalog_names(catalog, monkeypatch):
    monkeypatch.setenv("ESBACKUP_CATALOG", str(catalog))
    assert completions("vm", "show", incomplete="d") == ["db1"]


def test_completion_offers_at_most_a_hundred_candidates_the_first_in_order(catalog):
    cat = Catalog.open(catalog)
    with cat.transaction():
        for i in range(150):
            cat.add_vm(VM(hostname=f"many{i:03d}", uuid=f"u-{i}", dc="admin", node="c1"))
    cat.close()
    assert completions("--catalog", str(catalog), "vm", "show", incomplete="many") == [
        f"many{i:03d}" for i in range(100)]


def test_completion_on_a_missing_or_foreign_catalog_offers_nothing_and_creates_nothing(
        tmp_path, capsys):
    missing = tmp_path / "typo.db"
    for where in (missing, tmp_path / "no" / "dir" / "catalog.db"):
        assert completions("--catalog", str(where), "vm", "show", incomplete="") == []
    assert list(tmp_path.iterdir()) == []
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a catalog\n")
    foreign.chmod(0o600)
    assert completions("--catalog", str(foreign), "backup", "show", incomplete="") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert capsys.readouterr() == ("", "")


def test_completion_never_writes_to_the_catalog(catalog):
    before = catalog.read_bytes()
    catalog.chmod(0o400)  # a write would fail and show as no candidates
    assert completions("--catalog", str(catalog), "vm", "show", incomplete="db") == ["db1"]
    assert catalog.read_bytes() == before


def test_each_roles_completion_scope_selects_exactly_the_vms_it_may_list(tmp_path):
    cat = Catalog.open(tmp_path / "catalog.db", create=True)
    from esbackup.domain.models import DC, Node, Storage, User

    cat.add_dc(DC(name="dc2"))
    cat.add_node(Node(name="c1", address="127.0.0.2", compute=True, backup=True))
    cat.add_storage(Storage(node="c1", name="tank", zpool="tank"))
    vms = [cat.add_vm(VM(hostname=h, uuid=f"u-{h}", dc=dc, node="c1", owner=owner,
                         disks={1: f"zones/{h}"}))
           for h, dc, owner in (("a1", "admin", "alice"), ("a2", "admin", None),
                                ("b1", "dc2", "alice"), ("b2", "dc2", "bob"))]
    for vm in vms:
        cat.add_definition(Definition(vm=vm.hostname, name="daily", disk_id=1, type="file",
                                      node="c1", storage="tank", schedule="0 1 * * *",
                                      timezone="UTC", keep_last=1))
        cat.add_backup(Backup(name="daily-1", vm=vm.hostname, vm_uuid=vm.uuid, disk_id=1,
                              type="file", created="2026-11-26T01:00:00+00:00", status="ok",
                              node="c1", storage="tank"))
    cat.add_user(User(name="carol", role="dcadmin", dcs=["dc2"]))
    for who in (Identity("root", "superadmin"), Identity("carol", "dcadmin", ("dc2",)),
                Identity("dave", "dcadmin", ()), Identity("alice", "vmowner"),
                Identity("bob", "vmowner", ("admin",))):
        allowed = [vm.hostname for vm in vms if can_read_vm(who, vm)]
        scope = complete.scope_of(who)
        assert cat.hostnames_from("", 100, **scope) == allowed, who
        assert cat.definition_refs_from("", 100, **scope) == [f"{h}/daily" for h in allowed]
        assert cat.backup_refs_from("", 100, **scope) == [f"{h}/daily-1" for h in allowed]
    cat.delete_vm("a2")  # its backup stays: a superadmin's alone to see
    assert cat.backup_refs_from("a", 100) == ["a1/daily-1", "a2/daily-1"]
    assert cat.backup_refs_from("a", 100, dcs=("admin",)) == ["a1/daily-1"]
    cat.close()


def test_completion_imports_no_output_ssh_or_schedule_library(catalog):
    """Each TAB starts a process: what it imports is what the user waits for."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), _ESBACKUP_COMPLETE="bash_complete",
               COMP_WORDS=f"esbackup --catalog {catalog} backup show web01/w", COMP_CWORD="5")
    probe = ("import atexit, sys\n"
             "from esbackup.cli import main\n"
             "heavy = ('rich', 'paramiko', 'tabulate', 'croniter', 'psycopg')\n"
             "atexit.register(lambda: print(sorted(set(heavy) & set(sys.modules)), "
             "file=sys.stderr))\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "plain,web01/weekly-a\n", "[]\n")


def test_the_bash_script_click_prints_offers_the_catalogs_names(catalog, tmp_path):
    """The documented setup end to end: bash sources the script, its function
    runs esbackup as bash's completion would, COMPREPLY holds the candidates."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "esbackup"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m esbackup "$@"\n')
    wrapper.chmod(0o755)
    script = ('eval "$(_ESBACKUP_COMPLETE=bash_source esbackup)"\n'
              f"COMP_WORDS=(esbackup --catalog {catalog} definition show web01/)\n"
              "COMP_CWORD=5\n"
              "_esbackup_completion esbackup\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)
    assert (done.stdout, done.stderr) == ("web01/daily\nweb01/weekly\n", "")
