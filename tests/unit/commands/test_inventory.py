"""dc, node, storage, vm and user commands on a real SQLite catalog."""
import os
import stat
import sys

import pytest

from esbackup.domain import auth


def test_version_and_help_do_not_import_ssh_progress_or_postgresql(esb):
    assert esb.ok("--version").stdout.startswith("esbackup, version ")
    code = ("import sys; from click.testing import CliRunner; from esbackup.cli import cli;"
            "CliRunner().invoke(cli, ['--help']); CliRunner().invoke(cli, ['dc', 'list']);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('paramiko', 'rich', 'psycopg')))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "ESBACKUP_CATALOG": str(esb.catalog)}, check=True)
    assert out.stdout.strip() == "[]"


def test_help_opens_no_catalog_driver():
    import subprocess

    code = ("import sys; from click.testing import CliRunner; from esbackup.cli import cli;"
            "CliRunner().invoke(cli, ['--help']); CliRunner().invoke(cli, ['run', '--help']);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlite3', 'psycopg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_catalog_created_private(esb):
    esb.ok("dc", "list")
    assert stat.S_IMODE(esb.catalog.stat().st_mode) == 0o600


def test_catalog_directory_private(tmp_path, esb):
    from tests.conftest import Esbackup

    nested = Esbackup(tmp_path / "new" / "dir" / "catalog.db")
    nested.init()
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700


def test_dc_lifecycle(esb):
    assert [d["name"] for d in esb.json("dc", "list")] == ["admin"]
    esb.ok("dc", "create", "prague", "--desc", "Prague DC")
    assert {"name": "prague", "desc": "Prague DC"} in esb.json("dc", "list")
    assert "exists" in esb.fails(2, "dc", "create", "prague")
    esb.ok("dc", "delete", "prague")
    assert "no such dc: prague" in esb.fails(4, "dc", "delete", "prague")


def test_dc_with_vms_cannot_be_deleted(inventory):
    inventory.ok("dc", "create", "dc2")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--disk", "1=z/db")
    assert "still has virtual servers" in inventory.fails(2, "dc", "delete", "dc2")


def test_dc_admin_cannot_be_deleted(esb):
    assert "cannot be deleted" in esb.fails(2, "dc", "delete", "admin")
    assert [d["name"] for d in esb.json("dc", "list")] == ["admin"]


@pytest.mark.parametrize("name", ["", "a b", "x;y", "$(id)", "`id`", "a/b", "-x", "..", "é"])
def test_bad_names_refused(esb, name):
    assert "invalid dc name" in esb.fails(2, "dc", "create", "--", name)


def test_node_create_no_connect_and_show(inventory):
    node = inventory.json("node", "show", "b1")
    assert node["address"] == "127.0.0.3" and node["port"] == 22
    assert node["backup"] is True and node["compute"] is False
    assert node["host_key"] is None and node["max_backups"] == 2
    assert node["transfer"] == "relay" and node["hypervisor"] == "none"


def test_node_address_with_port_and_update(inventory):
    inventory.ok("node", "update", "c1", "--address", "10.0.0.9:2222", "--max-backups", "4",
                 "--transfer", "direct", "--hypervisor", "smartos")
    node = inventory.json("node", "show", "c1")
    assert (node["address"], node["port"], node["max_backups"]) == ("10.0.0.9", 2222, 4)
    assert (node["transfer"], node["hypervisor"]) == ("direct", "smartos")


@pytest.mark.parametrize("args, message", [
    (["--address", "host:99999"], "invalid port"),
    (["--address", "a b"], "invalid address"),
    (["--address", "h", "--no-compute"], "needs a role"),
    (["--address", "h", "--max-backups", "0"], "not in the range 1 to"),
])
def test_node_bad_input(esb, args, message):
    assert message in esb.fails(2, "node", "create", "n1", "--no-connect", *args)


def test_node_list_full_and_formats(inventory):
    table = inventory.ok("node", "list").stdout
    assert "b1" in table and "Host key" not in table
    assert "Host key" in inventory.ok("node", "list", "--full").stdout
    csv = inventory.ok("node", "list", "-f", "csv").stdout.splitlines()
    assert csv[0].startswith("name,address,compute,backup")
    assert inventory.ok("node", "list", "-f", "github").stdout.startswith("| Name")
    assert "unknown format" in inventory.fails(2, "node", "list", "-f", "nope")


def test_node_delete_refused_while_used(inventory):
    assert "still has virtual servers" in inventory.fails(2, "node", "delete", "c1")
    assert "still has storages" in inventory.fails(2, "node", "delete", "b1")
    inventory.ok("storage", "delete", "b1", "tank")
    inventory.ok("node", "delete", "b1")
    inventory.fails(4, "node", "show", "b1")


def test_storage_needs_backup_role_and_valid_pool(inventory):
    assert "no backup role" in inventory.fails(2, "storage", "create", "c1", "s", "--zpool", "z")
    assert "invalid dataset" in inventory.fails(2, "storage", "create", "b1", "s", "--zpool",
                                                "tank; rm -rf /")
    assert "no such node" in inventory.fails(4, "storage", "create", "zz", "s", "--zpool", "z")
    assert inventory.json("storage", "list", "b1") == [
        {"node": "b1", "name": "tank", "zpool": "tank"}]


def test_vm_create_show_update_delete(inventory):
    vm = inventory.json("vm", "show", "web01")
    assert vm["dc"] == "admin" and vm["brand"] == "kvm"
    assert vm["disks"] == {"1": "zones/web01-disk0", "2": "zones/web01-disk1"}
    assert inventory.json("vm", "show", vm["uuid"])["hostname"] == "web01"
    inventory.ok("dc", "create", "dc2")
    inventory.ok("vm", "update", "web01", "--dc", "dc2", "--owner", "alice", "--brand", "bhyve")
    vm = inventory.json("vm", "show", "web01")
    assert (vm["dc"], vm["owner"], vm["brand"]) == ("dc2", "alice", "bhyve")
    inventory.ok("vm", "delete", "web01")
    inventory.fails(4, "vm", "show", "web01")


@pytest.mark.parametrize("disk, message", [
    ("x=zones/a", "invalid disk"), ("0=zones/a", "invalid disk"), ("1", "invalid disk"),
    ("1=zones/a b", "invalid dataset"), ("1=zones/'a'", "invalid dataset"),
    ("1=zones/a;b", "invalid dataset"), ("1=zones/$(id)", "invalid dataset"),
    ("1=zones/`id`", "invalid dataset"), ("1=zones/../etc", "invalid dataset"),
    ("1=/zones/a", "invalid dataset"), ("1=zones//a", "invalid dataset"),
])
def test_vm_bad_disks(inventory, disk, message):
    assert message in inventory.fails(2, "vm", "create", "x1", "--node", "c1", "--disk", disk)


def test_vm_needs_disk_compute_node_and_valid_uuid(inventory):
    assert "at least one --disk" in inventory.fails(2, "vm", "create", "x1", "--node", "c1")
    assert "no compute role" in inventory.fails(2, "vm", "create", "x1", "--node", "b1",
                                                "--disk", "1=z/a")
    assert "invalid uuid" in inventory.fails(2, "vm", "create", "x1", "--node", "c1",
                                             "--disk", "1=z/a", "--uuid", "nope")
    assert "no such dc" in inventory.fails(4, "vm", "create", "x1", "--node", "c1",
                                           "--disk", "1=z/a", "--dc", "nope")


def test_users_and_permissions(inventory, monkeypatch):
    inventory.ok("dc", "create", "dc2")
    inventory.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "dc2")
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    inventory.ok("vm", "update", "web01", "--owner", "olga")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--disk", "1=z/db")
    assert [u["name"] for u in inventory.json("user", "list")] == ["dave", "olga"]
    assert "needs at least one --dc" in inventory.fails(2, "user", "create", "x",
                                                        "--role", "dcadmin")

    monkeypatch.setattr(auth, "os_user", lambda: ("olga", 4242))
    assert [v["hostname"] for v in inventory.json("vm", "list")] == ["web01"]
    assert "may not change" in inventory.fails(3, "vm", "update", "web01", "--brand", "os")
    assert "superadmin" in inventory.fails(3, "dc", "create", "x")

    monkeypatch.setattr(auth, "os_user", lambda: ("dave", 4243))
    assert [v["hostname"] for v in inventory.json("vm", "list")] == ["db01"]
    inventory.fails(3, "vm", "show", "web01")
    inventory.ok("vm", "update", "db01", "--owner", "olga")  # a dcadmin runs its DC's VMs
    # mapping datasets is the superadmin's: a restore destroys the dataset it targets
    assert "superadmin" in inventory.fails(3, "vm", "create", "db02", "--node", "c1",
                                           "--dc", "dc2", "--disk", "1=z/other")
    assert "superadmin" in inventory.fails(3, "vm", "update", "db01", "--disk",
                                           "1=zones/web01-disk0")
    inventory.fails(3, "node", "create", "n9", "--address", "h", "--no-connect")

    monkeypatch.setattr(auth, "os_user", lambda: ("mallory", 4244))
    assert "not registered" in inventory.fails(3, "dc", "list")


def test_only_a_superadmin_chooses_a_guest_agent_socket(inventory, monkeypatch):
    # the root freeze helper on a shared compute node freezes whatever guest
    # the socket leads to: a dcadmin pointing its VM at another DC's socket
    # would freeze and thaw a guest it has no rights on
    inventory.ok("dc", "create", "dc2")
    inventory.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "dc2")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--disk", "1=z/db",
                 "--qga-socket", "/run/qemu/db01.qga")
    monkeypatch.setattr(auth, "os_user", lambda: ("dave", 4243))
    for socket in ("/run/qemu/web01.qga", ""):
        assert "needs the superadmin role" in inventory.fails(
            3, "vm", "update", "db01", "--qga-socket", socket)
    assert "superadmin" in inventory.fails(3, "vm", "create", "db02", "--node", "c1",
                                           "--dc", "dc2", "--disk", "1=z/db2",
                                           "--qga-socket", "/run/qemu/web01.qga")
    monkeypatch.undo()
    assert inventory.json("vm", "show", "db01")["qga_socket"] == "/run/qemu/db01.qga"


