"""Cleaning up after runs that died: their pending rows, partial data, stray snapshots."""
from __future__ import annotations

import re
from collections import defaultdict

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup
from esbackup.drivers import files, zfs
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import layout, locks, presence, resume
from esbackup.errors import EsbackupError, NotFound


def best_effort(steps: list[tuple], reporter: Reporter | None = None, *,
                sessions: Sessions) -> None:
    """Run cleanup commands [(node, argv)], reporting but never raising failures."""
    for node, argv in steps:
        try:
            result = sessions(node).run(argv, check=False)
            failed = result.status != 0 and zfs.classify_error(result.stderr) != zfs.NOT_FOUND
            detail = result.stderr.strip()
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the first error
            failed, detail = True, str(error)
        if failed and reporter is not None:
            reporter.warn(f"cleanup on {node.name} failed: {' '.join(argv[:3])}: {detail}")


def after_takeover(cat: Catalog, stale: list[dict], reporter: Reporter | None = None, *,
                   sessions: Sessions) -> None:
    """A lock was taken from a dead process: undo what its run left on that disk,
    and close its history row (it could not: its process or admin host died)."""
    for holder in stale:
        kind, _, rest = holder["resource"].partition(":")
        if kind != "disk":
            continue
        if run := re.search(r"\(run (\d+)\)$", holder["owner"]):
            cat.abandon_run(int(run.group(1)), f"its process died (pid {holder['pid']} on "
                                               f"{holder['host']}); taken over")
        vm_uuid, _, disk_id = rest.rpartition(":")
        for b in cat.backups(vm=vm_uuid, disk_id=int(disk_id), status="pending"):
            discard_pending(cat, b, reporter, sessions=sessions)
        recover_disk(cat, vm_uuid, int(disk_id), reporter, sessions=sessions)
        settle_dead_restores(cat, reporter, sessions=sessions)


def discard_pending(cat: Catalog, b: Backup, reporter: Reporter | None = None, *,
                    sessions: Sessions) -> None:
    """Remove a pending backup's row and whatever part of it reached the nodes.

    A dataset stream that the target can resume keeps its source snapshot
    (and the target its partial receive): the definition's next run resumes
    it, or discards both (engine/resume.py)."""
    target_node = cat.node(b.node)
    storage = cat.storage(b.node, b.storage)
    target = layout.dataset_target(storage.zpool, b.vm_uuid, b.disk_id)
    steps = []
    try:
        vm = cat.vm(b.vm_uuid)
        dataset = vm.disks.get(b.disk_id)
        if dataset and not (b.type == "dataset" and resume.kept(sessions(target_node), target)):
            steps.append((cat.node(vm.node), zfs.destroy(layout.source_snapshot(dataset, b.name))))
    except Exception:  # noqa: BLE001 - the VM may be gone; its backups stay
        pass
    mount = sessions(target_node).mountpoint(storage.zpool)
    steps.append((target_node, files.remove(layout.manifest_path(
        mount, b.vm_uuid, b.disk_id, b.name))))
    if b.type == "dataset":
        steps.append((target_node, zfs.destroy(f"{target}@{layout.snapshot_name(b.name)}")))
    else:
        for compression in layout.EXTENSIONS:
            path = layout.file_path(mount, b.vm_uuid, b.disk_id, b.name, compression)
            steps.append((target_node, files.remove(path, layout.partial_path(path))))
    best_effort(steps, reporter, sessions=sessions)
    cat.delete_backup(b)
    if reporter is not None:
        reporter.warn(f"cleaned up backup {b.ref} left pending by a run that died")


def recover_disk(cat: Catalog, vm_uuid: str, disk_id: int, reporter: Reporter | None = None,
                 *, sessions: Sessions) -> None:
    """A restore onto this disk died: drop its temporary dataset, and put back a
    target caught between the two renames (or finish destroying the old one)."""
    try:
        vm = cat.vm(vm_uuid)
        target = vm.disks[disk_id]
    except (NotFound, KeyError):  # a deleted VM, or a disk it no longer has
        return
    session = sessions(cat.node(vm.node))
    parent, _, leaf = target.rpartition("/")
    if not parent:
        return
    names = session.run(zfs.list_children(parent)).stdout.split()
    temps = [n for n in names if n.startswith(f"{target}-esbrestore-")]
    olds = [n for n in names if n.startswith(f"{target}-esbold-")]
    steps = [(cat.node(vm.node), zfs.destroy(n, recursive=True, force=True)) for n in temps]
    if olds and target not in names:
        session.rename(olds[-1], target)
        session.run(zfs.mount(target), check=False)
        olds = olds[:-1]
    steps += [(cat.node(vm.node), zfs.destroy(n, recursive=True, force=True)) for n in olds]
    best_effort(steps, reporter, sessions=sessions)


def settle_dead_restores(cat: Catalog, reporter: Reporter | None = None, *,
                         sessions: Sessions) -> None:
    """Backups left in `restore` by a restore that no longer runs: the restore only
    read them, so their data decides: `ok` when it is on the node, `lost` when it
    is gone (an unreachable node leaves them for `backup sync`)."""
    live = {h["owner"] for h in cat.locks("disk:") if not locks.is_stale(h)}
    by_node: dict[str, list[Backup]] = defaultdict(list)
    for b in cat.backups(status="restore"):
        if not any(owner.startswith(f"restore {b.ref} ") for owner in live):
            by_node[b.node].append(b)
    for node_name, backups in sorted(by_node.items()):
        try:
            found = presence.present(sessions(cat.node(node_name)), backups)
        except EsbackupError as error:
            if reporter is not None:
                reporter.warn(f"{len(backups)} backup(s) left in restore by a run that died "
                              f"stay so until `backup sync`: {error}")
            continue
        for b in backups:
            status = "ok" if b.location in found else "lost"
            cat.update_backup(b, status=status)
            if reporter is not None:
                reporter.warn(f"backup {b.ref} was left in restore by a run that died; "
                              f"now {status}")
