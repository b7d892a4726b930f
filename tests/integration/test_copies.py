"""Second copies (issue 20) on real nodes: a third node b2 holds copies of b1's backups."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Esbackup
from tests.integration.site import VM_UUID, destroy, snapshots, zfs


def third_node(site, new_node):
    """Backup node b2 with storage `vault`, registered through the CLI."""
    b2 = new_node("b2")
    site.esb.ok("node", "create", "b2", "--address", f"{b2.address}:{b2.port}", "--key",
                b2.key_path, "--host-key", b2.host_key, "--backup", "--no-compute")
    site.esb.ok("storage", "create", "b2", "vault", "--zpool", b2.pool)
    return b2


def backups_of(site, ref, count, kind="dataset", *extra):
    """`count` backups of a new definition `ref`, each after new data; the digests."""
    site.define(ref, "--type", kind, "--retention", "0", *extra)
    digests = []
    for i in range(count):
        site.write(f"gen{i}.bin", os.urandom(64 << 10))
        site.esb.ok("run", f"web01/{ref}")
        digests.append(site.source_digest())
    return digests


def restore(site, name, *args):
    return site.esb.ok("backup", "restore", f"web01/{name}", "--yes", "--force", *args)


def test_a_copied_chain_restores_byte_identical_from_the_copy_after_the_primary_is_gone(
        site, new_node):
    b2 = third_node(site, new_node)
    digests = backups_of(site, "daily", 2)
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--schedule", "0 3 * * *")
    out = site.esb.ok("copy", "run", "web01/daily/b2").stdout
    names = [b["name"] for b in site.backups()]
    assert out.startswith("copy web01/daily/b2: 2 backup(s) copied")
    copy_target = f"{b2.pool}/backups/ds/{VM_UUID}-disk1"
    assert snapshots(copy_target) == [f"{copy_target}@esb-{n}" for n in names]
    # a third backup goes on incrementally from the second: one target, nothing set aside
    site.write("gen2.bin", os.urandom(64 << 10))
    site.esb.ok("run", "web01/daily")
    digests.append(site.source_digest())
    names = [b["name"] for b in site.backups()]
    assert site.esb.ok("copy", "run", "web01/daily/b2").stdout.startswith(
        f"copy web01/daily/b2: 1 backup(s) copied: {names[2]}")
    assert snapshots(copy_target) == [f"{copy_target}@esb-{n}" for n in names]
    datasets = zfs("list", "-H", "-o", "name", "-r", f"{b2.pool}/backups/ds").split()
    assert datasets == [f"{b2.pool}/backups/ds", copy_target]
    # where each backup lives: both nodes, in JSON and in the table
    for b in site.backups():
        assert [(loc["node"], loc["storage"], loc["status"], loc["primary"])
                for loc in b["locations"]] == [("b1", "tank", "ok", True),
                                               ("b2", "vault", "ok", False)]
        assert b["locations"][1]["location"] == f"{copy_target}@esb-{b['name']}"
    table = site.esb.ok("backup", "list").stdout
    assert table.count("b1 +1") == 3
    # the manifests travel with the copies
    manifests = sorted(Path(b2.mountpoint, "backups", "manifests").rglob("*.json"))
    assert [p.name for p in manifests] == [f"{n}.json" for n in names]
    copied = json.loads(manifests[0].read_text())["backup"]
    assert (copied["node"], copied["storage"], copied["location"]) == (
        "b2", "vault", f"{copy_target}@esb-{names[0]}")
    # the primary's data destroyed: sync marks it lost, restores come from b2
    destroy(site.target)
    site.esb.ok("backup", "sync")
    assert [b["status"] for b in site.backups()] == ["lost"] * 3
    said = restore(site, names[0]).stderr
    assert "restoring from the copy on b2" in said
    assert site.source_digest() == digests[0]
    restore(site, names[2], "--from", "b2")
    assert site.source_digest() == digests[2]
    assert [b["status"] for b in site.backups()] == ["lost"] * 3


def test_restore_from_names_the_node_and_refuses_one_without_a_copy(site, new_node):
    third_node(site, new_node)
    digests = backups_of(site, "daily", 1)
    name = site.backups()[0]["name"]
    err = site.esb.fails(4, "backup", "restore", f"web01/{name}", "--yes", "--force",
                         "--from", "b2")
    assert "no copy on node b2" in err
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--after-backup")
    site.esb.ok("copy", "run", "web01/daily/b2")
    site.write("later.bin", b"after the backup")
    said = restore(site, name, "--from", "b2").stderr
    assert "copy on b2" not in said
    assert site.source_digest() == digests[0]


def test_the_copy_node_alone_rebuilds_the_catalog(site, new_node):
    b2 = third_node(site, new_node)
    backups_of(site, "daily", 2)
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--schedule", "0 3 * * *")
    site.esb.ok("copy", "run", "web01/daily/b2")
    names = [b["name"] for b in site.backups()]
    site.esb.catalog.unlink()
    fresh = Esbackup(site.esb.catalog).init()
    c1 = site.nodes.compute
    fresh.ok("node", "create", "c1", "--address", f"{c1.address}:{c1.port}", "--key",
             c1.key_path, "--host-key", c1.host_key)
    fresh.ok("node", "create", "b2", "--address", f"{b2.address}:{b2.port}", "--key",
             b2.key_path, "--host-key", b2.host_key, "--backup", "--no-compute")
    fresh.ok("storage", "create", "b2", "vault", "--zpool", b2.pool)
    assert "2 backups" in fresh.ok("catalog", "rebuild", "--node", "b2").stdout
    rebuilt = fresh.json("backup", "list")
    assert [(b["name"], b["node"], b["status"]) for b in rebuilt] == [
        (n, "b2", "ok") for n in names]


def test_after_backup_copies_follow_each_backup_and_a_tick_runs_scheduled_copies(
        site, new_node):
    b2 = third_node(site, new_node)
    copy_target = f"{b2.pool}/backups/ds/{VM_UUID}-disk1"
    site.define("daily", "--type", "dataset", "--retention", "0")
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--after-backup")
    site.esb.ok("run", "web01/daily")
    first = site.backups()[0]["name"]
    assert snapshots(copy_target) == [f"{copy_target}@esb-{first}"]
    # a copy that never ran is due at its schedule's last firing (within the hour);
    # the copies the deleted one made stay and are the new one's base
    site.esb.ok("copy", "delete", "web01/daily/b2", "--yes")
    site.esb.ok("run", "web01/daily")
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--schedule", "* * * * *")
    second = site.backups()[1]["name"]
    assert snapshots(copy_target) == [f"{copy_target}@esb-{first}"]
    site.esb.ok("run", "--due", "--wait", "0")
    assert snapshots(copy_target) == [f"{copy_target}@esb-{n}" for n in (first, second)]
    shown = site.esb.json("copy", "show", "web01/daily/b2")
    assert shown["last_ok"] is not None and shown["last_error"] is None
    site.esb.ok("run", "--due", "--wait", "0")  # claimed: not again in this minute
    assert site.esb.json("copy", "show", "web01/daily/b2")["last_started"] == \
        shown["last_started"]


def test_each_node_keeps_what_its_own_retention_says_and_a_row_goes_with_its_last_copy(
        site, new_node):
    b2 = third_node(site, new_node)
    copy_target = f"{b2.pool}/backups/ds/{VM_UUID}-disk1"
    site.define("daily", "--type", "dataset", "--keep-last", "2")
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--after-backup", "--keep-last", "4")
    made, digests = [], []
    for i in range(5):
        site.write(f"gen{i}.bin", os.urandom(32 << 10))
        made.append(site.esb.ok("backup", "now", "web01/daily").stdout.strip().split("/")[1])
        digests.append(site.source_digest())
    listed = site.backups()
    assert [b["name"] for b in listed] == made[1:]  # made[0]: its last copy went
    assert snapshots(site.target) == [f"{site.target}@esb-{n}" for n in made[3:]]
    assert snapshots(copy_target) == [f"{copy_target}@esb-{n}" for n in made[1:]]
    assert [[(loc["node"], loc["primary"]) for loc in b["locations"]] for b in listed] == [
        [("b2", False)], [("b2", False)], [("b1", True), ("b2", False)],
        [("b1", True), ("b2", False)]]
    manifests = sorted(p.name for p in Path(b2.mountpoint, "backups", "manifests").rglob("*.json"))
    assert manifests == [f"{n}.json" for n in made[1:]]
    said = restore(site, made[1]).stderr  # held by its copy alone: read there
    assert "only its copy on b2 holds it" in said
    assert site.source_digest() == digests[1]
    # deleting a backup removes it from every node
    site.esb.ok("backup", "delete", f"web01/{made[3]}", "--yes")
    assert snapshots(site.target) == [f"{site.target}@esb-{made[4]}"]
    assert f"{copy_target}@esb-{made[3]}" not in snapshots(copy_target)
    assert made[3] not in [b["name"] for b in site.backups()]


def test_file_backups_are_copied_checked_and_restored_from_the_copy(site, new_node):
    b2 = third_node(site, new_node)
    digests = backups_of(site, "files", 2, "file", "--compression", "gzip")
    site.esb.ok("copy", "create", "web01/files", "--node", "b2", "--storage", "vault",
                "--schedule", "0 4 * * *")
    site.esb.ok("copy", "run", "web01/files/b2")
    listed = site.backups()
    for b in listed:
        copy = b["locations"][1]
        assert copy["location"] == (f"{b2.mountpoint}/backups/file/{VM_UUID}/disk1/"
                                    f"{b['name']}.zfs.gz")
        assert copy["checksum"] == b["checksum"] and copy["size"] == b["size"]
        assert Path(copy["location"]).read_bytes() == site.read(b["location"])
    assert list(Path(b2.mountpoint, "backups", "file").rglob(".*.part")) == []
    for b in listed:
        Path(b["location"]).unlink()
    site.esb.ok("backup", "sync")
    restore(site, listed[0]["name"])
    assert site.source_digest() == digests[0]


def test_a_catalog_rebuilt_from_both_nodes_knows_the_copies(site, new_node):
    b2 = third_node(site, new_node)
    backups_of(site, "daily", 2)
    site.esb.ok("copy", "create", "web01/daily", "--node", "b2", "--storage", "vault",
                "--schedule", "0 3 * * *")
    site.esb.ok("copy", "run", "web01/daily/b2")
    before = site.backups()
    site.esb.catalog.unlink()
    fresh = Esbackup(site.esb.catalog).init()
    for node, extra in ((site.nodes.compute, []), (site.nodes.backup, ["--backup",
                        "--no-compute"]), (b2, ["--backup", "--no-compute"])):
        fresh.ok("node", "create", node.name, "--address", f"{node.address}:{node.port}",
                 "--key", node.key_path, "--host-key", node.host_key, *extra)
    fresh.ok("storage", "create", "b1", "tank", "--zpool", site.nodes.backup.pool)
    fresh.ok("storage", "create", "b2", "vault", "--zpool", b2.pool)
    assert "2 backups" in fresh.ok("catalog", "rebuild", "--node", "b1").stdout
    assert "2 copies" in fresh.ok("catalog", "rebuild", "--node", "b2").stdout
    assert "copies" not in fresh.ok("catalog", "rebuild", "--node", "b2").stdout
    after = fresh.json("backup", "list")
    assert [[(loc["node"], loc["location"], loc["status"]) for loc in b["locations"]]
            for b in after] == [[(loc["node"], loc["location"], loc["status"])
                                 for loc in b["locations"]] for b in before]
