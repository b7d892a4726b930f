"""Deleting a backup: its data on the node, its manifest, its row (which a copy
on another node takes over, if the backup has one: issue 20)."""
from __future__ import annotations

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Definition
from esbackup.drivers import batch, files, zfs
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import layout, locks, retention
from esbackup.errors import EsbackupError, OperationFailed


def delete_backup(cat: Catalog, b: Backup, wait: float = 0, *, sessions: Sessions) -> None:
    """Delete a backup: its data on every node holding it (its primary, then each
    copy), and its row; Busy (exit 5) while another operation holds its disk."""
    with locks.Locks(cat, owner=f"delete {b.ref}") as held:
        held.disk(b.vm_uuid, b.disk_id, wait, vm=b.vm)
        current: Backup | None = cat.backup(b.vm_uuid, b.name)
        while current is not None:
            current = remove(cat, current, sessions=sessions)


def apply_retention(cat: Catalog, d: Definition, reporter: Reporter | None = None, *,
                    sessions: Sessions) -> list[Backup]:
    """Remove what the definition's retention policy does not keep
    (engine/retention.py); the caller holds the disk lock. One catalog query,
    and one call on the backup node however many go.

    A backup that cannot be deleted now stays (and is tried again after the
    next backup): the new backup is whole either way, so that is a warning.
    """
    by_node: dict[str, list[Backup]] = {}
    for b in retention.due(cat, d):  # one node, unless the definition moved to another
        by_node.setdefault(b.node, []).append(b)
    return [gone for backups in by_node.values()
            for gone in remove_many(cat, backups, reporter, sessions=sessions)]


def prune(cat: Catalog, d: Definition, reporter: Reporter | None = None, wait: float = 0, *,
          sessions: Sessions) -> list[Backup]:
    """`backup prune`: apply the definition's retention now, under its disk's lock."""
    vm = cat.vm(d.vm)
    with locks.Locks(cat, owner=f"prune {d.ref}") as held:
        held.disk(vm.uuid, d.disk_id, wait, vm=vm.hostname)
        return apply_retention(cat, d, reporter, sessions=sessions)


def remove_many(cat: Catalog, backups: list[Backup], reporter: Reporter | None = None, *,
                sessions: Sessions) -> list[Backup]:
    """Remove several backups of ONE node in one call: each one's data (its hold
    released first), then the manifests of those whose data went, fed to the
    call's last step. Returns those removed; the others stay, with a warning.

    The feed knows each step's exit status, not yet all its stderr: data that
    was already gone (not-found, told by stderr) is settled after the call,
    its manifest removed in a second call (rare: data removed behind our back).
    """
    if not backups:
        return []
    if len({b.node for b in backups}) > 1:
        raise ValueError("remove_many takes the backups of one node")
    node = cat.node(backups[0].node)
    steps, owned = [], []
    for i, b in enumerate(backups):
        try:
            steps += data_steps(i, b, node.capabilities.get("holds_list", False))
            owned.append((i, b))
        except EsbackupError as error:
            _warn(reporter, f"retention: backup {b.ref} not deleted: {error}")
    steps.append(batch.Step("manifests", files.remove_listed(), input=True))
    fed: dict[int, Backup] = {}  # by step index: their data went, their manifests go

    def feed(results: batch.Results) -> bytes:
        fed.update((i, b) for i, b in owned
                   if getattr(results.get(f"data-{i}"), "status", 0) == 0)
        return files.listed(b.manifest for b in fed.values() if b.manifest)

    session = sessions(node)
    results = session.batch(steps, feed=feed)
    if results["manifests"].status:
        _warn(reporter, f"retention: manifests of removed backups left on {node.name}: "
              f"{results['manifests'].stderr.strip()}")
    gone_before: dict[int, Backup] = {}
    for i, b in owned:
        data = results.get(f"data-{i}")
        if i in fed or data is None:
            continue
        if zfs.classify_error(data.stderr) == zfs.NOT_FOUND:
            gone_before[i] = b
        else:
            _warn(reporter, f"retention: backup {b.ref} not deleted: "
                  f"{data.stderr.strip() or f'exit {data.status}'}")
    if manifests := [b.manifest for b in gone_before.values() if b.manifest]:
        session.remove_files(*manifests)
    removed = [b for i, b in owned if i in fed or i in gone_before]
    for b in removed:  # a backup with copies elsewhere stays, a copy in its row's place
        cat.remove_primary(b)
    return removed


def data_steps(i: int, b: Backup, holds: bool) -> list[batch.Step]:
    """The steps that remove one backup's data (none for one with no location)."""
    if not b.location:
        return []
    if b.type != "dataset":
        return [batch.Step(f"data-{i}", files.remove(b.location))]
    check_own_snapshot(b.location)
    release = [batch.Step(f"release-{i}", zfs.release(layout.HOLD_TAG, b.location))]
    return [*(release if holds else []), batch.Step(f"data-{i}", zfs.destroy(b.location))]


def would_remove(b: Backup) -> list[str]:
    """What deleting `b` destroys, said without touching its node (`--dry-run`);
    refuses what `remove` would refuse."""
    if b.status == "lost":
        return [f"its catalog row (lost: nothing left on node {b.node})"]
    said = []
    if b.location and b.type == "dataset":
        check_own_snapshot(b.location)
        said.append(f"snapshot {b.location} on node {b.node}")
    elif b.location:
        said.append(f"file {b.location} on node {b.node}")
    if b.manifest:
        said.append(f"manifest {b.manifest} on node {b.node}")
    return [*said, "its catalog row"]


def _warn(reporter: Reporter | None, message: str) -> None:
    if reporter is not None:
        reporter.warn(message)


def remove(cat: Catalog, b: Backup, *, sessions: Sessions) -> Backup | None:
    """Remove the data and manifest of the backup's row (none for a lost one);
    a copy then takes the row's place (returned), or the row goes. The caller
    holds the disk lock."""
    if b.status == "lost":
        return cat.remove_primary(b)
    node = cat.node(b.node)
    t = sessions(node)
    if b.location:
        if b.type == "dataset":
            check_own_snapshot(b.location)
            if node.capabilities.get("holds_list"):  # the newest carries esbackup's hold
                t.run(zfs.release(layout.HOLD_TAG, b.location), check=False)
            result = t.run(zfs.destroy(b.location), check=False)
            if result.status and zfs.classify_error(result.stderr) != zfs.NOT_FOUND:
                raise OperationFailed(f"cannot delete {b.location}: {result.stderr.strip()}")
        else:
            t.remove_files(b.location)
    if b.manifest:
        t.remove_files(b.manifest)
    return cat.remove_primary(b)


def check_own_snapshot(location: str) -> None:
    """Never destroy anything but a snapshot this tool made."""
    zfs.validate_snapshot_name(location)
    if not location.split("@", 1)[1].startswith(layout.SNAP_PREFIX):
        raise OperationFailed(f"refusing to destroy {location}: not an esbackup snapshot")
