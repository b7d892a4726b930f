"""Restore, delete, sync, rebuild on real nodes."""
import json
import os
import signal
import time

import pytest

from tests.integration.conftest import ZVOL_SIZE, both_flavours
from tests.integration.site import VM_UUID, wait_for, zfs


def three_backups(site, kind="dataset", *extra):
    ref = site.define("daily", "--type", kind, "--retention", "0", *extra)
    digests = []
    for i in range(3):
        site.write(f"gen{i}.bin", os.urandom(64 << 10))
        site.esb.ok("run", ref)
        digests.append(site.source_digest())
    return ref, [b["name"] for b in site.backups()], digests


FLIP_A_BYTE = """import sys
with open(sys.argv[1], "r+b") as f:
    size = f.seek(0, 2)
    f.seek(size // 2)
    byte = f.read(1)[0]
    f.seek(size // 2)
    f.write(bytes([byte ^ 0xFF]))
"""


def restore(site, name, *args, code=0):
    argv = ["backup", "restore", f"web01/{name}", "--yes", "--force", *args]
    return site.esb.ok(*argv) if code == 0 else site.esb.fails(code, *argv)


@both_flavours
def test_restore_brings_back_exactly_that_backup(site):
    _, names, digests = three_backups(site)
    # the disk's own settings: a zvol's size and reservation, a filesystem's quota
    kept = "volsize,refreservation" if site.zvol else "quota"
    if not site.zvol:
        site.zfs("set", "quota=400M", site.source)
    site.zfs("set", "esbackup:owner=ops", site.source)
    before = site.zfs("get", "-H", "-p", "-o", "value", f"{kept},esbackup:owner", site.source)
    site.write("after.bin", b"written after the backups")
    restore(site, names[0])
    assert site.source_digest() == digests[0]
    assert [b["status"] for b in site.backups()] == ["ok"] * 3
    restore(site, names[2])
    assert site.source_digest() == digests[2]
    leftovers = site.zfs("list", "-H", "-o", "name", "-r", site.source.rpartition("/")[0])
    assert "esbrestore" not in leftovers and "esbold" not in leftovers
    props = site.zfs("get", "-H", "-p", "-o", "value", f"{kept},esbackup:owner", site.source)
    assert props == before and props.split()[-1] == "ops"


@both_flavours
def test_restore_file_backup(site):
    # gzip runs at 6.5 MB/s in a TCG guest: on OpenZFS uncompressed (gzip onto a zvol:
    # test_mixed_flavours.py)
    compression = "off" if site.zvol else "gzip"
    _, names, digests = three_backups(site, "file", "--compression", compression)
    restore(site, names[1])
    assert site.source_digest() == digests[1]
    assert site.snapshots(site.source) == []


def test_restore_to_another_vm(site):
    _, names, digests = three_backups(site)
    dataset = site.add_disk("vm2-disk1", b"old data", size=ZVOL_SIZE)
    site.esb.ok("vm", "create", "web02", "--node", "c1", "--disk", f"1={dataset}")
    restore(site, names[1], "--target-vm", "web02", "--target-disk-id", "1")
    assert site.disk_digest(dataset) == digests[1]
    assert site.source_digest() == digests[2]  # the source VM is untouched


@both_flavours
def test_backups_before_restore_stay_restorable(site):
    ref, names, digests = three_backups(site)
    restore(site, names[0])
    site.write("post.bin", os.urandom(1000))
    site.esb.ok("run", ref)  # no common base with the newest: a fresh target
    after = site.source_digest()
    backups = site.backups()
    assert [b["status"] for b in backups] == ["ok"] * 4
    assert site.snapshot_digest(backups[-1]["location"]) == after
    restore(site, names[2])
    assert site.source_digest() == digests[2]
    restore(site, names[1])
    assert site.source_digest() == digests[1]


def test_restore_needs_confirmation_and_force(site):
    site.esb.ok("run", site.define("daily", "--type", "dataset", "--retention", "0"))
    names = [b["name"] for b in site.backups()]
    err = site.esb.fails(2, "backup", "restore", f"web01/{names[0]}", "--force")
    assert "--yes" in err
    err = site.esb.fails(2, "backup", "restore", f"web01/{names[0]}", "--yes")
    assert "--force" in err


def test_corrupted_file_backup_refused_target_untouched(site):
    _, names, digests = three_backups(site, "file")
    path = site.backups()[0]["location"]
    site.lab.run(site.node_of(path), "python3", "-c", FLIP_A_BYTE, path)
    err = restore(site, names[0], code=1)
    assert "corrupt" in err
    assert site.source_digest() == digests[2]
    assert site.backups()[0]["status"] == "ok"


def test_target_smaller_than_backup_refused(site, lab):
    _, names, _ = three_backups(site)
    dataset, mount = lab.create_dataset(site.nodes.compute, "small-disk1", {"keep": b"mine"})
    zfs("set", "refquota=1M", dataset)
    site.esb.ok("vm", "create", "small", "--node", "c1", "--disk", f"1={dataset}")
    err = restore(site, names[0], "--target-vm", "small", code=2)
    assert "smaller" in err
    assert [p.name for p in mount.iterdir()] == ["keep"]


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_zvol_target_smaller_than_backup_refused(site, lab):
    _, names, _ = three_backups(site)
    small, device = lab.create_zvol(site.nodes.compute, "small-disk1", "16M", b"mine" * 1024)
    before = site.device_digest(site.nodes.compute, device)
    site.esb.ok("vm", "create", "small", "--node", "c1", "--disk", f"1={small}")
    err = restore(site, names[0], "--target-vm", "small", code=2)
    assert "smaller" in err and "16777216 bytes" in err
    assert site.device_digest(site.nodes.compute, device) == before
    assert site.snapshots(small) == []
    names_left = site.zfs("list", "-H", "-o", "name", "-r", site.nodes.compute.pool).split()
    assert not [n for n in names_left if "esbrestore" in n]


