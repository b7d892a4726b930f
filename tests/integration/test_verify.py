"""Verify reads real stored data back; sync judges settled rows by their data."""
import os
import subprocess
import time
from pathlib import Path

from esbackup.catalog.core import Catalog
from esbackup.engine import locks
from tests.integration.conftest import both_flavours


def backups_of(site, ref: str, runs: int) -> list[dict]:
    for i in range(runs):
        site.write(f"gen{i}.bin", os.urandom(256 << 10))
        site.esb.ok("run", ref)
    return site.backups()


def zpool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["zpool", *args], capture_output=True, text=True)


def reopen(pool: str, image: str) -> None:
    """Export and import the pool, so ZFS reads it from its file again, not its cache."""
    for _ in range(40):
        if zpool("export", pool).returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"zpool export {pool}: {zpool('export', pool).stderr}")
    imported = zpool("import", "-d", str(Path(image).parent), pool)
    assert imported.returncode == 0, imported.stderr


# In a guest: export and import its pool, so ZFS reads its disk again, not its cache.
GUEST_REOPEN = """for attempt in 1 2 3 4 5; do zpool export "$1" && break; sleep 1; done
zpool import "$1"
"""


def damage_where(image: str, sample: bytes) -> int:
    """Overwrite, in the pool's file, the 64 KiB around where `sample` is stored."""
    data = Path(image).read_bytes()
    at = data.find(sample)
    assert at > 0 and data.find(sample, at + 1) == -1, "sample not stored exactly once"
    start = at - at % 4096
    with open(image, "r+b") as f:
        f.seek(start)
        f.write(os.urandom(64 << 10))
    return start


def test_verify_finds_a_corrupted_file_backup(site):
    ref = site.define("files", "--type", "file", "--retention", "0")
    rows = backups_of(site, ref, 2)
    result = site.esb.json("backup", "verify")
    assert [r["result"] for r in result] == ["ok", "ok"]
    assert all(b["verify_result"] == "ok" and b["verified"] for b in site.backups())
    site.esb.ok("definition", "update", ref, "--bwlimit", "64M")  # read through mbuffer/pv
    path = rows[0]["location"]
    data = bytearray(site.read(path))
    data[len(data) // 3] ^= 0x01
    site.put(site.node_of(path), path, bytes(data))
    failed = site.esb("backup", "verify", f"web01/{rows[0]['name']}", "-f", "json")
    assert failed.exit_code == 1 and "1 damaged backup" in failed.stderr
    assert "SHA-256 mismatch" in failed.stdout
    first = site.esb.json("backup", "show", f"web01/{rows[0]['name']}")
    assert first["verify_result"] == "failed" and "mismatch" in first["verify_error"]
    assert first["status"] == "ok" and site.read(path) == bytes(data)  # left alone
    assert "Verify error" in site.esb.ok("backup", "list", "--full").stdout
    check = site.esb("check")
    assert check.exit_code == 2 and "failed verify" in check.stdout
    assert "verify_failed=1" in check.stdout.splitlines()[0]
    assert site.esb.json("backup", "verify", "--older-than", "7") == []  # just verified


@both_flavours
def test_verify_finds_a_damaged_dataset_backup(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    row = backups_of(site, ref, 1)[0]
    site.esb.ok("definition", "update", ref, "--bwlimit", "64M")
    assert site.esb.json("backup", "verify")[0]["result"] == "ok"
    backup = site.nodes.backup
    if site.zvol:  # the backup guest's pool disk is a file of this host: damage it there
        sample = site.lab.run(site.nodes.compute, "dd", f"if={site.nodes.device}", "bs=512",
                              "skip=2048", "count=1", "status=none").stdout
        damage_where(str(Path(backup.guest["dir"]) / "pool.img"), sample)
        site.sh(backup, GUEST_REOPEN, backup.pool)
    else:
        sample = (site.source_dir / "disk.img").read_bytes()[1 << 20:(1 << 20) + 512]
        damage_where(backup.pool_file, sample)
        reopen(backup.pool, backup.pool_file)
    failed = site.esb("backup", "verify", "--node", "b1", "-f", "json")
    assert failed.exit_code == 1, failed.output
    shown = site.esb.json("backup", "show", f"web01/{row['name']}")
    assert shown["verify_result"] == "failed"
    assert "checksum errors" in shown["verify_error"] or "I/O error" in shown["verify_error"]
    assert row["location"] in site.snapshots(site.target)  # the damaged backup stays
    check = site.esb("check")
    assert check.exit_code == 2 and check.stdout.startswith("ESBACKUP CRITICAL")


def test_verify_takes_a_slot_of_the_backup_node(site):
    ref = site.define("files", "--type", "file", "--retention", "0")
    name = backups_of(site, ref, 1)[0]["name"]
    site.esb.ok("node", "update", "b1", "--max-backups", "1")
    cat = Catalog.open(site.esb.catalog)
    with locks.Locks(cat, owner="a backup elsewhere") as held:
        held.slot("b1", 1)
        busy = site.esb("backup", "verify", f"web01/{name}")
        assert busy.exit_code == 5 and "all 1 backup slots are in use" in busy.stderr
    assert site.esb.json("backup", "show", f"web01/{name}")["verified"] is None
    assert site.esb.json("backup", "verify", f"web01/{name}")[0]["result"] == "ok"


@both_flavours
def test_sync_settles_a_dead_restore_over_missing_data_as_lost(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    rows = backups_of(site, ref, 2)
    cat = Catalog.open(site.esb.catalog)
    dead = cat.backup("web01", rows[0]["name"])
    cat.update_backup(dead, status="restore")  # a restore killed before it could reset it
    cat.update_backup(cat.backup("web01", rows[1]["name"]), status="restore")
    site.zfs("destroy", rows[0]["location"])
    changes = site.esb.json("backup", "sync")
    assert {(c["backup"], c["was"], c["now"]) for c in changes} == {
        (f"web01/{rows[0]['name']}", "restore", "lost"),
        (f"web01/{rows[1]['name']}", "restore", "ok")}
    assert [b["status"] for b in site.backups()] == ["lost", "ok"]


def test_a_run_taking_over_a_dead_restore_judges_its_rows_by_their_data(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    rows = backups_of(site, ref, 2)
    cat = Catalog.open(site.esb.catalog)
    for row in rows:
        cat.update_backup(cat.backup("web01", row["name"]), status="restore")
    site.zfs("destroy", rows[0]["location"])
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs: the restore's process died
    vm = cat.vm("web01")
    cat.take_lock(locks.disk_resource(vm.uuid, 1), f"restore web01/{rows[1]['name']} (run 1)",
                  dead.pid, locks.host_id(), "2000-01-01T00:00:00+00:00")
    result = site.esb.ok("run", ref)
    assert "now lost" in result.stderr and "now ok" in result.stderr
    assert [b["status"] for b in site.backups()] == ["lost", "ok", "ok"]
