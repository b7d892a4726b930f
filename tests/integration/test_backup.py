"""Backups on real nodes: full then incremental, file backups, retention, status."""
import bz2
import gzip
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.integration.conftest import both_flavours


@both_flavours
def test_full_then_incremental_and_data_equal(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "5")
    assert site.esb.ok("run", ref).stdout == ""  # silent for cron
    site.write("changed.bin", os.urandom(256 << 10))
    made = site.esb.ok("backup", "now", ref).stdout  # the new backup, for scripts
    first, second = site.backups()
    assert made == f"web01/{second['name']}\n"
    assert first["status"] == second["status"] == "ok"
    assert first["size"] > 4 << 20  # the full one carries the 4 MiB disk image
    assert 256 << 10 <= second["size"] < 1 << 20  # the second only what changed
    assert first["type"] == "dataset" and first["checksum"] is None
    assert second["location"] == f"{site.target}@esb-{second['name']}"
    # the backup node holds both, and the newest equals the source
    assert site.snapshots(site.target) == [
        f"{site.target}@esb-{b['name']}" for b in (first, second)]
    assert site.snapshot_digest(second["location"]) == site.source_digest()
    # the source keeps only the base the next incremental needs: OpenZFS a bookmark of
    # it, not the snapshot (no space held between runs; the second run sent from it)
    if site.zvol:
        assert site.snapshots(site.source) == []
        marks = site.zfs("list", "-H", "-o", "name", "-t", "bookmark", "-r", "-d", "1",
                         site.source)
        assert marks.split() == [f"{site.source}#esb-{second['name']}"]
    else:
        assert site.snapshots(site.source) == [f"{site.source}@esb-{second['name']}"]
    if site.zvol:  # OpenZFS: only the newest target snapshot, that base, carries a hold
        holds = site.zfs("holds", "-H", first["location"], second["location"])
        assert [line.split("\t")[:2] for line in holds.splitlines()] == [
            [second["location"], "esbackup"]]
    # targets are read-only
    assert site.zfs("get", "-H", "-o", "value,source", "readonly", site.target).split() == [
        "on", "local"]


def test_backup_json_fields_and_manifest(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "2")
    site.esb.ok("run", ref)
    (b,) = site.backups()
    assert set(b) >= {"name", "vm", "vm_uuid", "disk_id", "type", "created", "status",
                      "duration", "size", "note", "fsfreeze", "definition", "node", "storage",
                      "location", "checksum"}
    assert b["name"].startswith("daily-") and b["created"].endswith("+00:00")
    manifest = json.loads(site.read(b["manifest"]))
    assert manifest["backup"]["name"] == b["name"]
    assert manifest["vm"]["uuid"] == b["vm_uuid"]
    assert manifest["definition"]["name"] == "daily"
    shown = site.esb.json("backup", "show", f"web01/{b['name']}")
    assert shown == b


@pytest.mark.parametrize("flavour, compression, decompress", [
    ("zfs-fuse", "off", bytes), ("zfs-fuse", "gzip", gzip.decompress),
    ("zfs-fuse", "bzip2", bz2.decompress),
    ("openzfs", "off", bytes),  # the compressors are node tools, not ZFS: once (zfs-fuse)
], indirect=["flavour"])
def test_file_backup_checksum_and_stream(site, compression, decompress):
    ref = site.define("files", "--type", "file", "--compression", compression,
                      "--retention", "2")
    site.esb.ok("run", ref)
    (b,) = site.backups()
    path = Path(b["location"])
    suffix = {"off": ".zfs", "gzip": ".zfs.gz", "bzip2": ".zfs.bz2"}[compression]
    assert path.name == b["name"] + suffix
    assert path.parent.name == "disk1" and path.parent.parent.name == b["vm_uuid"]
    stored = site.read(b["location"])
    assert hashlib.sha256(stored).hexdigest() == b["checksum"]
    assert b["size"] == len(stored)
    assert len(decompress(stored)) > 4 << 20  # a whole zfs send stream
    listing = site.lab.run(site.node_of(str(path)), "ls", "-a", str(path.parent)).stdout
    assert b".part" not in listing
    assert site.snapshots(site.source) == []  # file backups leave no snapshot behind


