"""Unit tests of the pure zfs driver: exact argv, recorded outputs, validation.

Fixtures under zfs_outputs/: zfs-fuse/ was recorded on this machine's
zfs-fuse 0.7.0 (pool version 23); openzfs/ and illumos/ are written from the
projects' usage strings and message formats, except openzfs/resume-*,
bookmarks.txt, send-estimate-bookmark.txt and errors/no-resume-state.txt,
recorded on OpenZFS 2.1.11 in the lab's Debian 12 guest.
"""
from pathlib import Path

import pytest

from esbackup.drivers import zfs
from esbackup.errors import InvalidInput, OperationFailed

OUT = Path(__file__).parents[1] / "zfs_outputs"


def fixture(flavour: str, name: str) -> str:
    return (OUT / flavour / name).read_text()


def probe_outputs(flavour: str) -> dict[str, str]:
    files = {"uname": "uname.txt", "version": "zfs-version.txt", "usage": "zfs-usage.txt",
             "pool_versions": "zpool-upgrade-v.txt"}
    return {key: fixture(flavour, f) for key, f in files.items()}


SNAP = "tank/backups/ds/abc-disk1@esb-daily-20261126_010000"
BASE = "tank/backups/ds/abc-disk1@esb-daily-20261125_010000"
FUSE_CAPS = zfs.parse_capabilities(probe_outputs("zfs-fuse"))
OPENZFS_CAPS = zfs.parse_capabilities(probe_outputs("openzfs"))


# --- validation ---------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "zones/3f2a-uuid-disk0", "tank", "tank/backups/ds/abc-disk1", "a/b_c.d:e-f", "t" * 255,
])
def test_valid_dataset_names(name):
    assert zfs.validate_dataset_name(name) == name


@pytest.mark.parametrize("name", [
    SNAP, "zones/3f2a-uuid-disk0@esb-daily-20261126_010000", "tank@x", "tank/a@b.c:d-e_f",
])
def test_valid_snapshot_names(name):
    assert zfs.validate_snapshot_name(name) == name


BAD_NAMES = [
    "", "tank/a b", "tank/'a'", 'tank/"a"', "tank/a;rm -rf /", "tank/$(reboot)", "tank/`id`",
    "tank/../etc", "tank/..", "tank/.", "-tank/a", "tank/-a", "tank//a", "tank/", "/tank",
    "tank/a\nb", "tank/a|b", "tank/a&b", "tank/a>b", "tank/a*", "tank/a,b", "tank/a%b",
    "tank/a#b", "tank/é", "0tank/a", "t" * 256,
]


@pytest.mark.parametrize("name", BAD_NAMES + ["tank/a@b"])
def test_invalid_dataset_names(name):
    with pytest.raises(InvalidInput) as err:
        zfs.validate_dataset_name(name)
    message = str(err.value)
    assert "\n" not in message and repr(name) in message


@pytest.mark.parametrize("name", [n + "@s" for n in BAD_NAMES if n] + [
    "tank/a", "tank/a@", "tank/a@b@c", "tank/a@-x", "tank/a@x y", "tank/a@$(id)", "tank/a@..",
    "tank/a@`id`", "tank/a@a;b", "@snap",
])
def test_invalid_snapshot_names(name):
    with pytest.raises(InvalidInput, match="invalid ZFS"):
        zfs.validate_snapshot_name(name)


def test_non_string_name_is_rejected():
    with pytest.raises(InvalidInput):
        zfs.validate_dataset_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("prop", ["readonly", "used", "esbackup:backup", "com.example:a-b_c.d"])
def test_valid_property_names(prop):
    assert zfs.validate_property_name(prop) == prop


@pytest.mark.parametrize("prop", ["", "Readonly", "-o", "esbackup:", ":x", "a b", "x=y",
                                  "esbackup:$(id)", "esbackup:x;y", "written@snap"])
def test_invalid_property_names(prop):
    with pytest.raises(InvalidInput, match="property"):
        zfs.validate_property_name(prop)


# --- builders -----------------------------------------------------------------

