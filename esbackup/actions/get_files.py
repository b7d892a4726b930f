"""Files back from a backup without restoring the disk: list and get.

The backup node reads its snapshot through a temporary read-only clone made
and destroyed within the one call (drivers/backup_files.py; a volume's
partition mounted read-only, without journal replay), so the backup is
never changed; a file backup's stream is received into that temporary
dataset first (engine/file_stage.py). The files come as a tar stream and
are written on the admin host by engine/extract.py, which treats them as
the hostile data they are.
"""
from __future__ import annotations

import posixpath

from esbackup.catalog.core import Catalog
from esbackup.domain.backup_files import get_paths, inner_path, refusal
from esbackup.domain.models import Backup
from esbackup.drivers import backup_files
from esbackup.drivers.session import NodeSession, Reporter, Sessions
from esbackup.engine import extract, file_stage
from esbackup.errors import InvalidInput


def _source(cat: Catalog, b: Backup,
            sessions: Sessions) -> tuple[NodeSession, str, backup_files.Source]:
    """The backup node's session, the storage's pool and what to read: the
    backup's snapshot, or its stream file (file_stage.py)."""
    if b.status != "ok":
        raise InvalidInput(f"backup {b.ref} is {b.status}: files are read from ok backups only")
    storage, node = cat.storage(b.node, b.storage), cat.node(b.node)
    return sessions(node), storage.zpool, file_stage.source(b, node)


def cost(cat: Catalog, b: Backup) -> str | None:
    """What reading a file backup costs, to tell before it is paid (None: a dataset backup)."""
    return file_stage.cost(b, cat.node(b.node))


def _answer(session: NodeSession, argv: list[str]) -> bytes:
    with session.open_stream(argv) as stream:
        output = b"".join(iter(stream.read, b""))
        status = stream.wait()
        if status != 0:
            raise backup_files.failure(session.node.name, argv, status, stream.stderr)
    return output


def entries(cat: Catalog, b: Backup, path: str | None, *, sessions: Sessions,
            partition: int | None = None) -> tuple[list[dict], list[dict] | None]:
    """The entries of the folder `path` of the backup (or the one entry named),
    sorted by name; or, for a volume when neither a path nor a partition is
    named, its partitions (second in the pair, the first then empty)."""
    path = None if path is None else inner_path(path)
    session, zpool, snapshot = _source(cat, b, sessions)
    output = _answer(session, backup_files.listing(zpool, snapshot, path, partition))
    partitions = backup_files.parse_partitions(output)
    if partitions is not None:
        return [], partitions
    found = backup_files.parse_listing(output)
    for entry in found:
        entry["name"] = posixpath.basename(entry.pop("path"))
    return sorted(found, key=lambda e: e["name"]), None


def planned(cat: Catalog, b: Backup, paths: list[str], *, sessions: Sessions,
            partition: int | None = None) -> list[dict]:
    """What `get` of `paths` would write, each entry with the path it lands at
    (relative to the target folder) and `skipped`: why it would not be, or None."""
    checked = get_paths(paths)
    session, zpool, snapshot = _source(cat, b, sessions)
    found = backup_files.parse_listing(
        _answer(session, backup_files.tree(zpool, snapshot, checked, partition)))
    for entry in found:
        entry["skipped"] = refusal(entry["path"], entry["type"], entry["link"] or "")
    return found


def get(cat: Catalog, b: Backup, paths: list[str], to: str, *, sessions: Sessions,
        as_user: tuple[int, int, list[int]] | None = None, partition: int | None = None,
        reporter: Reporter | None = None) -> list[str]:
    """Copy `paths` of the backup into the folder `to`, each under its last
    component; returns what was skipped, and why. `as_user` (uid, gid, groups):
    the files are written by a process running as that user (sudo's caller)."""
    checked = get_paths(paths)
    names = [posixpath.basename(p) for p in checked if p]
    extract.check_target(to, names)  # before any byte moves (the writer checks again)
    session, zpool, snapshot = _source(cat, b, sessions)
    argv = backup_files.archive(zpool, snapshot, checked, partition)
    # a channel of the node's connection, not OpenSSH's bulk path: its second login
    # tripled the time of a small get (bench/file_get.py)
    with session.open_stream(argv) as stream:
        advance = reporter.progress(f"get {b.ref}") if reporter is not None else None
        read = extract.counted(stream.read, advance)
        try:
            if as_user is None:
                skipped = extract.unpack(read, to, names)
            else:
                skipped = extract.unpack_as(as_user, read, to, names)
        except extract.Unreadable:  # a stream cut short: the node's error says why
            if stream.wait() != 0:
                raise backup_files.failure(session.node.name, argv, stream.status or 1,
                                           stream.stderr) from None
            raise
        if stream.wait() != 0:
            raise backup_files.failure(session.node.name, argv, stream.status or 1,
                                       stream.stderr)
    return skipped


def sweep(cat: Catalog, node: str, storages: set[str], *, sessions: Sessions) -> None:
    """Remove the clones killed `backup ls`/`get` calls left on these storages
    of a node (the next call on a storage does it too)."""
    session = sessions(cat.node(node))
    for storage in sorted(storages):
        session.run(backup_files.sweep(cat.storage(node, storage).zpool))
