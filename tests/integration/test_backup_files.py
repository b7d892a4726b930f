"""Files back from dataset backups (zfs-fuse nodes): ls, get, hostile content, kills."""
import glob
import hashlib
import os
import re
import signal
import stat
import subprocess

import pytest

from tests.integration.site import wait_for


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def backup(site) -> str:
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    site.esb.ok("run", ref)
    return f"web01/{site.backups()[-1]['name']}"


def leftovers(site) -> list[str]:
    """Clones and mount folders of ls/get calls on the backup node."""
    names = site.zfs("list", "-H", "-o", "name", "-r", f"{site.nodes.backup.pool}/backups")
    return [n for n in names.split() if "esbfiles" in n] + glob.glob("/tmp/esbfiles.*")


def test_ls_and_get_bring_back_a_file_a_folder_and_a_file_deleted_since(site, tmp_path):
    tmp_path = tmp_path / "out"  # beside the catalog
    tmp_path.mkdir()
    site.write("etc/ssh/sshd_config", b"PermitRootLogin no\n")
    expected = {p: sha(site.source_dir / p)
                for p in ("disk.img", "etc/hostname", "etc/ssh/sshd_config")}
    ref = backup(site)
    snapshots = site.snapshots(site.target)
    (site.source_dir / "etc/hostname").unlink()
    (site.source_dir / "disk.img").write_bytes(b"changed since")

    rows = [line.split() for line in site.esb.ok("backup", "ls", ref).stdout.splitlines()]
    assert ["disk.img", "file"] in rows and ["etc", "dir"] in rows
    listed = {e["name"]: e for e in site.esb.json("backup", "ls", ref, "/etc")}
    assert set(listed) == {"hostname", "ssh"}
    assert listed["hostname"]["type"] == "file" and listed["hostname"]["size"] == 4
    assert listed["ssh"]["type"] == "dir" and listed["hostname"]["mode"] == "0644"
    long = site.esb.ok("backup", "ls", ref, "etc/hostname", "-l").stdout
    assert "hostname" in long and "Modified" in long

    site.esb.ok("backup", "get", ref, "/etc/hostname", "/disk.img", "--to", str(tmp_path))
    site.esb.ok("backup", "get", ref, "/etc", "--to", str(tmp_path / "again"),
                "--dry-run")
    (tmp_path / "tree").mkdir()
    site.esb.ok("backup", "get", ref, "/etc", "--to", str(tmp_path / "tree"))
    assert sha(tmp_path / "hostname") == expected["etc/hostname"]
    assert sha(tmp_path / "disk.img") == expected["disk.img"]
    assert sha(tmp_path / "tree/etc/hostname") == expected["etc/hostname"]
    assert sha(tmp_path / "tree/etc/ssh/sshd_config") == expected["etc/ssh/sshd_config"]
    assert sorted(os.listdir(tmp_path)) == ["disk.img", "hostname", "tree"]
    assert site.snapshots(site.target) == snapshots and leftovers(site) == []

    err = site.esb.fails(2, "backup", "get", ref, "/etc/hostname", "--to", str(tmp_path))
    assert "already exists" in err
    assert "no such path" in site.esb.fails(4, "backup", "get", ref, "/nope", "--to",
                                            str(tmp_path / "tree"))
    assert "'..'" in site.esb.fails(2, "backup", "ls", ref, "/etc/../..")
    assert leftovers(site) == []


def test_hostile_content_is_skipped_and_nothing_leaves_the_target(site, tmp_path):
    root = site.source_dir
    (root / "bin").mkdir()
    (root / "bin/suid").write_bytes(b"#!/bin/sh\nid\n")
    os.chmod(root / "bin/suid", 0o6755)
    os.symlink("/etc", root / "etc-abs")
    os.symlink("/etc/shadow", root / "etc/shadow")
    os.symlink("../../../../..", root / "etc/up")
    os.symlink("hostname", root / "etc/name")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "evil\x1b[2Jname").write_bytes(b"x")
    ref = backup(site)
    target = tmp_path / "to"
    target.mkdir()

    shown = site.esb.ok("backup", "ls", ref).stdout
    assert "evil\\x1b[2Jname" in shown and "\x1b" not in shown
    assert "not a folder" in site.esb.fails(2, "backup", "ls", ref, "/etc-abs/passwd")
    assert "not a folder" in site.esb.fails(2, "backup", "get", ref, "/etc-abs/shadow",
                                            "--to", str(target))
    plan = {e["path"]: e["skipped"] for e in site.esb.json(
        "backup", "get", ref, "/", "--to", str(target), "--dry-run")}
    assert plan["etc/shadow"] == "absolute link: not created"
    assert plan["null"] == "char device: not created" and plan["bin/suid"] is None

    result = site.esb.ok("backup", "get", ref, "/", "--to", str(target))
    for name in ("etc-abs", "etc/shadow", "etc/up", "null"):
        assert f"skipped {name}: " in result.stderr
    assert sorted(os.listdir(target)) == ["bin", "disk.img", "etc", "evil\x1b[2Jname"]
    assert sorted(os.listdir(target / "etc")) == ["hostname", "name"]
    assert os.readlink(target / "etc/name") == "hostname"
    mode = os.stat(target / "bin/suid").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o700 == 0o700
    assert leftovers(site) == []


