"""Read stored backups back whole, on their backup node, and record the outcome.

A file backup is hashed again on the node and compared with its recorded
SHA-256. A dataset backup's snapshot is sent whole into /dev/null, which
makes ZFS read and checksum every block of it, and the pool's error counters
are read afterwards. Each read respects the definition's bandwidth limit (on
the node, with mbuffer or pv) and takes one of the backup node's slots, under
the disk's lock so that no restore or delete runs meanwhile.

A failed verify leaves the data alone: it records when and why on the
backup, where `check` finds it. A node that cannot be reached judges nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from esbackup.catalog.core import Catalog
from esbackup.catalog.helpers import utcnow
from esbackup.domain.models import Backup, Node
from esbackup.drivers import compress, files, throttle, zfs
from esbackup.drivers.session import NodeSession, Reporter, Sessions
from esbackup.engine import fsck as guest_fsck
from esbackup.engine import locks
from esbackup.errors import Busy, NodeUnreachable, NotFound, RemoteCommandError

OK, FAILED, SKIPPED, UNREACHABLE = "ok", "failed", "skipped", "unreachable"


@dataclass
class Outcome:
    backup: Backup
    result: str  # ok | failed | skipped (busy, or changed meanwhile) | unreachable
    detail: str = ""

    def record(self) -> dict:
        return {"backup": self.backup.ref, "type": self.backup.type, "node": self.backup.node,
                "result": self.result, "detail": self.detail}


def due(backups: list[Backup], older_than: float | None, now: datetime) -> list[Backup]:
    """The ok backups to verify: with `older_than` days, only those not verified since."""
    limit = None if older_than is None else now - timedelta(days=older_than)
    return [b for b in backups if b.status == "ok" and (
        limit is None or b.verified is None or datetime.fromisoformat(b.verified) < limit)]


def verify(cat: Catalog, backups: list[Backup], wait: float = 0,
           reporter: Reporter | None = None, *, sessions: Sessions,
           fsck: bool = False) -> list[Outcome]:
    outcomes = []
    for b in backups:
        outcome = verify_one(cat, b, wait, sessions=sessions, fsck=fsck)
        if reporter is not None and outcome.result != OK:
            reporter.warn(f"verify {b.ref}: {outcome.result}: {outcome.detail}")
        outcomes.append(outcome)
    return outcomes


def verify_one(cat: Catalog, b: Backup, wait: float = 0, *, sessions: Sessions,
               fsck: bool = False) -> Outcome:
    node = cat.node(b.node)
    try:
        with locks.Locks(cat, owner=f"verify {b.ref}") as held:
            held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
            held.slot(node.name, node.max_backups, wait)
            b = cat.backup(b.vm_uuid, b.name)  # as it is now that nobody else changes it
            if b.status != "ok":
                return Outcome(b, SKIPPED, f"status is {b.status}")
            problem = read_back(sessions(node), b, bwlimit(cat, b))
            note = ""
            if fsck and b.type == "dataset":  # --fsck: the guest's file systems too
                found, note = guest_fsck.check(sessions(node),
                                               cat.storage(b.node, b.storage).zpool, b.stored_at)
                problem = "; ".join(p for p in (problem, found) if p) or None
    except Busy as error:
        return Outcome(b, SKIPPED, str(error))
    except NodeUnreachable as error:
        return Outcome(b, UNREACHABLE, str(error))
    except NotFound:
        return Outcome(b, SKIPPED, "deleted meanwhile")
    cat.update_backup(b, verified=utcnow(), verify_result=FAILED if problem else OK,
                      verify_error=problem)
    return Outcome(b, FAILED if problem else OK, problem or note)


def bwlimit(cat: Catalog, b: Backup) -> int:
    if not b.definition:
        return 0
    try:
        return cat.definition(b.vm_uuid, b.definition).bwlimit
    except NotFound:
        return 0  # the definition is gone; its backups stay


def read_back(session: NodeSession, b: Backup, rate: int) -> str | None:
    """Why the backup's data is not whole, or None when it is."""
    if b.type == "file":
        return _file(session, b, rate)
    return _dataset(session, b, rate)


def _file(session: NodeSession, b: Backup, rate: int) -> str | None:
    if not b.checksum:
        return "no SHA-256 recorded for this file backup"
    try:
        out = session.pipeline(file_stages(session.node, rate), input_path=b.location).stdout
    except RemoteCommandError as error:
        return f"cannot read {b.location}: {error}"
    digest = out.split()[0] if out.split() else ""
    if digest != b.checksum:
        return f"SHA-256 mismatch: stored {b.checksum}, read {digest or 'nothing'}"
    return None


def file_stages(node: Node, rate: int) -> list[list[str]]:
    """Hash what arrives on stdin, no faster than `rate` bytes/s (0: no limit)."""
    return [*throttle.limiter(rate, node), files.sha256(None, node.capabilities.get("tools", {}))]


def dataset_stages(node: Node, snapshot: str, rate: int) -> list[list[str]]:
    """Send the snapshot whole (every block read and checksummed) at up to `rate`;
    raw (-w) where the node can: an encrypted backup's key is never on its node.
    Into a pipe, never straight into /dev/null: OpenZFS refuses that (its
    message says to use `| cat > /dev/null`)."""
    stages = [zfs.send(snapshot, raw=True, caps=node.capabilities), *throttle.limiter(rate, node)]
    return stages if len(stages) > 1 else [*stages, compress.STORE]


def _dataset(session: NodeSession, b: Backup, rate: int) -> str | None:
    problems = []
    try:
        session.pipeline(dataset_stages(session.node, b.stored_at, rate), output="/dev/null")
    except RemoteCommandError as error:
        problems.append(f"cannot read {b.location}: {error}")
    pool = zfs.pool_of(b.stored_at)
    status = session.run(zfs.pool_status(pool), check=False)
    problems += [f"pool {pool}: {p}" for p in zfs.parse_pool_errors(status.stdout)]
    return "; ".join(problems) or None
