"""The freeze step against a REAL qemu-ga in a throwaway TCG guest (lab/qga_guest.py)
and real ZFS (zfs-fuse): the guest's disk image lives on a dataset of a pool made
here, so the snapshot captures the guest's own ext4 file system.

Proof of the freeze: ext4 sets its "needs recovery" flag while mounted and clears
it in the superblock while frozen. The freeze step's snapshot must have it clear;
a plain snapshot of the running guest (the control) has it set, and so has the
live disk after the thaw.
No skips: a missing qemu or zfs-fuse makes these tests fail.
"""
from __future__ import annotations

import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from esbackup.drivers.qga import parse_result, remote_argv
from lab.qga_guest import QgaGuest

EXT4_MAGIC = 0xEF53
INCOMPAT_RECOVER = 0x0004


def zfs(*args: str) -> str:
    return subprocess.run(["zfs", *args], check=True, capture_output=True, text=True).stdout


def start_zfs_fuse() -> None:
    if subprocess.run(["pgrep", "-x", "zfs-fuse"], capture_output=True).returncode != 0:
        subprocess.run(["zfs-fuse"], check=True)
    deadline = time.monotonic() + 20
    while subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "zfs-fuse did not come up"
        time.sleep(0.2)


def destroy_pool(pool: str) -> None:
    """zfs-fuse can call a pool busy for a moment after its last user closed it."""
    for _ in range(20):
        if subprocess.run(["zpool", "destroy", "-f", pool], capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"could not destroy pool {pool}")


@pytest.fixture(scope="module")
def dataset():
    """pool/vm on a 256 MiB file; only this pool is ever touched, and it is destroyed."""
    start_zfs_fuse()
    pool = f"esbqga{uuid.uuid4().hex[:8]}"
    image = Path(f"/var/tmp/{pool}.img")
    with open(image, "wb") as f:
        f.truncate(256 * 2**20)
    try:
        subprocess.run(["zpool", "create", pool, str(image)], check=True, capture_output=True)
        try:
            zfs("create", f"{pool}/vm")
            yield f"{pool}/vm"
        finally:
            destroy_pool(pool)
    finally:
        image.unlink()


@pytest.fixture(scope="module")
def guest(dataset):
    mountpoint = zfs("get", "-H", "-o", "value", "mountpoint", dataset).strip()
    with QgaGuest(Path(mountpoint) / "disk.raw") as guest:
        yield guest


def snapshot_disk(snapshot: str) -> Path:
    """The guest disk image as the snapshot holds it (zfs-fuse has no .zfs dir: clone)."""
    clone = snapshot.split("/")[0] + "/clone-" + snapshot.split("@")[1]
    zfs("clone", snapshot, clone)
    return Path(zfs("get", "-H", "-o", "value", "mountpoint", clone).strip()) / "disk.raw"


def needs_recovery(disk: Path) -> bool:
    """The ext4 superblock's INCOMPAT_RECOVER flag: set while mounted, clear while frozen."""
    with open(disk, "rb") as f:
        f.seek(1024)
        block = f.read(1024)
    magic, = struct.unpack_from("<H", block, 0x38)
    assert magic == EXT4_MAGIC, "not an ext4 image"
    incompat, = struct.unpack_from("<I", block, 0x60)
    return bool(incompat & INCOMPAT_RECOVER)


def test_snapshot_of_a_frozen_guest(guest, dataset):
    snapshot = f"{dataset}@esb-freeze-test"
    zfs("snapshot", f"{dataset}@control")
    assert needs_recovery(snapshot_disk(f"{dataset}@control"))  # so the check can tell
    began = time.monotonic()
    proc = subprocess.run(remote_argv(guest.socket_path, snapshot, timeout=30),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    result = parse_result(proc.stdout)
    assert (result.frozen, result.thawed, result.frozen_filesystems) == (True, True, 1), result
    assert result.snapshot == snapshot and result.note == ""
    assert took < 20

    assert snapshot in zfs("list", "-H", "-t", "snapshot", "-o", "name").split()
    assert not needs_recovery(snapshot_disk(snapshot)), "snapshot taken while not frozen"

    assert guest.call("guest-fsfreeze-status") == "thawed"
    assert needs_recovery(guest.disk)
    write = guest.run_in_guest("echo after > /data/after.txt && cat /data/after.txt", timeout=10)
    assert (write.exitcode, write.stdout) == (0, "after\n")


def test_agent_gone_still_snapshots(dataset, tmp_path):
    """A socket nobody serves (VM without agent, wrong path): no freeze, snapshot taken."""
    snapshot = f"{dataset}@esb-no-agent"
    proc = subprocess.run(remote_argv(str(tmp_path / "none.qga"), snapshot, timeout=5),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    result = parse_result(proc.stdout)
    assert (result.frozen, result.thawed, result.snapshot) == (False, True, snapshot)
    assert snapshot in zfs("list", "-H", "-t", "snapshot", "-o", "name").split()