def test_sudo_user_is_the_caller(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "nobody")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert auth.os_user()[0] == "nobody"


def test_sudo_opens_only_the_system_catalog_with_its_users(inventory, monkeypatch):
    from esbackup.catalog import location

    monkeypatch.setenv("SUDO_USER", "nobody")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert f"opens only {location.SYSTEM_PATH}" in inventory.fails(3, "dc", "list")
    monkeypatch.setattr(location, "SYSTEM_PATH", inventory.catalog)
    # a catalog without users makes nobody superadmin through sudo
    assert "root registers the first users" in inventory.fails(3, "dc", "list")
    monkeypatch.delenv("SUDO_USER")
    inventory.ok("user", "create", "nobody", "--role", "vmowner")
    monkeypatch.setenv("SUDO_USER", "nobody")
    assert inventory.json("dc", "list")
    inventory.fails(3, "node", "create", "n9", "--address", "local", "--no-connect")
    os.chmod(inventory.catalog, 0o640)
    assert "mode 0600" in inventory.fails(3, "dc", "list")
    os.chmod(inventory.catalog, 0o600)
    os.chown(inventory.catalog, 65534, -1)  # a catalog the sudo user brought along
    assert "must be root's" in inventory.fails(3, "dc", "list")


@pytest.mark.parametrize("dataset", ["zones/web01-disk0", "zones/web01-disk0/inner", "zones"])
def test_a_dataset_belongs_to_one_vm(inventory, dataset):
    err = inventory.fails(2, "vm", "create", "web02", "--node", "c1", "--disk", f"1={dataset}")
    assert "overlaps disk" in err and "web01" in err
