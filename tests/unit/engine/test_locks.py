"""Disk locks and node backup slots in the catalog (engine/locks.py)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import datetime, timedelta

import pytest

from esbackup.catalog.core import Catalog
from esbackup.engine import locks
from esbackup.errors import Busy
from tests.unit.shared import BOTH_BACKENDS, UTC, UUID


@pytest.fixture
def cat(esb):
    catalog = Catalog.open(esb.catalog)
    yield catalog
    catalog.close()


@pytest.fixture
def fast_poll(monkeypatch):
    monkeypatch.setattr(locks, "POLL_S", 0.02)


@BOTH_BACKENDS
def test_disk_lock_busy_immediately(cat):
    with locks.Locks(cat, owner="backup web01/daily") as first:
        first.disk(UUID, 1)
        started = time.monotonic()
        with locks.Locks(cat, owner="restore") as second, pytest.raises(Busy) as caught:
            second.disk(UUID, 1)
        assert time.monotonic() - started < 0.5
        assert caught.value.exit_code == 5
        assert "backup web01/daily" in str(caught.value)
        with locks.Locks(cat, owner="other disk") as third:
            third.disk(UUID, 2)  # another disk is free
    with locks.Locks(cat, owner="after") as later:
        later.disk(UUID, 1)  # released on exit
        assert later.stale == []


@BOTH_BACKENDS
def test_disk_lock_busy_after_wait(cat, fast_poll):
    with locks.Locks(cat, owner="first") as first:
        first.disk(UUID, 1)
        started = time.monotonic()
        with locks.Locks(cat, owner="second") as second, pytest.raises(Busy):
            second.disk(UUID, 1, wait=0.3)
        assert 0.3 <= time.monotonic() - started < 2


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@BOTH_BACKENDS
def test_dead_holder_taken_over(cat):
    pid = dead_pid()
    resource = locks.disk_resource(UUID, 1)
    assert cat.take_lock(resource, "crashed backup", pid, socket.gethostname(),
                         locks.lease_until()) is None
    with locks.Locks(cat, owner="new") as mine:
        mine.disk(UUID, 1)
        assert [(s["owner"], s["pid"]) for s in mine.stale] == [("crashed backup", pid)]
        assert cat.locks("disk:")[0]["owner"] == "new"


@BOTH_BACKENDS
def test_expired_lease_taken_over(cat):
    resource = locks.disk_resource(UUID, 1)
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    cat.take_lock(resource, "remote run", 1, "some-other-host", past)
    with locks.Locks(cat, owner="new") as mine:
        mine.disk(UUID, 1)
        assert [s["owner"] for s in mine.stale] == ["remote run"]


@BOTH_BACKENDS
def test_live_local_holder_keeps_its_lock_past_its_lease(cat):
    """A stopped (Ctrl-Z) or starved process on this host still holds its disk."""
    import os
    import socket

    resource = locks.disk_resource(UUID, 1)
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    cat.take_lock(resource, "slow run", os.getppid(), socket.gethostname(), past)
    with locks.Locks(cat, owner="new") as mine, pytest.raises(Busy):
        mine.disk(UUID, 1)


@BOTH_BACKENDS
def test_live_holder_on_another_host_with_lease_is_kept(cat):
    resource = locks.disk_resource(UUID, 1)
    cat.take_lock(resource, "remote run", dead_pid(), "some-other-host", locks.lease_until())
    with locks.Locks(cat, owner="new") as mine, pytest.raises(Busy):
        mine.disk(UUID, 1)


@BOTH_BACKENDS
def test_node_slots(cat, fast_poll):
    a, b, c = (locks.Locks(cat, owner=name) for name in "abc")
    try:
        a.slot("b1", 2)
        b.slot("b1", 2)
        with pytest.raises(Busy) as caught:
            c.slot("b1", 2)
        assert caught.value.exit_code == 5 and "2 backup slots" in str(caught.value)
        with pytest.raises(Busy):
            c.slot("b1", 2, wait=0.1)
        c.slot("b2", 2)  # another node's slots are its own
        a.release()
        c.slot("b1", 2)
        assert sorted(lock["owner"] for lock in cat.locks("slot:b1:")) == ["b", "c"]
    finally:
        for holder in (a, b, c):
            holder.release()
    assert cat.locks() == []


def test_lease_decides_for_other_hosts_pid_for_this_one(monkeypatch):
    monkeypatch.setenv("ESBACKUP_HOST_ID", "here")
    past, future = "2000-01-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00"
    assert locks.is_stale({"host": "there", "pid": os.getpid(), "lease_until": past})
    assert not locks.is_stale({"host": "there", "pid": 0x7FFFFFF0, "lease_until": future})
    assert not locks.is_stale({"host": "here", "pid": os.getpid(), "lease_until": past})
    assert locks.is_stale({"host": "here", "pid": 0x7FFFFFF0, "lease_until": future})
