"""Where backups live on the nodes (docs/DESIGN.md, "On the nodes"); pure functions."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from esbackup.domain.models import Definition

SNAP_PREFIX = "esb-"
HOLD_TAG = "esbackup"  # on the newest snapshot of a dataset target: the next incremental's base
STAMP = "%Y%m%d_%H%M%S"


def stamp(when: datetime) -> str:
    """The UTC time as names carry it (naive times are taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime(STAMP)


EXTENSIONS = {"off": ".zfs", "gzip": ".zfs.gz", "bzip2": ".zfs.bz2"}


def backup_name(definition: str, created: datetime) -> str:
    """`<definition>-<YYYYmmdd_HHMMSS>` with the creation time in UTC."""
    return f"{definition}-{stamp(created)}"


def snapshot_name(backup: str) -> str:
    return SNAP_PREFIX + backup


def source_snapshot(dataset: str, backup: str) -> str:
    return f"{dataset}@{snapshot_name(backup)}"


def owned_by(snapname: str, definition: Definition | str) -> bool:
    """Is this snapshot one that backups of `definition` made?"""
    name = definition.name if isinstance(definition, Definition) else definition
    return re.fullmatch(re.escape(SNAP_PREFIX + name) + r"-\d{8}_\d{6}", snapname) is not None


def created_of(snapname: str, definition: Definition | str) -> datetime | None:
    """When the backup whose snapshot is `snapname` was made, if a backup of
    `definition` made it (the name carries the second, UTC); else None."""
    if not owned_by(snapname, definition):
        return None
    return datetime.strptime(snapname[-len("YYYYmmdd_HHMMSS"):], STAMP).replace(
        tzinfo=timezone.utc)


def dataset_root(zpool: str) -> str:
    return f"{zpool}/backups/ds"


def dataset_target(zpool: str, vm_uuid: str, disk_id: int) -> str:
    return f"{dataset_root(zpool)}/{vm_uuid}-disk{disk_id}"


def aside_name(target: str, when: datetime) -> str:
    """Where an old target goes when a full send must start afresh."""
    return f"{target}-{stamp(when)}"


def file_dir(mountpoint: str, vm_uuid: str, disk_id: int) -> str:
    return f"{mountpoint}/backups/file/{vm_uuid}/disk{disk_id}"


def file_path(mountpoint: str, vm_uuid: str, disk_id: int, backup: str,
              compression: str) -> str:
    return f"{file_dir(mountpoint, vm_uuid, disk_id)}/{backup}{EXTENSIONS[compression]}"


def compression_of(path: str) -> str:
    """The compression a file backup was stored with, from its name."""
    for compression, extension in EXTENSIONS.items():
        if path.endswith(extension):
            return compression
    raise ValueError(f"not a file backup: {path}")


def partial_path(path: str) -> str:
    """The temporary name a file backup is written under until it is whole."""
    head, _, tail = path.rpartition("/")
    return f"{head}/.{tail}.part"


def manifest_dir(mountpoint: str) -> str:
    return f"{mountpoint}/backups/manifests"


def manifest_path(mountpoint: str, vm_uuid: str, disk_id: int, backup: str) -> str:
    return f"{manifest_dir(mountpoint)}/{vm_uuid}/disk{disk_id}/{backup}.json"


def restore_temp(dataset: str, when: datetime) -> str:
    """A sibling of the target disk that a restore receives into."""
    return f"{dataset}-esbrestore-{stamp(when)}"


def restore_old(dataset: str, when: datetime) -> str:
    return f"{dataset}-esbold-{stamp(when)}"