def test_snapshot():
    assert zfs.snapshot(SNAP) == ["zfs", "snapshot", SNAP]
    assert zfs.snapshot(SNAP, {"esbackup:backup": "web01/daily-20261126_010000"}) == [
        "zfs", "snapshot", "-o", "esbackup:backup=web01/daily-20261126_010000", SNAP]


def test_snapshot_rejects_dataset_name():
    with pytest.raises(InvalidInput):
        zfs.snapshot("tank/a")


def test_destroy():
    assert zfs.destroy(SNAP) == ["zfs", "destroy", SNAP]
    assert zfs.destroy("tank/a", recursive=True, force=True) == [
        "zfs", "destroy", "-r", "-f", "tank/a"]
    assert zfs.destroy("tank/a", force=True) == ["zfs", "destroy", "-f", "tank/a"]


@pytest.mark.parametrize("name", ["tank", "tank/a,tank/b", "tank/a@x,y", "tank/a@x%y",
                                  "tank/a b"])
def test_destroy_refuses_pool_roots_and_lists(name):
    with pytest.raises(InvalidInput):
        zfs.destroy(name)


def test_create():
    assert zfs.create("tank/backups/ds") == ["zfs", "create", "-p", "tank/backups/ds"]
    assert zfs.create("tank/x", parents=False, properties={"readonly": "on",
                                                           "esbackup:vm": "web01"}) == [
        "zfs", "create", "-o", "readonly=on", "-o", "esbackup:vm=web01", "tank/x"]


def test_create_validates_properties():
    with pytest.raises(InvalidInput):
        zfs.create("tank/x", properties={"a b": "on"})
    with pytest.raises(InvalidInput):
        zfs.create("tank/x", properties={"esbackup:x": "a\tb"})


def test_rename():
    assert zfs.rename("tank/a", "tank/a-old") == ["zfs", "rename", "tank/a", "tank/a-old"]
    assert zfs.rename("tank/a@x", "tank/a@y") == ["zfs", "rename", "tank/a@x", "tank/a@y"]


@pytest.mark.parametrize("old,new", [("tank/a@x", "tank/b@x"), ("tank/a", "tank/a@x"),
                                     ("tank/a", "tank/$(id)")])
def test_rename_rejects(old, new):
    with pytest.raises(InvalidInput):
        zfs.rename(old, new)


def test_set_and_inherit():
    assert zfs.set_property("tank/a", "readonly", "on") == ["zfs", "set", "readonly=on", "tank/a"]
    assert zfs.set_property(SNAP, "esbackup:backup", "web01/daily x") == [
        "zfs", "set", "esbackup:backup=web01/daily x", SNAP]
    assert zfs.inherit(SNAP, "esbackup:backup") == ["zfs", "inherit", "esbackup:backup", SNAP]


@pytest.mark.parametrize("prop,value", [("esbackup x", "1"), ("esbackup:x", "a\nb"),
                                        ("esbackup:x", "x" * 8192), ("-r", "1")])
def test_set_rejects(prop, value):
    with pytest.raises(InvalidInput):
        zfs.set_property("tank/a", prop, value)


def test_hold_release():
    assert zfs.hold("esbackup", SNAP) == ["zfs", "hold", "esbackup", SNAP]
    assert zfs.release("esbackup", SNAP) == ["zfs", "release", "esbackup", SNAP]
    with pytest.raises(InvalidInput):
        zfs.hold("-r", SNAP)
    with pytest.raises(InvalidInput):
        zfs.release("a b", SNAP)
    with pytest.raises(InvalidInput):
        zfs.hold("esbackup", "tank/a")


def test_mount_unmount():
    assert zfs.mount("tank/a") == ["zfs", "mount", "tank/a"]
    assert zfs.unmount("tank/a") == ["zfs", "unmount", "tank/a"]
    assert zfs.unmount("tank/a", force=True) == ["zfs", "unmount", "-f", "tank/a"]


def test_send_full_and_incremental():
    assert zfs.send(SNAP) == ["zfs", "send", SNAP]
    assert zfs.send(SNAP, base=BASE) == ["zfs", "send", "-i", BASE, SNAP]


