"""A file backup read for `backup ls`/`get`: its stream received on its backup node first.

A file backup is one whole `zfs send` stream in a file (actions/backup_kinds.py
never sends a file incrementally), so it needs no base chain; a stream that
is an incremental anyway is refused by the node in one line. Receiving costs
reading the whole stream and, for the call's duration, room in the pool for
the disk's data: every `ls`/`get` call pays it again (the temporary dataset
is destroyed on the way out, or by the next call or `backup sync`).
"""
from __future__ import annotations

from esbackup.domain.models import Backup, Node
from esbackup.drivers import backup_files
from esbackup.engine import layout


def source(b: Backup, node: Node) -> backup_files.Source:
    """What the node script reads: the snapshot of a dataset backup, or the
    stream file of a file backup (with how the node unpacks and receives it)."""
    if b.type != "file":
        return b.stored_at
    return backup_files.stream_file(b.stored_at, layout.compression_of(b.stored_at),
                                    node.capabilities)


def cost(b: Backup, node: Node) -> str | None:
    """The line that says what reading a file backup costs (None for the others)."""
    if b.type != "file":
        return None
    size = f"{b.size} bytes" if b.size is not None else "its whole size"
    return (f"{b.ref} is a file backup: its stream ({size}) is received into a temporary "
            f"dataset on {node.name} first (read whole, and room for the disk's data in "
            "the pool while this call runs), then destroyed")