def test_a_killed_get_leaves_no_clone_and_the_next_call_removes_leftovers(site, tmp_path):
    tmp_path = tmp_path / "out"  # beside the catalog
    tmp_path.mkdir()
    site.write("big.bin", os.urandom(96 << 20))
    ref = backup(site)
    proc = site.spawn("backup", "get", ref, "/big.bin", "--to", str(tmp_path))
    wait_for(lambda: glob.glob(f"{tmp_path}/.esbackup-get-*/big.bin"), what="a get under way")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # a clone that a call killed with its shell left (its PID no longer runs)
    dead = subprocess.Popen(["true"])
    dead.wait()
    clone = f"{site.nodes.backup.pool}/backups/esbfiles-{dead.pid}"
    site.zfs("clone", site.backups()[-1]["location"], clone)
    site.esb.ok("backup", "ls", ref)  # the next call on that storage removes both
    wait_for(lambda: leftovers(site) == [], what="no clone left")
    site.esb.ok("backup", "get", ref, "/big.bin", "--to", str(tmp_path))
    assert os.listdir(tmp_path) == ["big.bin"]  # the killed call's staging folder is gone
    assert sha(tmp_path / "big.bin") == sha(site.source_dir / "big.bin")

    site.zfs("clone", site.backups()[-1]["location"], clone)
    site.esb.ok("backup", "sync")
    assert leftovers(site) == []


# An MBR with two Linux partitions (sectors 2048+16384, 18432+40000): the guest image
# has no sfdisk (Debian's `fdisk` package), so python3 writes the table.
MBR = """import struct, sys
entry = lambda start, count: struct.pack("<B3sB3sII", 0, bytes(3), 0x83, bytes(3), start, count)
with open(sys.argv[1], "r+b") as disk:
    disk.seek(446)
    disk.write(entry(2048, 16384) + entry(18432, 40000) + bytes(32) + b"\\x55\\xaa")
"""
EXT4_DISK = """set -e
for i in 1 2 3 4 5 6 7 8 9 10; do  # udev may still hold the disk after the MBR's write
  udevadm settle; blockdev --rereadpt "$1" 2>/dev/null && break; sleep 1
done
udevadm settle
mkfs.ext4 -q "$1-part1"
m=$(mktemp -d); mount "$1-part1" "$m"
mkdir "$m/etc"; printf 'vm1\\n' > "$m/etc/hostname"; head -c 1048576 /dev/urandom > "$m/data.bin"
ln -s /etc/shadow "$m/etc/shadow"; sha256sum "$m/data.bin"; umount "$m"; rmdir "$m"
"""


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_zvol_backups_give_files_from_their_ext4_partition(site, tmp_path):
    compute, backup_node = site.nodes.compute, site.nodes.backup
    site.lab.run(compute, "python3", "-c", MBR, site.nodes.device)
    digest = site.sh(compute, EXT4_DISK, site.nodes.device).split()[0]
    ref = backup(site)
    partitions = site.esb.json("backup", "ls", ref)
    assert [(p["partition"], p["filesystem"]) for p in partitions] == [(1, "ext4"), (2, None)]
    assert partitions[0]["size"] == 16384 * 512
    names = {e["name"]: e["type"] for e in site.esb.json("backup", "ls", ref, "/")}
    assert names == {"data.bin": "file", "etc": "dir", "lost+found": "dir"}
    out = tmp_path / "out"
    out.mkdir()
    result = site.esb.ok("backup", "get", ref, "/data.bin", "/etc", "--to", str(out),
                         "--partition", "1")
    assert sha(out / "data.bin") == digest
    assert (out / "etc/hostname").read_bytes() == b"vm1\n"
    assert not os.path.lexists(out / "etc/shadow") and "skipped etc/shadow" in result.stderr
    err = site.esb.fails(2, "backup", "ls", ref, "/", "--partition", "2")
    assert "partition 2: not an ext2/3/4 or xfs file system (found 1 ext4, 2 -)" in err
    left = site.sh(backup_node, 'ls -d /tmp/esbfiles.* 2>/dev/null; grep esbfiles /proc/mounts;'
                   ' zfs list -H -o name -r "$1" | grep esbfiles; true',
                   f"{backup_node.pool}/backups")
    assert left == ""


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_verify_fsck_passes_a_good_zvol_backup_and_fails_a_damaged_one(site):
    compute = site.nodes.compute
    site.lab.run(compute, "python3", "-c", MBR, site.nodes.device)
    site.sh(compute, EXT4_DISK, site.nodes.device)
    good = backup(site)
    site.lab.run(compute, "debugfs", "-w", "-R", "clri <2>", f"{site.nodes.device}-part1")
    site.esb.ok("run", "web01/daily")
    bad = f"web01/{site.backups()[-1]['name']}"
    [outcome] = site.esb.json("backup", "verify", good, "--fsck")
    assert (outcome["result"], outcome["detail"]) == ("ok", "fsck: partition 1 ext4 clean")
    result = site.esb("backup", "verify", bad, "--fsck", "-f", "json")
    assert result.exit_code == 1 and "damaged" in result.stderr
    shown = site.esb.json("backup", "show", bad)
    assert shown["verify_result"] == "failed"
    # e2fsck's exit bits: 4 errors left uncorrected (-n), 8 with it here (root inode gone)
    assert re.fullmatch(r"fsck partition 1 ext4: exit (4|12): .*still has errors.*",
                        shown["verify_error"])
    assert site.esb.json("backup", "show", good)["verify_result"] == "ok"
    check = site.esb("check")
    assert check.exit_code == 2 and bad.split("/")[1] in check.stdout
    left = site.sh(site.nodes.backup, 'ls -d /tmp/esbfiles.* 2>/dev/null; '
                   'zfs list -H -o name -r "$1" | grep esbfiles; true',
                   f"{site.nodes.backup.pool}/backups")
    assert left == ""