def test_send_raw_follows_caps():
    assert zfs.send(SNAP, raw=True) == ["zfs", "send", "-w", SNAP]
    assert zfs.send(SNAP, raw=True, caps=OPENZFS_CAPS) == ["zfs", "send", "-w", SNAP]
    assert zfs.send(SNAP, raw=True, caps=FUSE_CAPS) == ["zfs", "send", SNAP]


def test_stream_refusal_only_from_newer_zfs_into_zfs_fuse():
    assert zfs.stream_refusal(OPENZFS_CAPS, FUSE_CAPS) == (
        "zfs-fuse (pool version 23) cannot receive a dataset stream from openzfs")
    assert zfs.stream_refusal(FUSE_CAPS, OPENZFS_CAPS) is None
    assert zfs.stream_refusal(FUSE_CAPS, FUSE_CAPS) is None
    assert zfs.stream_refusal(OPENZFS_CAPS, OPENZFS_CAPS) is None
    assert zfs.stream_refusal({}, FUSE_CAPS) is None  # not detected yet: no guess


def test_send_compact_only_where_both_ends_have_it():
    both = zfs.common_features(OPENZFS_CAPS, OPENZFS_CAPS)
    assert zfs.send(SNAP, base=BASE, compact=True, caps=both) == [
        "zfs", "send", "-L", "-e", "-c", "-i", BASE, SNAP]
    mixed = zfs.common_features(OPENZFS_CAPS, FUSE_CAPS)
    assert mixed["compact_send"] is False and mixed["resume"] is False
    assert zfs.send(SNAP, compact=True, caps=mixed) == ["zfs", "send", SNAP]
    assert zfs.send(SNAP, compact=True) == ["zfs", "send", SNAP]


@pytest.mark.parametrize("base", ["tank/other@esb-x", SNAP, "tank/backups/ds/abc-disk1",
                                  "tank/a@$(id)"])
def test_send_rejects_bad_base(base):
    with pytest.raises(InvalidInput):
        zfs.send(SNAP, base=base)


def test_send_estimate():
    assert zfs.send_estimate(SNAP) == ["zfs", "send", "-n", "-v", "-P", SNAP]
    assert zfs.send_estimate(SNAP, BASE) == ["zfs", "send", "-n", "-v", "-P", "-i", BASE, SNAP]


def test_receive():
    target = "tank/backups/ds/abc-disk1"
    assert zfs.receive(target) == ["zfs", "receive", target]
    assert zfs.receive(target, force=True, unmounted=True, resumable=True) == [
        "zfs", "receive", "-F", "-u", "-s", target]
    assert zfs.receive(SNAP) == ["zfs", "receive", SNAP]


def test_a_contained_receive_ignores_the_streams_mountpoint_and_canmount_where_it_can():
    target = "tank/backups/ds/t"
    assert zfs.receive(target, unmounted=True, resumable=True, contained=True,
                       caps=OPENZFS_CAPS) == [
        "zfs", "receive", "-u", "-s", "-x", "mountpoint", "-x", "canmount", target]
    # zfs-fuse accepts no -x (nor -o): only `contain`, after the receive, helps there
    assert zfs.receive(target, unmounted=True, contained=True, caps=FUSE_CAPS) == [
        "zfs", "receive", "-u", target]
    assert zfs.contain(target) == ["sh", "-c", zfs.CONTAIN_SCRIPT, "sh", target]
    with pytest.raises(InvalidInput):
        zfs.contain("tank/t@snap")


def test_receive_flags_follow_caps():
    target = "tank/x"
    assert zfs.receive(target, unmounted=True, resumable=True, caps=FUSE_CAPS) == [
        "zfs", "receive", "-u", target]
    assert zfs.receive(target, unmounted=True, resumable=True, caps=OPENZFS_CAPS) == [
        "zfs", "receive", "-u", "-s", target]
    assert zfs.receive(target, unmounted=True, caps={"flavour": "other"}) == [
        "zfs", "receive", target]