def test_backup_node_unreachable_during_restore(site):
    _, names, digests = three_backups(site)
    site.lab.stop_sshd(site.nodes.backup)
    try:
        restore(site, names[0], code=1)
    finally:
        site.lab.start_sshd(site.nodes.backup)
    assert site.source_digest() == digests[2]
    assert [b["status"] for b in site.backups()] == ["ok"] * 3


@both_flavours
def test_killed_restore_leaves_target_as_it_was(site):
    site.write("big.bin", os.urandom((16 if site.zvol else 48) << 20))
    _, names, digests = three_backups(site)
    proc = site.spawn("backup", "restore", f"web01/{names[0]}", "--yes", "--force")
    wait_for(lambda: any(b["status"] == "restore" for b in site.backups()), what="restore")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert site.source_digest() == digests[2]
    changes = site.esb.json("backup", "sync")
    assert {"backup": f"web01/{names[0]}", "was": "restore", "now": "ok"} in [
        {k: c[k] for k in ("backup", "was", "now")} for c in changes]
    restore(site, names[1])  # takes over the dead lock and cleans its temporary dataset
    assert site.source_digest() == digests[1]
    leftovers = site.zfs("list", "-H", "-o", "name", "-r", site.source.rpartition("/")[0])
    assert "esbrestore" not in leftovers and "esbold" not in leftovers


def test_restore_while_disk_busy(site):
    _, names, _ = three_backups(site)
    slow = site.define("slow", "--type", "file", "--bwlimit", "1M", "--retention", "1")
    proc = site.spawn("run", slow)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    assert "busy" in restore(site, names[0], code=5)
    assert "busy" in site.esb.fails(5, "backup", "delete", f"web01/{names[0]}", "--yes")
    proc.communicate(timeout=60)


@both_flavours
def test_delete_removes_data_and_base_delete_makes_next_full(site):
    ref, names, _ = three_backups(site)
    first = site.backups()[0]
    site.esb.ok("backup", "delete", f"web01/{names[0]}", "--yes")
    assert f"{site.target}@esb-{names[0]}" not in site.snapshots(site.target)
    assert not site.exists(first["manifest"])
    site.esb.fails(4, "backup", "show", f"web01/{names[0]}")
    site.esb.ok("backup", "delete", f"web01/{names[2]}", "--yes")  # the incremental base
    result = site.esb.ok("run", ref)
    assert "fresh target" in result.stderr
    newest = site.backups()[-1]
    assert newest["size"] > 4 << 20  # full again
    remaining = site.backups()[0]
    assert remaining["name"] == names[1] and remaining["location"] != first["location"]
    manifest = json.loads(site.read(remaining["manifest"]))
    assert manifest["backup"]["location"] == remaining["location"]  # follows it aside
    restore(site, names[1])  # kept aside, still restorable


def test_sync_marks_lost_and_found(site):
    _, names, _ = three_backups(site)
    snap = f"{site.target}@esb-{names[1]}"
    site.zfs("rename", snap, f"{site.target}@hidden")
    changes = site.esb.json("backup", "sync")
    assert changes == [{"backup": f"web01/{names[1]}", "was": "ok", "now": "lost",
                        "why": "data missing on the node"}]
    table = site.esb.ok("backup", "list", "--status", "lost").stdout
    assert names[1] in table
    check = site.esb("check")
    assert check.exit_code == 2 and check.stdout.startswith("ESBACKUP CRITICAL")
    site.zfs("rename", f"{site.target}@hidden", snap)
    assert site.esb.json("backup", "sync")[0]["now"] == "ok"
    assert site.esb.ok("backup", "sync").stdout.strip() == "catalog and nodes agree"
    site.zfs("destroy", snap)
    site.esb.ok("backup", "sync")
    site.esb.ok("backup", "delete", f"web01/{names[1]}", "--yes")  # lost: just the row
    assert len(site.backups()) == 2


def test_deleted_catalog_rebuilt_from_backup_node(site, tmp_path):
    from tests.conftest import Esbackup

    three_backups(site)
    compression = "off" if site.zvol else "bzip2"  # bzip2 crawls in a TCG guest
    site.define("files", "--type", "file", "--compression", compression, "--retention", "2")
    site.esb.ok("run", "web01/files")
    before = site.backups()
    site.esb.catalog.unlink()
    fresh = Esbackup(site.esb.catalog).init()
    b1, c1 = site.nodes.backup, site.nodes.compute
    fresh.ok("node", "create", "c1", "--address", f"{c1.address}:{c1.port}", "--key",
             c1.key_path, "--host-key", c1.host_key)  # a manifest never creates a node
    fresh.ok("node", "create", "b1", "--address", f"{b1.address}:{b1.port}", "--key",
             b1.key_path, "--host-key", b1.host_key, "--backup", "--no-compute")
    fresh.ok("storage", "create", "b1", "tank", "--zpool", b1.pool)
    out = fresh.ok("catalog", "rebuild", "--node", "b1").stdout
    assert "4 backups" in out
    assert fresh.ok("catalog", "rebuild", "--node", "b1").stdout.startswith("0 backups")
    after = fresh.json("backup", "list")
    drop = ("manifest",)
    assert [{k: v for k, v in b.items() if k not in drop} for b in after] == \
        [{k: v for k, v in b.items() if k not in drop} for b in before]
    vm = fresh.json("vm", "show", "web01")
    assert vm["uuid"] == VM_UUID
    assert {d["name"] for d in fresh.json("definition", "list")} == {"daily", "files"}
