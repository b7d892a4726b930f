"""Backups under faults: nothing half-done, and the next run succeeds."""
import os
import signal
import time
from pathlib import Path

from tests.integration.conftest import both_flavours
from tests.integration.site import VM_UUID, wait_for


def nothing_left(site, ref, *, resumable: str | None = None):
    """No backup rows of a failed run, no new snapshots, no partial files. With
    `resumable`, a target dataset (OpenZFS receives with -s), the snapshot of a stream
    that target kept a resume token of stays for the next run to resume, only that one."""
    assert all(b["status"] == "ok" for b in site.backups())
    names = {b["name"] for b in site.backups()}
    left = {s.split("@esb-")[1] for s in site.snapshots(site.source)} - names
    if resumable:
        token = site.zfs("get", "-H", "-o", "value", "receive_resume_token", resumable)
        assert len(left) == 1 and token.strip() not in ("", "-")
    else:
        assert left == set()
    assert site.find(site.nodes.backup.mountpoint, "*.part") == []


def slow_definition(site, name="slow", kind="file"):
    # 4 MiB at 1 MiB/s: about four seconds of transfer to interrupt
    return site.define(name, "--type", kind, "--bwlimit", "1M", "--retention", "3")


def test_backup_node_unreachable_at_start(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "2")
    site.lab.stop_sshd(site.nodes.backup)
    err = site.esb.fails(1, "run", ref)
    assert "b1" in err and "\n" not in err.strip()
    nothing_left(site, ref)
    assert site.backups() == []
    (run,) = site.esb.json("history", ref, "--failed")
    assert run["outcome"] == "failed" and run["error"]
    site.lab.start_sshd(site.nodes.backup)
    site.esb.ok("run", ref)
    assert len(site.backups()) == 1


def test_sshd_killed_mid_transfer(site):
    ref = slow_definition(site)
    proc = site.spawn("run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    time.sleep(1.5)
    site.lab.stop_sshd(site.nodes.backup)  # kills sshd and its sessions
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    site.lab.start_sshd(site.nodes.backup)
    assert site.backups() == []
    site.esb.ok("run", ref)  # also clears the partial file the node kept
    assert [b["status"] for b in site.backups()] == ["ok"]
    nothing_left(site, ref)


@both_flavours
def test_backup_pool_full(site):
    small = f"{site.nodes.backup.pool}/small"
    site.zfs("create", "-o", "quota=1M", small)
    site.esb.ok("storage", "create", "b1", "small", "--zpool", small)
    for kind in ("dataset", "file"):
        site.esb.ok("definition", "create", f"web01/{kind}", "--disk-id", "1", "--type", kind,
                    "--node", "b1", "--storage", "small", "--schedule", "0 1 * * *",
                    "--retention", "1")
        err = site.esb.fails(1, "run", f"web01/{kind}")
        assert "quota" in err or "space" in err, err
        # OpenZFS: what arrived of the dataset stream waits there for more space
        assert ("the next run resumes its transfer" in err) == (site.zvol and kind == "dataset")
        target = f"{small}/backups/ds/{VM_UUID}-disk1"
        nothing_left(site, f"web01/{kind}", resumable=target if site.zvol else None)
    assert site.backups() == []


@both_flavours
def test_source_dataset_missing(site):
    site.esb.ok("vm", "update", "web01", "--disk", f"1={site.source}-gone")
    ref = site.define("daily", "--type", "dataset", "--retention", "1")
    err = site.esb.fails(1, "run", ref)
    assert "does not exist" in err or "not exist" in err, err
    assert site.backups() == []


def test_second_run_of_same_disk_is_busy(site):
    ref = slow_definition(site)
    other = site.define("other", "--type", "dataset", "--retention", "1")
    proc = site.spawn("run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    err = site.esb.fails(5, "run", other)
    assert "busy" in err
    err = site.esb.fails(5, "backup", "now", other, "--wait", "0.5")
    assert "busy" in err
    _, out_err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out_err
    assert site.esb.json("history", other)[0]["outcome"] == "skipped"
    site.esb.ok("run", other, "--wait", "5")


@both_flavours
def test_killed_run_leaves_nothing_and_next_run_succeeds(site):
    ref = slow_definition(site, kind="dataset")
    site.esb.ok("definition", "update", ref, "--bwlimit", "1M")
    proc = site.spawn("run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [b["status"] for b in site.backups()] == ["pending"]
    result = site.esb.ok("run", ref)
    assert "left pending by a run that died" in result.stderr
    (b,) = site.backups()
    assert b["status"] == "ok"
    # the source keeps the next incremental's base: OpenZFS as a bookmark
    kept = site.bookmarks(site.source) if site.zvol else site.snapshots(site.source)
    assert kept == [f"{site.source}{'#' if site.zvol else '@'}esb-{b['name']}"]
    assert site.snapshots(site.target) == [f"{site.target}@esb-{b['name']}"]
    assert site.find(site.nodes.backup.mountpoint, "*.part") == []
    outcomes = [r["outcome"] for r in site.esb.json("history", ref)]
    assert outcomes[0] == "ok"


def test_node_slots_limit_backups_across_processes(site):
    dataset = site.add_disk("vm2-disk1", os.urandom(1000))
    site.esb.ok("vm", "create", "web02", "--node", "c1", "--disk", f"1={dataset}")
    site.esb.ok("node", "update", "b1", "--max-backups", "1")
    slow = slow_definition(site)
    site.esb.ok("definition", "create", "web02/daily", "--disk-id", "1", "--type", "dataset",
                "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                "--retention", "1")
    proc = site.spawn("run", slow)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    err = site.esb.fails(5, "run", "web02/daily")
    assert "node b1 is busy" in err
    site.esb.ok("run", "web02/daily", "--wait", "60")  # gets the slot when the first ends
    _, out_err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out_err
    first, second = sorted(site.backups(), key=lambda b: b["created"])
    assert first["vm"] == "web01" and second["vm"] == "web02"


@both_flavours
def test_failure_after_receive_keeps_incrementals_going(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "5")
    site.esb.ok("run", ref)
    manifests = str(Path(site.backups()[0]["manifest"]).parents[2])
    backup_node = site.node_of(manifests)
    site.sh(backup_node, 'mv "$1" "$1.moved" && echo "a file where the folder belongs" > "$1"',
            manifests)
    site.write("more.bin", os.urandom(100_000))
    site.esb.fails(1, "run", ref)  # received, then the manifest failed: all undone
    assert len(site.backups()) == 1 and len(site.snapshots(site.target)) == 1
    site.sh(backup_node, 'rm "$1" && mv "$1.moved" "$1"', manifests)
    site.esb.ok("run", ref)  # incremental again (-F rolls back only live changes)
    first, second = site.backups()
    assert second["size"] < 1 << 20
    assert site.snapshot_digest(second["location"]) == site.source_digest()


@both_flavours
def test_sync_leaves_a_running_backup_alone(site):
    ref = slow_definition(site)
    proc = site.spawn("run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    assert site.esb.json("backup", "sync") == []
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [b["status"] for b in site.backups()] == ["ok"]