def test_get():
    assert zfs.get("tank/a", ["used", "esbackup:backup"]) == [
        "zfs", "get", "-H", "-p", "-o", "name,property,value", "used,esbackup:backup", "tank/a"]
    assert zfs.get(["tank/a", SNAP], "guid") == [
        "zfs", "get", "-H", "-p", "-o", "name,property,value", "guid", "tank/a", SNAP]


@pytest.mark.parametrize("names,props", [([], ["used"]), ("tank/a", []),
                                         ("tank/a", ["used,guid"]), ("tank/a b", ["used"])])
def test_get_rejects(names, props):
    with pytest.raises(InvalidInput):
        zfs.get(names, props)


def test_space_and_pools():
    assert zfs.space("tank") == [
        "zfs", "get", "-H", "-p", "-o", "name,property,value", "available,used", "tank"]
    assert zfs.list_pools() == ["zpool", "list", "-H", "-o", "name,health"]


def test_exists():
    assert zfs.exists(SNAP) == ["zfs", "list", "-H", "-o", "name", SNAP]
    assert zfs.exists("tank/a") == ["zfs", "list", "-H", "-o", "name", "tank/a"]


def test_list_snapshots():
    assert zfs.list_snapshots("tank/backups/ds/abc-disk1") == [
        "zfs", "get", "-H", "-p", "-o", "name,property,value",
        "createtxg,guid,creation,used,esbackup:backup", "-r", "-d", "1",
        "tank/backups/ds/abc-disk1"]
    with pytest.raises(InvalidInput):
        zfs.list_snapshots(SNAP)


# --- parsers on recorded outputs ----------------------------------------------

def test_parse_snapshots_zfs_fuse():
    dataset = "zdprobe13690/backups/ds/3f2a-uuid-disk0"
    snaps = zfs.parse_snapshots(fixture("zfs-fuse", "list-snapshots.txt"), dataset)
    # All four share one creation second: order must come from createtxg.
    assert [s.snapname for s in snaps] == [
        "esb-daily-20261124_010000", "esb-daily-20261125_010000", "manual",
        "esb-daily-20261126_010000"]
    assert len({s.creation for s in snaps}) == 1
    first = snaps[0]
    assert first == zfs.Snapshot(
        name=f"{dataset}@esb-daily-20261124_010000", guid=14050846175909830932, createtxg=683,
        creation=1795671408, used=90112, backup="web01/daily-20261124_010000")
    assert first.dataset == dataset
    assert snaps[2].backup is None
    assert all("/child" not in s.name for s in snaps)


def test_parse_snapshots_sorts_by_createtxg():
    lines = fixture("zfs-fuse", "list-snapshots.txt").splitlines(keepends=True)
    dataset = "zdprobe13690/backups/ds/3f2a-uuid-disk0"
    expected = zfs.parse_snapshots("".join(lines), dataset)
    assert zfs.parse_snapshots("".join(reversed(lines)), dataset) == expected


@pytest.mark.parametrize("flavour,dataset,count", [
    ("openzfs", "tank/backups/ds/3f2a-uuid-disk1", 2),
    ("illumos", "zones/3f2a-uuid-disk0", 1),
])
def test_parse_snapshots_other_flavours(flavour, dataset, count):
    snaps = zfs.parse_snapshots(fixture(flavour, "list-snapshots.txt"), dataset)
    assert len(snaps) == count
    assert snaps[-1].snapname == "esb-daily-20261126_010000"
    assert snaps[-1].backup == "web01/daily-20261126_010000"
    assert isinstance(snaps[-1].guid, int) and snaps[-1].guid > 2**32


def test_parse_snapshots_empty():
    assert zfs.parse_snapshots("", "tank/a") == []


def test_parse_snapshots_missing_number_fails():
    with pytest.raises(OperationFailed, match="guid"):
        zfs.parse_snapshots("tank/a@x\tguid\t-\n", "tank/a")


