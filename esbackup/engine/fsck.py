"""`backup verify --fsck`: a zvol backup's guest file systems checked by their own checkers.

On a temporary clone, in no-change mode (drivers/backup_files.py), so the
backup is never touched. A journal that needs replaying (a backup of a
writing guest, not frozen) is reported, not failed: the read-only check
cannot replay it, and a mount would.
"""
from __future__ import annotations

from esbackup.drivers import backup_files
from esbackup.drivers.session import NodeSession

CLEAN, REPLAY = "0", "replay"


def check(session: NodeSession, zpool: str, snapshot: str) -> tuple[str | None, str]:
    """(what is wrong, or None; what was checked, for the verify's detail)."""
    argv = backup_files.fsck(zpool, snapshot)
    result = session.run(argv, check=False)
    if result.status != 0:
        error = backup_files.failure(session.node.name, argv, result.status, result.stderr)
        return f"fsck could not run: {error}", ""
    return judge(backup_files.parse_fsck(result.stdout))


def judge(checked: list[dict]) -> tuple[str | None, str]:
    """The verdict on `parse_fsck`'s lines: any checker status but clean or
    replay is a problem; the detail names each file system's state."""
    if not checked:
        return None, "fsck: no ext2/3/4 or XFS file system in this backup"
    problems = [f"fsck partition {c['partition']} {c['filesystem']}: exit {c['status']}: "
                f"{c['last']}" for c in checked if c["status"] not in (CLEAN, REPLAY)]
    states = {CLEAN: "clean", REPLAY: "needs a journal replay"}
    notes = [f"partition {c['partition']} {c['filesystem']} "
             + states.get(c["status"], f"has errors (exit {c['status']})") for c in checked]
    return "; ".join(problems) or None, "fsck: " + ", ".join(notes)