@both_flavours
def test_retention_on_node_and_catalog(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "2")
    for i in range(3):
        site.write(f"f{i}", os.urandom(1000))
        site.esb.ok("run", ref)
    names = [b["name"] for b in site.backups()]
    assert len(names) == 2
    assert site.snapshots(site.target) == [f"{site.target}@esb-{n}" for n in names]
    folder = str(Path(site.backups()[0]["manifest"]).parent)
    listing = site.lab.run(site.node_of(folder), "ls", folder).stdout.decode().split()
    assert sorted(Path(p).stem for p in listing) == sorted(names)
    history = site.esb.json("history", ref)
    assert [r["outcome"] for r in history] == ["ok", "ok", "ok"]
    # a snapshot destroyed behind esbackup's back: deleting its backup still ends well
    # (OpenZFS says "could not find any snapshots to destroy", zfs-fuse "does not exist")
    site.zfs("release", "esbackup", f"{site.target}@esb-{names[0]}", check=False)
    site.zfs("destroy", f"{site.target}@esb-{names[0]}")
    site.esb.ok("backup", "delete", f"web01/{names[0]}", "--yes")
    assert [b["name"] for b in site.backups()] == names[1:]


def test_retention_zero_keeps_all(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    for _ in range(3):
        site.esb.ok("run", ref)
    assert len(site.backups()) == 3


def test_inactive_definition_refused_unless_forced(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "1", "--inactive")
    assert "inactive" in site.esb.fails(2, "run", ref)
    site.esb.ok("run", ref, "--force")
    assert [r["outcome"] for r in site.esb.json("history", ref)] == ["ok", "skipped"]


@both_flavours
def test_same_node_pipe_stays_on_node(site):
    c1 = site.nodes.compute
    site.esb.ok("node", "update", "c1", "--backup")
    site.esb.ok("storage", "create", "c1", "local", "--zpool", c1.pool)
    site.esb.ok("definition", "create", "web01/local", "--disk-id", "1", "--type", "dataset",
                "--node", "c1", "--storage", "local", "--schedule", "0 3 * * *",
                "--retention", "1", "--bwlimit", "64M")
    site.esb.ok("run", "web01/local")
    (b,) = site.backups()
    assert b["node"] == "c1" and b["location"].startswith(f"{c1.pool}/backups/ds/")
    assert site.snapshot_digest(b["location"]) == site.source_digest()


def test_bandwidth_limited_relay_still_whole(site):
    ref = site.define("slow", "--type", "file", "--bwlimit", "4M", "--retention", "1")
    site.esb.ok("run", ref)
    (b,) = site.backups()
    assert hashlib.sha256(site.read(b["location"])).hexdigest() == b["checksum"]
    assert b["duration"] >= 0.8  # over 4 MiB at 4 MiB/s: the limit held


def test_freeze_flag_shown_in_table(site):
    site.esb.ok("vm", "update", "web01", "--qga-socket", "/nonexistent/qga.sock")
    ref = site.define("frozen", "--type", "dataset", "--retention", "1", "--freeze")
    result = site.esb.ok("run", ref)
    assert "without freeze" in result.stderr
    (b,) = site.backups()
    assert b["fsfreeze"] is False and b["note"].startswith("not frozen")


@both_flavours
def test_direct_mode_backup_node_pulls(site, tmp_path):
    lab, b1 = site.lab, site.nodes.backup
    if site.zvol:  # guest to guest through b1's guestfwd (lab/guest_link.py)
        config = lab.link_guests(b1, site.nodes.compute)
    else:  # on the backup node (the lab's zfs-fuse nodes share this host)
        config = tmp_path / "ssh_config"
        config.write_text(f"IdentityFile {lab.key_path}\nIdentitiesOnly yes\n"
                          f"UserKnownHostsFile {lab.known_hosts}\n")
    site.esb.ok("node", "update", "b1", "--transfer", "direct", "--ssh-config", str(config))
    for kind in ("dataset", "file"):
        ref = site.define(f"pull-{kind}", "--type", kind, "--retention", "1", "--bwlimit", "32M")
        site.esb.ok("run", ref)
    dataset, file = site.backups()
    assert site.snapshot_digest(dataset["location"]) == site.source_digest()
    assert hashlib.sha256(site.read(file["location"])).hexdigest() == file["checksum"]
    if site.zvol:  # both pulls went guest to guest, not through this host
        assert lab.peer_dials(b1) == 2


def test_direct_mode_without_trust_fails_cleanly(site, tmp_path):
    config = "/tmp/esbtest-untrusted.conf" if site.zvol else str(tmp_path / "ssh_config")
    site.put(site.nodes.backup, config, b"IdentityFile /nonexistent\nIdentitiesOnly yes\n"
             b"UserKnownHostsFile /dev/null\n")
    site.esb.ok("node", "update", "b1", "--transfer", "direct", "--ssh-config", config)
    ref = site.define("pull", "--type", "dataset", "--retention", "1")
    err = site.esb.fails(1, "run", ref)
    assert "ssh" in err
    assert site.backups() == [] and site.snapshots(site.source) == []


def test_tick_runs_what_is_due_once(site):
    every = site.define("minutely", "--type", "dataset", "--retention", "2")
    site.esb.ok("definition", "update", every, "--schedule", "* * * * *")
    far = (datetime.now(timezone.utc).hour + 12) % 24  # its last firing: before the backdate
    site.define("nightly", "--type", "dataset", "--retention", "2", "--schedule", f"0 {far} * * *")
    site.esb.backdate_schedules()  # made before this minute's firing
    site.esb.ok("run", "--due")
    assert [b["definition"] for b in site.backups()] == ["minutely"]
    assert site.esb.json("history", every)[0]["trigger"] == "tick"
    site.esb.ok("run", "--due")  # runs again only if the schedule fired again meanwhile
    minutes = [b["created"][:16] for b in site.backups()]
    assert len(minutes) == len(set(minutes))  # never twice for one firing


def test_backup_now_runs_inactive_definitions(site):
    ref = site.define("manual", "--type", "dataset", "--retention", "1", "--inactive")
    site.esb.ok("backup", "now", ref)
    assert [r["trigger"] for r in site.esb.json("history", ref)] == ["manual"]


def test_backup_now_and_run_as_json_describe_the_backup_made(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "5")
    first = json.loads(site.esb.ok("run", ref, "-f", "json").stdout)
    site.write("changed.bin", os.urandom(64 << 10))
    second = json.loads(site.esb.ok("backup", "now", ref, "-f", "json").stdout)
    listed = site.backups()
    for record, b in zip((first, second), listed, strict=True):
        assert record["backup"] == f"web01/{b['name']}" and record["name"] == b["name"]
        assert record["outcome"] == "ok" and record["status"] == "ok"
        assert record["definition"] == ref and record["type"] == "dataset"
        assert record["size"] == b["size"] and record["duration"] == b["duration"]
        assert record["freeze"] is False and record["error"] is None
        assert record["sent"] > 0 and record["resumed"] is None


def test_a_dry_run_on_real_nodes_changes_nothing_and_names_its_base(site):
    from tests.integration.site import catalog_bytes

    ref = site.define("daily", "--type", "dataset", "--retention", "1")
    site.esb.ok("run", ref)
    (first,) = site.backups()
    source_snaps, target_snaps = site.snapshots(site.source), site.snapshots(site.target)
    before = catalog_bytes(site.esb.catalog)
    record = json.loads(site.esb.ok("backup", "now", ref, "--dry-run", "-f", "json").stdout)
    assert record["base_backup"] == f"web01/{first['name']}"
    assert record["retention_removes"] == [f"web01/{first['name']}"]
    assert catalog_bytes(site.esb.catalog) == before
    assert site.snapshots(site.source) == source_snaps
    assert site.snapshots(site.target) == target_snaps