def test_parse_get():
    output = ("tank/a\tused\t3579904\ntank/a\tmounted\tyes\ntank/a\tquota\t0\n"
              "tank/a\tesbackup:backup\t-\ntank/a\tesbackup:n\t42\n"
              "tank/a@s\tavailable\t-\ntank/a@s\tesbackup:note\ttab\tinside\n")
    assert zfs.parse_get(output) == {
        "tank/a": {"used": 3579904, "mounted": "yes", "quota": 0, "esbackup:backup": None,
                   "esbackup:n": "42"},
        "tank/a@s": {"available": None, "esbackup:note": "tab\tinside"},
    }


def test_parse_get_rejects_garbage():
    with pytest.raises(OperationFailed):
        zfs.parse_get("cannot open 'x': dataset does not exist\n")


def test_parse_space_zfs_fuse():
    assert zfs.parse_get(fixture("zfs-fuse", "space.txt")) == {
        "zdprobe13690": {"available": 216506368, "used": 12083200}}


def test_parse_pools_zfs_fuse():
    assert zfs.parse_pools(fixture("zfs-fuse", "zpool-list.txt")) == [
        zfs.Pool(name="zdprobe13690", health="ONLINE")]
    assert zfs.parse_pools("tank\tONLINE\nbackup\tDEGRADED\n\n") == [
        zfs.Pool("tank", "ONLINE"), zfs.Pool("backup", "DEGRADED")]


def test_parse_exists():
    assert zfs.parse_exists(0, "") is True
    assert zfs.parse_exists(1, fixture("zfs-fuse", "errors/not-found.txt")) is False
    assert zfs.parse_exists(1, fixture("zfs-fuse", "errors/no-pool.txt")) is False
    with pytest.raises(OperationFailed, match="permission denied"):
        zfs.parse_exists(1, "cannot open 'tank/a': permission denied\n")


@pytest.mark.parametrize("flavour,name,size", [
    ("openzfs", "send-estimate-full.txt", 10737418240),
    ("openzfs", "send-estimate-incremental.txt", 52428800),
    ("illumos", "send-estimate-incremental.txt", 1583616),
])
def test_parse_send_estimate(flavour, name, size):
    assert zfs.parse_send_estimate(fixture(flavour, name)) == size


def test_parse_send_estimate_without_total_line():
    output = "full\ttank/a@x\t100\nincremental\tx\ttank/a@y\t20\n"
    assert zfs.parse_send_estimate(output) == 120
    assert zfs.parse_send_estimate("total estimated size is 11.9M\n") is None


@pytest.mark.parametrize("flavour,name,reason", [
    ("zfs-fuse", "not-found.txt", zfs.NOT_FOUND),
    ("zfs-fuse", "no-pool.txt", zfs.NOT_FOUND),
    ("zfs-fuse", "zpool-no-pool.txt", zfs.NOT_FOUND),
    ("zfs-fuse", "send-not-found.txt", zfs.NOT_FOUND),
    ("zfs-fuse", "busy-rename.txt", zfs.BUSY),
    ("zfs-fuse", "busy-destroy.txt", zfs.BUSY),
    ("zfs-fuse", "held-destroy.txt", zfs.BUSY),
    ("zfs-fuse", "no-space.txt", zfs.NO_SPACE),
    ("zfs-fuse", "modified.txt", zfs.MODIFIED),
    ("zfs-fuse", "mismatch.txt", zfs.MISMATCH),
    ("zfs-fuse", "not-earlier.txt", zfs.MISMATCH),
    ("zfs-fuse", "exists.txt", zfs.EXISTS),
    ("zfs-fuse", "create-exists.txt", zfs.EXISTS),
    ("zfs-fuse", "has-children.txt", zfs.HAS_CHILDREN),
    ("zfs-fuse", "bad-stream.txt", zfs.BAD_STREAM),
    ("zfs-fuse", "recv-s-unsupported.txt", zfs.UNSUPPORTED),
    ("zfs-fuse", "send-broken-pipe.txt", zfs.BROKEN_PIPE),
    ("openzfs", "not-found.txt", zfs.NOT_FOUND),
    ("openzfs", "snapshot-not-found.txt", zfs.NOT_FOUND),  # zfs destroy fs@gone
    ("openzfs", "held-destroy.txt", zfs.BUSY),
    ("openzfs", "no-space.txt", zfs.NO_SPACE),
    ("openzfs", "modified.txt", zfs.MODIFIED),
    ("openzfs", "mismatch.txt", zfs.MISMATCH),
    ("openzfs", "has-snapshots.txt", zfs.EXISTS),
    ("openzfs", "bad-stream.txt", zfs.BAD_STREAM),
])
def test_classify_recorded_errors(flavour, name, reason):
    assert zfs.classify_error(fixture(flavour, f"errors/{name}")) == reason


