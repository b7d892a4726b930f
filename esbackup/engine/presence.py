"""Which backups' data is still on a node: asked once per node, not per backup."""
from __future__ import annotations

from esbackup.domain.models import Backup
from esbackup.drivers import zfs
from esbackup.drivers.session import NodeSession
from esbackup.errors import OperationFailed


def present(session: NodeSession, backups: list[Backup]) -> set[str]:
    """Locations (snapshots, files) of these backups that exist on the node: one
    listing per parent of their targets, one call for all their files."""
    found: set[str] = set()
    targets = {b.location.split("@")[0] for b in backups if b.type == "dataset" and b.location}
    parents = {target.rpartition("/")[0] or target for target in targets}
    for parent in sorted(parents):
        result = session.run(zfs.list_snapshot_names(parent), check=False)
        if result.status == 0:
            found.update(zfs.parse_snapshot_names(result.stdout))
        elif zfs.classify_error(result.stderr) != zfs.NOT_FOUND:
            raise OperationFailed(f"cannot list {parent}: {result.stderr.strip()}")
    found |= session.existing_files(b.location for b in backups
                                    if b.type == "file" and b.location)
    return found
