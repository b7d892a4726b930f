"""argv of reading files out of a dataset backup, and the parsers of its answers."""
import pytest

from esbackup.drivers import backup_files
from esbackup.errors import InvalidInput, NotFound, RemoteCommandError

SNAP = "tank/backups/ds/u-disk1@esb-daily-20261201_010000"


def test_each_call_is_the_one_script_with_names_and_paths_as_parameters():
    script = backup_files.SCRIPT
    assert backup_files.listing("tank", SNAP, "/etc/") == [
        "sh", "-c", script, "sh", "tank/backups", SNAP, "list", "", "etc"]
    assert backup_files.listing("tank", SNAP, None) == [
        "sh", "-c", script, "sh", "tank/backups", SNAP, "top", "", ""]
    assert backup_files.tree("tank/x", SNAP, ["etc", "/"], partition=2) == [
        "sh", "-c", script, "sh", "tank/x/backups", SNAP, "tree", "2", "etc", ""]
    assert backup_files.archive("tank", SNAP, ["a b/$(reboot)", "-rf"]) == [
        "sh", "-c", script, "sh", "tank/backups", SNAP, "tar", "", "a b/$(reboot)", "-rf"]
    assert backup_files.sweep("tank") == [
        "sh", "-c", script, "sh", "tank/backups", "-", "sweep", ""]


@pytest.mark.parametrize("call", [
    lambda: backup_files.listing("tank", "tank/x", ""),  # not a snapshot
    lambda: backup_files.listing("tank;reboot", SNAP, ""),
    lambda: backup_files.archive("tank", SNAP, ["../../etc"]),
    lambda: backup_files.archive("tank", SNAP, ["etc"], partition=129),
])
def test_bad_names_and_paths_never_reach_the_node(call):
    with pytest.raises(InvalidInput):
        call()


def test_a_volumes_partitions_parse_and_a_file_listing_is_not_taken_for_them():
    assert backup_files.parse_partitions(b"partitions\n1 8388608 ext4\n2 20480000 -\n") == [
        {"partition": 1, "size": 8388608, "filesystem": "ext4"},
        {"partition": 2, "size": 20480000, "filesystem": None}]
    assert backup_files.parse_partitions(b"f\x001\x00644\x000\x00./partitions\x00\x00") is None
    with pytest.raises(InvalidInput):
        backup_files.parse_partitions(b"partitions\n1 x ext4\n")


def test_the_script_clones_read_only_and_destroys_the_clone_on_exit():
    script = backup_files.SCRIPT
    assert "readonly=on -o devices=off -o setuid=off -o exec=off" in script
    assert "ext2|ext3|ext4) opts=ro,noload,nodev,nosuid,noexec" in script
    assert "xfs) opts=ro,norecovery,nodev,nosuid,noexec" in script
    assert "trap 'cd /; gone \"$clone\"" in script
    assert "tar -c -f - --numeric-owner --one-file-system" in script and " -h" not in script


def test_listings_parse_into_entries_with_escaped_non_utf8_names():
    output = (b"f\x004096\x00644\x001764547200.5\x00./etc/hostname\x00\x00"
              b"l\x0011\x00777\x001764547200\x00./shadow\x00/etc/shadow\x00"
              b"d\x003\x004755\x000\x00./bad\xff\nname\x00\x00")
    assert backup_files.parse_listing(output) == [
        {"path": "etc/hostname", "type": "f", "size": 4096, "mode": "0644",
         "mtime": "2025-12-01T00:00:00.500000+00:00", "link": None},
        {"path": "shadow", "type": "l", "size": 11, "mode": "0777",
         "mtime": "2025-12-01T00:00:00+00:00", "link": "/etc/shadow"},
        {"path": "bad\\xff\nname", "type": "d", "size": 3, "mode": "4755",
         "mtime": "1970-01-01T00:00:00+00:00", "link": None}]
    assert backup_files.parse_listing(b"") == []


@pytest.mark.parametrize("output", [b"f\x001\x00", b"f\x00x\x00644\x000\x00./a\x00\x00",
                                    b"f\x001\x00999\x000\x00./a\x00\x00"])
def test_malformed_listings_are_refused(output):
    with pytest.raises(InvalidInput):
        backup_files.parse_listing(output)


def test_the_scripts_own_exit_codes_become_one_line_errors():
    argv = ["sh"]
    assert isinstance(backup_files.failure("b1", argv, 64, "no such path in the backup: x\n"),
                      NotFound)
    error = backup_files.failure("b1", argv, 66, "a volume backup: ...\n")
    assert isinstance(error, InvalidInput) and str(error) == "a volume backup: ..."
    assert isinstance(backup_files.failure("b1", argv, 1, "cannot clone\n"), RemoteCommandError)


def test_fsck_is_the_same_script_in_its_no_change_mode_and_its_lines_parse():
    assert backup_files.fsck("tank", SNAP) == [
        "sh", "-c", backup_files.SCRIPT, "sh", "tank/backups", SNAP, "fsck", ""]
    assert backup_files.SCRIPT.startswith(backup_files.CHECK)
    assert 'e2fsck -n -f "$2"' in backup_files.CHECK
    assert 'xfs_repair -n "$2"' in backup_files.CHECK and 'check "$n" "$p" "$fs"' in \
        backup_files.SCRIPT
    assert backup_files.parse_fsck("fsck 1 ext4 0 /dev/zd16p1: 12/2048 files\n"
                                   "fsck 2 xfs replay \nfsck 3 ext4 4\n") == [
        {"partition": 1, "filesystem": "ext4", "status": "0",
         "last": "/dev/zd16p1: 12/2048 files"},
        {"partition": 2, "filesystem": "xfs", "status": "replay", "last": ""},
        {"partition": 3, "filesystem": "ext4", "status": "4", "last": ""}]
    assert backup_files.parse_fsck("") == []


@pytest.mark.parametrize("output", ["fsck x ext4 0", "fsck 1 ext4 bad", "hello"])
def test_malformed_fsck_lines_are_refused(output):
    with pytest.raises(InvalidInput):
        backup_files.parse_fsck(output)


def test_a_file_backup_is_named_by_its_path_with_how_the_node_unpacks_and_receives_it():
    tools = {"pigz": False, "gzip": True}
    gz = backup_files.stream_file("/tank/backups/file/u/disk1/b.zfs.gz", "gzip",
                                  {"tools": tools, "recv_exclude": True})
    plain = backup_files.stream_file("/tank/backups/file/u/disk1/b.zfs", "off", {})
    assert backup_files.archive("tank", gz, ["etc"]) == [
        "sh", "-c", backup_files.SCRIPT, "sh", "tank/backups",
        "/tank/backups/file/u/disk1/b.zfs.gz", "tar", "", "gzip", "x", "etc"]
    assert backup_files.listing("tank", plain, None)[5:] == [
        "/tank/backups/file/u/disk1/b.zfs", "top", "", "cat", "", ""]
    with pytest.raises(InvalidInput):
        backup_files.stream_file("tank/backups/file/b.zfs", "off", {})
    script = backup_files.SCRIPT
    assert 'zfs receive -u ${x:+-x mountpoint -x canmount} "$clone"' in script
    assert ("canmount=noauto devices=off setuid=off exec=off sharenfs=off sharesmb=off"
            in script and 'zfs destroy -r "$1"' in script)