def test_classify_prefers_receiver_error_over_broken_pipe():
    stderr = (fixture("zfs-fuse", "errors/send-broken-pipe.txt") + "\n"
              + fixture("zfs-fuse", "errors/mismatch.txt"))
    assert zfs.classify_error(stderr) == zfs.MISMATCH


def test_classify_unknown():
    assert zfs.classify_error("") is None
    assert zfs.classify_error(fixture("zfs-fuse", "errors/holds.txt")) is None


# --- capabilities ---------------------------------------------------------------

def test_capability_probes():
    assert zfs.capability_probes() == {
        "uname": ["uname", "-s", "-v"],
        "version": ["zfs", "version"],
        "usage": ["zfs", "-?"],
        "pool_versions": ["zpool", "upgrade", "-v"],
    }


def test_capabilities_zfs_fuse():
    assert FUSE_CAPS == {
        "flavour": "zfs-fuse", "version": "pool 23", "pool_version": 23,
        "send_estimate": False, "resume": False, "bookmarks": False, "raw": False,
        "compact_send": False,
        "list_parsable": False, "recv_unmounted": True, "recv_exclude": False,
        "written": False, "zvols": False, "holds_list": False,
    }


def test_capabilities_openzfs():
    assert OPENZFS_CAPS == {
        "flavour": "openzfs", "version": "2.2.7-1~bpo12+1", "pool_version": None,
        "send_estimate": True, "resume": True, "bookmarks": True, "raw": True,
        "compact_send": True,
        "list_parsable": True, "recv_unmounted": True, "recv_exclude": True, "written": True,
        "zvols": True, "holds_list": True,
    }


def test_capabilities_illumos():
    assert zfs.parse_capabilities(probe_outputs("illumos")) == {
        "flavour": "illumos", "version": "joyent_20241024T000402Z", "pool_version": None,
        "send_estimate": True, "resume": True, "bookmarks": True, "raw": False,
        "compact_send": True,
        "list_parsable": True, "recv_unmounted": True, "recv_exclude": False, "written": True,
        "zvols": True, "holds_list": True,
    }


def test_capabilities_old_linux_zfs_without_version_command():
    outputs = probe_outputs("illumos") | {
        "uname": fixture("openzfs", "uname.txt"),
        "pool_versions": fixture("openzfs", "zpool-upgrade-v.txt"),
    }
    caps = zfs.parse_capabilities(outputs)
    assert (caps["flavour"], caps["version"]) == ("openzfs", "")


def test_capabilities_without_zfs():
    with pytest.raises(OperationFailed, match="zfs"):
        zfs.parse_capabilities({"uname": "Linux x", "usage": "sh: zfs: not found\n"})


def test_usage_flags_read_continuation_lines():
    usage = fixture("openzfs", "zfs-usage.txt")
    assert {"F", "u", "s", "M", "o", "x", "d", "e", "A"} <= zfs.usage_flags(usage, "receive")
    assert zfs.usage_flags(fixture("zfs-fuse", "zfs-usage.txt"), "receive") == {"v", "n", "F",
                                                                                 "d"}
    assert zfs.usage_flags(fixture("zfs-fuse", "zfs-usage.txt"), "send") == {"R", "D", "p"}
    assert zfs.usage_flags(usage, "nosuchcommand") == set()


def test_get_local_and_parse_local():
    assert zfs.get_local("tank/vm-disk0") == [
        "zfs", "get", "-H", "-p", "-o", "property,value", "-s", "local", "all", "tank/vm-disk0"]
    assert zfs.parse_local("quota\t52428800\nesbackup:x\t1\n") == {
        "quota": "52428800", "esbackup:x": "1"}


