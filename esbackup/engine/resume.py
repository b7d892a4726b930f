"""Resuming a dataset transfer that died, from the target's receive_resume_token.

A dataset backup onto a node with `resume` receives with `zfs receive -s`:
when the stream dies (process killed, connection dropped, node rebooted) the
target keeps what it got and a token naming the stream. The next run of the
same definition asks `zfs send -nvP -t TOKEN` on the compute node what the
token would send: if that is a snapshot this definition made, still on the
source with the token's guid, the run resumes it (`zfs send -t TOKEN`) and
becomes the backup of that snapshot, named after it. Any other token (another
definition's stream, a snapshot that is gone, a token the node cannot read)
is discarded with `zfs receive -A` and the run starts over.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from esbackup.domain.models import Definition
from esbackup.drivers import batch, zfs
from esbackup.drivers.session import NodeSession
from esbackup.engine import layout
from esbackup.errors import OperationFailed

NOTE = "resumed the transfer of a run that died (freeze state unknown)"


@dataclass(frozen=True)
class Resumable:
    """An interrupted stream this run will finish."""

    token: str
    info: zfs.ResumeInfo
    created: datetime  # the interrupted run's backup time, from its snapshot's name

    @property
    def snapshot(self) -> str:
        return self.info.toname


def kept(session: NodeSession, target: str) -> bool:
    """Does `target` on the session's node hold a partial receive that a next run
    may resume? False on a node without `resume` or a target that does not exist."""
    if not session.node.capabilities.get("resume"):
        return False
    result = session.run(zfs.resume_token(target), check=False)
    if result.status and zfs.classify_error(result.stderr) == zfs.NOT_FOUND:
        return False
    if result.status:
        raise OperationFailed(f"cannot read the resume token of {target}: "
                              f"{result.stderr.strip()}")
    return zfs.parse_resume_token(result.stdout) is not None


def judge(source_session: NodeSession, token: str, source: str, d: Definition,
          source_snaps: list[zfs.Snapshot]) -> Resumable | str:
    """The stream to resume, or why the token must be discarded."""
    result = source_session.run(zfs.send_resume_info(token), check=False)
    if result.status:
        detail = (result.stderr.strip().splitlines() or [f"exit {result.status}"])[-1]
        return f"the compute node cannot resume it ({detail})"
    info = zfs.parse_resume_info(result.stdout + result.stderr)
    dataset, _, snapname = info.toname.partition("@")
    created = layout.created_of(snapname, d)
    if dataset != source or created is None:
        return f"it sends {info.toname}, not a snapshot of this definition"
    if not any(s.name == info.toname and s.guid == info.toguid for s in source_snaps):
        return f"its snapshot {info.toname} is gone from the source"
    return Resumable(token, info, created)


def abort(session: NodeSession, target: str,
          snaps: list[zfs.Snapshot] | None) -> list[zfs.Snapshot] | None:
    """Discard the target's partial receive and its token, in one call that also
    says whether the target is still there (a partial first receive goes with
    its token); returns the target's snapshots as they now are (None: no target)."""
    results = session.batch([batch.Step("abort", zfs.receive_abort(target), stop=True),
                             batch.Step("exists", zfs.exists(target))])
    results.ok("abort")
    exists = results["exists"]
    return snaps if zfs.parse_exists(exists.status, exists.stderr) else None
