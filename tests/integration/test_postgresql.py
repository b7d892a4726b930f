"""Several admin hosts on one PostgreSQL catalog, in the lab (real zfs-fuse pools,
real sshd nodes): ticks on two hosts run each firing once within node slots; a
host killed mid-run is taken over after its lease; a server restart mid-run."""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import Esbackup
from tests.integration.site import VM_UUID, register, snapshots, wait_for
from tests.integration.test_backup_faults import slow_definition

LEASE_S = 4


@pytest.fixture
def pg_site(pg_catalog, two_nodes, lab):
    return register(Esbackup(pg_catalog).init(), two_nodes, lab)


def spawn(site, host: str, *args: str, retry_s: float = 60) -> subprocess.Popen:
    """esbackup as admin host `host`, in its own process, with a short lease."""
    env = {**os.environ, "ESBACKUP_HOST_ID": host, "ESBACKUP_LEASE_S": str(LEASE_S),
           "ESBACKUP_CATALOG_RETRY_S": str(retry_s),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(
        [sys.executable, "-m", "esbackup", "--catalog", str(site.esb.catalog), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)


def test_two_admin_hosts_tick_each_firing_once_within_node_slots(pg_site, lab):
    site = pg_site
    site.esb.ok("node", "update", "b1", "--max-backups", "1")
    fired = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    cron = f"{fired.minute} {fired.hour} * * *"  # fired once in the last hour
    refs = []
    for i in range(3):
        vm = f"web{i + 2:02d}"
        dataset, _ = lab.create_dataset(site.nodes.compute, f"vm{i + 2}-disk1",
                                        {"d": os.urandom(2 << 20)})
        site.esb.ok("vm", "create", vm, "--node", "c1", "--disk", f"1={dataset}")
        site.esb.ok("definition", "create", f"{vm}/daily", "--disk-id", "1", "--type",
                    "dataset", "--node", "b1", "--storage", "tank", "--schedule", cron,
                    "--timezone", "UTC", "--retention", "3", "--bwlimit", "2M")
        refs.append(f"{vm}/daily")
    site.esb.backdate_schedules()  # made before the firing two minutes ago
    ticks = [spawn(site, host, "run", "--due") for host in ("admin1", "admin2")]
    most = 0
    while any(t.poll() is None for t in ticks):
        most = max(most, len(_slot_holders(site)))
        time.sleep(0.2)
    for tick in ticks:
        assert tick.wait() == 0, tick.stderr.read()
    runs = site.esb.json("history")
    assert sorted(r["definition"] for r in runs) == refs  # each firing ran exactly once
    assert {r["outcome"] for r in runs} == {"ok"}
    assert {r["firing"] for r in runs} == {fired.isoformat()}
    assert {r["host"] for r in runs} <= {"admin1", "admin2"}
    assert most == 1  # node b1's one slot, across both hosts
    spans = sorted((datetime.fromisoformat(b["created"]), b["duration"])
                   for b in site.backups())
    assert len(spans) == 3
    for (start, duration), (later, _) in zip(spans, spans[1:], strict=False):
        assert later >= start + timedelta(seconds=duration - 1)  # one after the other
    again = spawn(site, "admin2", "run", "--due")
    assert again.wait() == 0 and len(site.esb.json("history")) == 3  # nothing left due


def _slot_holders(site) -> list:
    from esbackup.catalog.core import Catalog

    cat = Catalog.open(site.esb.catalog)
    try:
        return cat.locks("slot:b1:")
    finally:
        cat.close()


def test_a_dead_hosts_run_is_taken_over_after_its_lease(pg_site):
    site = pg_site
    ref = slow_definition(site, kind="dataset")
    first = spawn(site, "admin1", "run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    time.sleep(1.0)
    os.kill(first.pid, signal.SIGKILL)  # the host "dies": its lease is all that is left
    first.wait()
    killed = time.monotonic()
    # its pid is gone, but admin2 judges another host's lock by the lease only
    busy = spawn(site, "admin2", "run", ref)
    assert busy.wait() == 5, busy.stderr.read()
    second = spawn(site, "admin2", "run", ref, "--wait", "60")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert time.monotonic() - killed >= LEASE_S - 2  # not before the lease ran out
    assert b"left pending by a run that died" in err
    (b,) = site.backups()
    assert b["status"] == "ok"
    assert snapshots(site.source) == [f"{site.source}@esb-{b['name']}"]
    assert snapshots(site.target) == [f"{site.target}@esb-{b['name']}"]
    newest, skipped, dead = site.esb.json("history", ref)
    assert (newest["outcome"], newest["host"]) == ("ok", "admin2")
    assert (skipped["outcome"], skipped["host"]) == ("skipped", "admin2")
    assert (dead["outcome"], dead["host"]) == ("failed", "admin1")  # closed at the takeover
    assert "taken over" in dead["error"] and dead["finished"]


def test_a_server_restart_mid_run_loses_nothing(pg_site, postgres):
    site = pg_site
    ref = slow_definition(site, kind="file")
    run = spawn(site, "admin1", "run", ref)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    postgres.restart()
    assert run.poll() is None  # the restart happened during the run
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    (b,) = site.backups()
    assert b["status"] == "ok" and b["vm_uuid"] == VM_UUID
    assert [r["outcome"] for r in site.esb.json("history", ref)] == ["ok"]
    assert Path(b["location"]).exists()


def test_a_server_down_past_the_retries_fails_in_one_line_and_nothing_stays_pending(
        pg_site, postgres):
    site = pg_site
    ref = slow_definition(site, kind="file")
    run = spawn(site, "admin1", "run", ref, retry_s=2)
    wait_for(lambda: any(b["status"] == "pending" for b in site.backups()), what="pending")
    postgres.stop()
    try:
        _, err = run.communicate(timeout=120)
    finally:
        postgres.start()
    assert run.returncode == 1
    assert err.decode().count("\n") == 1 and "catalog postgresql://" in err.decode()
    assert not list(Path(site.nodes.backup.mountpoint).rglob("*.zfs*"))  # nothing half-done
    assert [b["status"] for b in site.backups()] == ["pending"]  # the row waits for the DB
    assert [r["outcome"] for r in site.esb.json("history", ref)] == ["running"]
    again = spawn(site, "admin1", "run", ref)  # the next run of that disk cleans up
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert b"left pending by a run that died" in err
    assert [b["status"] for b in site.backups()] == ["ok"]
    newest, dead = site.esb.json("history", ref)
    assert newest["outcome"] == "ok" and dead["outcome"] == "failed"
