"""`verify --fsck`'s checks (drivers/backup_files.CHECK, engine/fsck.judge) run with
the real e2fsck and xfs_repair on real file system images: clean, with a journal or
log left to replay (what an unfrozen backup of a writing guest holds), damaged.
No ZFS: the checkers read image files. The XFS log is left dirty by a real kernel
mount (a loop device) shut down mid-write, as a guest's crash would leave it."""
import subprocess

import pytest

from esbackup.drivers import backup_files
from esbackup.engine import fsck


def sh(*argv: str, input: bytes | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, input=input).stdout.decode()


def verdict(image, filesystem: str) -> tuple[str | None, str]:
    """What `verify --fsck` records of the image: the node script's own check."""
    out = sh("sh", "-c", backup_files.CHECK + 'check 1 "$1" "$2"', "sh", str(image), filesystem)
    return fsck.judge(backup_files.parse_fsck(out))


@pytest.fixture
def ext4(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("vm1\n")
    image = tmp_path / "ext4.img"
    sh("truncate", "-s", "32M", str(image))
    sh("mkfs.ext4", "-q", "-F", "-d", str(tree), str(image))
    return image


@pytest.fixture
def xfs(tmp_path):
    image = tmp_path / "xfs.img"
    sh("truncate", "-s", "320M", str(image))  # xfsprogs 6.1's smallest file system: 300 MB
    sh("mkfs.xfs", "-q", "-f", str(image))
    return image


def test_a_clean_ext4_passes(ext4):
    assert verdict(ext4, "ext4") == (None, "fsck: partition 1 ext4 clean")


def test_an_ext4_with_a_journal_to_replay_is_reported_as_such_and_not_failed(ext4, tmp_path):
    """A transaction committed to the journal, not yet to the file system: e2fsck -n
    skips the recovery and exits 0, which the old check called clean."""
    (tmp_path / "block").write_bytes(b"x" * 4096)
    sh("debugfs", "-w", "-f", "-", str(ext4),
       input=f"jo\njw -b 1000 {tmp_path / 'block'}\njc\n".encode())
    assert "needs_recovery" in sh("dumpe2fs", "-h", str(ext4))
    assert verdict(ext4, "ext4") == (None, "fsck: partition 1 ext4 needs a journal replay")


def test_a_damaged_ext4_fails_naming_the_checker_and_its_exit(ext4):
    sh("debugfs", "-w", "-R", "clri <2>", str(ext4))  # the root folder's inode wiped
    problem, detail = verdict(ext4, "ext4")
    # e2fsck's exit bits: 4 errors left uncorrected (-n), 8 with it (no root inode)
    assert problem == (f"fsck partition 1 ext4: exit 12: {ext4}: ********** WARNING: "
                       "Filesystem still has errors ********** ")
    assert detail == "fsck: partition 1 ext4 has errors (exit 12)"


def test_a_clean_xfs_passes(xfs):
    assert verdict(xfs, "xfs") == (None, "fsck: partition 1 xfs clean")


def test_an_xfs_with_a_dirty_log_is_reported_as_needing_replay_not_failed(xfs, tmp_path):
    """xfs_repair -n exits 1 on it ("valuable metadata changes in a log"): the old
    check, which took only exit 2 for a replay, failed the backup."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    sh("mount", "-o", "loop", str(xfs), str(mnt))
    try:
        for i in range(50):
            (mnt / f"f{i}").write_text(f"{i}\n")
        sh("sync", "-f", str(mnt / "f0"))  # the log on disk, its metadata not yet home
        sh("xfs_io", "-x", "-c", "shutdown", str(mnt))  # as a crash: no log flush
    finally:
        sh("umount", str(mnt))
    assert "valuable metadata changes in a log" in subprocess.run(
        ["xfs_repair", "-n", "-f", str(xfs)], capture_output=True, text=True).stderr
    assert verdict(xfs, "xfs") == (None, "fsck: partition 1 xfs needs a journal replay")


def test_a_damaged_xfs_fails(xfs):
    root = sh("xfs_db", "-c", "sb 0", "-c", "p rootino", str(xfs)).split("=")[1].strip()
    sh("xfs_db", "-x", "-c", f"inode {root}", "-c", "write -d core.magic 0", str(xfs))
    problem, detail = verdict(xfs, "xfs")
    assert problem is not None and problem.startswith("fsck partition 1 xfs: exit 1: ")
    assert detail == "fsck: partition 1 xfs has errors (exit 1)"