def test_pool_status_and_errors():
    assert zfs.pool_status("tank") == ["zpool", "status", "-v", "tank"]
    assert zfs.pool_of("tank/backups/ds/x-disk1@esb-a") == "tank"
    with pytest.raises(InvalidInput):
        zfs.pool_status("tank/backups")
    assert zfs.parse_pool_errors(fixture("zfs-fuse", "zpool-status-healthy.txt")) == []
    assert zfs.parse_pool_errors(fixture("zfs-fuse", "zpool-status-errors.txt")) == [
        "esbbalexp_10450: 0 read, 0 write, 1 checksum errors",
        "/tmp/balexp/pool.img: 0 read, 0 write, 2 checksum errors",
        "Permanent errors have been detected in the following files: "
        "esbbalexp_10450/ds@s1:/data.bin"]
def test_list_snapshot_names_of_a_whole_tree():
    assert zfs.list_snapshot_names("tank/backups/ds") == [
        "zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", "tank/backups/ds"]
    with pytest.raises(InvalidInput):
        zfs.list_snapshot_names("tank/ds@snap")
    assert zfs.parse_snapshot_names("tank/a@esb-1\ntank/b@esb-2\n\n") == {
        "tank/a@esb-1", "tank/b@esb-2"}


# --- resumable transfers ---------------------------------------------------------

RECORDED = "esblab_r1_530167"  # the pool of the guest the resume outputs come from
TOKEN = fixture("openzfs", "resume-token.txt").strip()


def test_resume_token_query_and_parser():
    assert zfs.resume_token("tank/backups/ds/t") == [
        "zfs", "get", "-H", "-p", "-o", "value", "receive_resume_token", "tank/backups/ds/t"]
    assert zfs.parse_resume_token(fixture("openzfs", "resume-token.txt")) == TOKEN
    assert TOKEN.startswith("1-15bfb7aaa2-118-789c")
    assert zfs.parse_resume_token("-\n") is None


@pytest.mark.parametrize("output", [
    "", "1-2-3\n", "1-abc-12-78 9c\n", "1-abc-12-789c;reboot\n", "1-ABC-12-789c\n",
    "1-abc-12-789c\n-\n", "$(id)\n", "-t\n", "1-a-b-" + "c" * 9000 + "\n",
])
def test_resume_token_parser_is_strict(output):
    with pytest.raises(OperationFailed):
        zfs.parse_resume_token(output)


def test_send_resume_and_its_dry_run():
    assert zfs.send_resume(TOKEN) == ["zfs", "send", "-t", TOKEN]
    assert zfs.send_resume_info(TOKEN) == ["zfs", "send", "-n", "-v", "-P", "-t", TOKEN]
    for bad in ("-nv", "1-2-3-4 x", "", "1-2-3-4\n"):
        with pytest.raises(InvalidInput):
            zfs.send_resume(bad)


def test_receive_abort():
    assert zfs.receive_abort("tank/backups/ds/t") == ["zfs", "receive", "-A", "tank/backups/ds/t"]
    with pytest.raises(InvalidInput):
        zfs.receive_abort("tank/t@snap")
    no_state = fixture("openzfs", "errors/no-resume-state.txt")
    assert "does not have any resumable receive state" in no_state


def test_parse_resume_info_full():
    info = zfs.parse_resume_info(fixture("openzfs", "resume-info-full.txt"))
    assert info == zfs.ResumeInfo(
        toname=f"{RECORDED}/vm1-disk1@esb-daily-20261130_070000",
        toguid=0xb0e091cdb3dcf094, fromguid=None, bytes=0x4c2dd8, remaining=7943768)


def test_parse_resume_info_incremental_and_gone():
    info = zfs.parse_resume_info(fixture("openzfs", "resume-info-incremental.txt"))
    assert (info.fromguid, info.toguid, info.bytes, info.remaining) == (
        0xb0e091cdb3dcf094, 0x51ec5d046844a518, 0x2daf70, 5632152)
    gone = zfs.parse_resume_info(fixture("openzfs", "resume-info-gone.txt"))
    assert gone.remaining is None and gone.toname.endswith("@esb-daily-20261130_080000")


