"""One operation at a time per VM disk, and at most N backups at once per node.

Locks are rows in the catalog, shared by every esbackup process on every
admin host using it. Each carries the holder's host, pid and a lease that a
heartbeat thread renews; a lock whose process is gone (on this host) or whose
lease ran out (on another) is taken over, and the taker is told about it so it
can clean up what the dead run left. Taking one is a single catalog
transaction, so two hosts never both win it.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from esbackup.catalog.core import Catalog
from esbackup.errors import Busy, EsbackupError

LEASE = timedelta(seconds=float(os.environ.get("ESBACKUP_LEASE_S", 120)))
HEARTBEAT_S = LEASE.total_seconds() / 4
POLL_S = 0.5


def host_id() -> str:
    """This admin host's name in locks and run history."""
    return os.environ.get("ESBACKUP_HOST_ID") or socket.gethostname()


def disk_resource(vm_uuid: str, disk_id: int) -> str:
    return f"disk:{vm_uuid}:{disk_id}"


def lease_until(now: datetime | None = None) -> str:
    return ((now or datetime.now(timezone.utc)) + LEASE).replace(microsecond=0).isoformat()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(holder: dict, now: datetime | None = None) -> bool:
    """On this host the holder's process decides (a stopped or suspended one
    still holds); a holder elsewhere holds until its lease runs out."""
    if holder["host"] == host_id():
        return not pid_alive(holder["pid"])
    now = now or datetime.now(timezone.utc)
    return datetime.fromisoformat(holder["lease_until"]) < now


@dataclass
class Locks:
    """Locks held by this process; renewed in the background until released."""

    catalog: Catalog
    owner: str
    held: list[str] = field(default_factory=list)
    stale: list[dict] = field(default_factory=list)  # holders taken over from dead runs
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _try(self, resource: str) -> dict | None:
        result = self.catalog.take_lock(resource, self.owner, os.getpid(),
                                        host_id(), lease_until(), is_stale)
        if result is None or "stale" in result:
            self.held.append(resource)
            if result:
                self.stale.append(result["stale"])
            return None
        return result

    def disk(self, vm_uuid: str, disk_id: int, wait: float = 0, vm: str | None = None) -> None:
        """Lock one VM disk; Busy (exit 5) if another operation holds it past `wait`.
        `vm` names the server in that message (its hostname)."""
        resource = disk_resource(vm_uuid, disk_id)
        deadline = time.monotonic() + wait
        while (holder := self._try(resource)) is not None:
            if time.monotonic() >= deadline:
                raise Busy(f"disk {disk_id} of {vm or vm_uuid} is busy: {holder['owner']} "
                           f"(pid {holder['pid']}) since {holder['acquired']}")
            time.sleep(POLL_S)
        self._start_heartbeat()

    def slot(self, node: str, max_backups: int, wait: float = 0) -> None:
        """Take one of the node's `max_backups` slots; Busy if all stay full past `wait`."""
        deadline = time.monotonic() + wait
        while True:
            for i in range(max_backups):
                if self._try(f"slot:{node}:{i}") is None:
                    self._start_heartbeat()
                    return
            if time.monotonic() >= deadline:
                raise Busy(f"node {node} is busy: all {max_backups} backup slots are in use")
            time.sleep(POLL_S)

    @contextlib.contextmanager
    def briefly(self, resource: str, wait: float = 0) -> Iterator[None]:
        """Hold `resource` for the block only (not until release); Busy if another
        operation holds it past `wait`."""
        deadline = time.monotonic() + wait
        while (holder := self._try(resource)) is not None:
            if time.monotonic() >= deadline:
                raise Busy(f"{resource} is busy: {holder['owner']} (pid {holder['pid']})")
            time.sleep(POLL_S)
        self._start_heartbeat()
        try:
            yield
        finally:
            self.held.remove(resource)
            self.catalog.release_lock(resource, os.getpid(), host_id())

    def _start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew, daemon=True)
            self._thread.start()

    def _renew(self) -> None:
        cat = None  # a connection of its own: sqlite connections stay in their thread
        try:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    cat = cat or Catalog.open(self.catalog.path)
                    cat.renew_locks(list(self.held), os.getpid(), host_id(), lease_until())
                except (sqlite3.Error, EsbackupError):
                    continue  # busy or away a while: the lease outlasts a few missed beats
        finally:
            if cat is not None:
                cat.close()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for resource in reversed(self.held):
            self.catalog.release_lock(resource, os.getpid(), host_id())
        self.held.clear()

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