@pytest.mark.parametrize("output", [
    "", "size\t5\n", "resume token contents:\n\ttoname = a@b\n",
    "resume token contents:\n\ttoguid = 0x12\n\ttoname = tank/a;id@b\n",
    "resume token contents:\n\ttoguid = zz\n\ttoname = tank/a@b\n",
])
def test_parse_resume_info_rejects_what_it_cannot_trust(output):
    with pytest.raises(OperationFailed):
        zfs.parse_resume_info(output)


# --- bookmarks --------------------------------------------------------------------

def test_bookmark_builders():
    snap = "zones/vm-disk0@esb-daily-20261126_010000"
    mark = "zones/vm-disk0#esb-daily-20261126_010000"
    assert zfs.bookmark_of(snap) == mark
    assert zfs.destroy(mark) == ["zfs", "destroy", mark]
    assert zfs.send(SNAP.replace("tank/backups/ds/abc-disk1", "zones/vm-disk0"),
                    base=mark) == ["zfs", "send", "-i", mark,
                                   "zones/vm-disk0@esb-daily-20261126_010000"]
    assert zfs.send_estimate("zones/vm-disk0@x", mark) == [
        "zfs", "send", "-n", "-v", "-P", "-i", mark, "zones/vm-disk0@x"]
    assert zfs.replace_with_bookmark(snap) == [
        "sh", "-c", 'zfs bookmark "$1" "$2" && zfs destroy "$1"', "sh", snap, mark]
    assert zfs.list_bookmarks("zones/vm-disk0") == [
        "zfs", "list", "-H", "-p", "-o", "name,guid,createtxg", "-t", "bookmark", "-r", "-d",
        "1", "zones/vm-disk0"]


@pytest.mark.parametrize("call", [
    lambda: zfs.bookmark_of("zones/a#x"),
    lambda: zfs.send("zones/a@x", base="zones/b#x"),
    lambda: zfs.destroy("zones/a#x#y"),
    lambda: zfs.destroy("zones/a#"),
    lambda: zfs.replace_with_bookmark("zones/a@x;id"),
])
def test_bookmark_names_are_checked(call):
    with pytest.raises(InvalidInput):
        call()


def test_parse_bookmarks_recorded_and_strict():
    dataset = f"{RECORDED}/vm1-disk1"
    (mark,) = zfs.parse_bookmarks(fixture("openzfs", "bookmarks.txt"), dataset)
    assert mark == zfs.Bookmark(f"{dataset}#esb-daily-20261130_070000",
                                12745347258130428052, 21)
    assert mark.mark == "esb-daily-20261130_070000"
    assert zfs.parse_bookmarks("", dataset) == []
    assert zfs.parse_bookmarks(f"{dataset}-other#x\t1\t2\n", dataset) == []
    for bad in ("tank/a#x\t4.1E\t2\n", "tank/a#x\t1\n", "tank/a;id#x\t1\t2\n"):
        with pytest.raises(OperationFailed):
            zfs.parse_bookmarks(bad, "tank/a")


def test_send_estimate_from_a_bookmark_recorded():
    assert zfs.parse_send_estimate(fixture("openzfs", "send-estimate-bookmark.txt")) == 8626184


def test_encryption_is_read_from_zfs_get_and_a_key_loaded_by_name():
    get = "tank/vm1\tencryption\taes-256-gcm\n"
    assert zfs.is_encrypted(get, "tank/vm1") is True
    assert zfs.is_encrypted("tank/vm1\tencryption\toff\n", "tank/vm1") is False
    assert zfs.is_encrypted("", "tank/vm1") is False  # no such property (zfs-fuse)
    assert zfs.load_key("tank/vm1") == ["zfs", "load-key", "tank/vm1"]
    with pytest.raises(InvalidInput):
        zfs.load_key("tank/vm1; rm -rf /")
