"""`node create` (nodes.detect) and `node check` (nodes.check): one remote call
each, answered here with outputs recorded on zfs-fuse 0.7.0 (zfs_outputs/)
through tests/unit/replay.py."""
from pathlib import Path

import pytest

from esbackup.domain.models import Node, Storage
from esbackup.drivers import probe, zfs
from esbackup.drivers.transport import Result
from esbackup.errors import OperationFailed
from esbackup.services import nodes
from tests.unit.replay import ReplayNode, Replays, failed, ok

FUSE = Path(__file__).parents[1] / "zfs_outputs" / "zfs-fuse"
POOL = "zdprobe13690"  # the recorded pool
PROBES = [["uname", "-s", "-v"], ["zfs", "version"], ["zfs", "-?"], ["zpool", "upgrade", "-v"]]
WHICH = ["sh", "-c", probe.WHICH_SCRIPT, "sh", *probe.TOOLS]
SPACE = ["zfs", "get", "-H", "-p", "-o", "name,property,value", "available,used", POOL, "gone"]


def split(text: str, at: int) -> Result:
    """A failing probe whose clue is spread over stdout and stderr."""
    return Result(2, text[:at], text[at:])


def fuse_answers() -> dict:
    read = lambda name: (FUSE / name).read_text()  # noqa: E731
    return {
        tuple(PROBES[0]): ok(read("uname.txt")),
        tuple(PROBES[1]): split(read("zfs-version.txt"), 10),
        tuple(PROBES[2]): split(read("zfs-usage.txt"), 40),
        tuple(PROBES[3]): ok(read("zpool-upgrade-v.txt")),
        tuple(WHICH): ok("gzip\nsha256sum\npython3\n"),
        ("zpool", "list", "-H", "-o", "name,health"): ok(read("zpool-list.txt")),
        tuple(SPACE): Result(1, read("space.txt"),
                             "cannot open 'gone': dataset does not exist\n"),
    }


FUSE_CAPS = {
    **zfs.parse_capabilities({
        "uname": (FUSE / "uname.txt").read_text(),
        "version": (FUSE / "zfs-version.txt").read_text(),
        "usage": (FUSE / "zfs-usage.txt").read_text(),
        "pool_versions": (FUSE / "zpool-upgrade-v.txt").read_text()}),
    "tools": {t: t in ("gzip", "sha256sum", "python3") for t in probe.TOOLS}}


@pytest.fixture
def node():
    t = ReplayNode("b1", fuse_answers())
    return Node("b1", "127.0.0.3", backup=True), t


def test_check_steps_exact():
    steps = nodes.check_steps([Storage("b1", "tank", POOL), Storage("b1", "old", "gone")])
    assert [(s.name, list(s.argv), s.stop, s.input) for s in steps] == [
        ("probe-uname", PROBES[0], False, False),
        ("probe-version", PROBES[1], False, False),
        ("probe-usage", PROBES[2], False, False),
        ("probe-pool-versions", PROBES[3], False, False),
        ("tools", WHICH, False, False),
        ("pools", ["zpool", "list", "-H", "-o", "name,health"], False, False),
        ("space", SPACE, False, False)]
    assert nodes.detect_steps() == steps[:5]
    assert [s.name for s in nodes.check_steps([])] == [s.name for s in steps[:6]]


def test_detect_is_one_call(node):
    n, t = node
    assert nodes.detect(n, sessions=Replays(b1=t)) == FUSE_CAPS == n.capabilities
    assert t.calls == [("batch", [*PROBES, WHICH])]


def test_check_is_one_call(node):
    n, t = node
    report = nodes.check(n, [Storage("b1", "tank", POOL), Storage("b1", "old", "gone")],
                         sessions=Replays(b1=t))
    assert t.calls == [("batch", [*PROBES, WHICH, ["zpool", "list", "-H", "-o", "name,health"],
                                  SPACE])]
    assert report == {
        "node": "b1", "address": "127.0.0.3", "port": 22, "host_key": None,
        "capabilities": FUSE_CAPS, "pools": [f"{POOL} (ONLINE)"],
        "storages": [
            {"storage": "tank", "zpool": POOL, "available": 216506368, "used": 12083200,
             "missing": False},
            {"storage": "old", "zpool": "gone", "available": None, "used": None,
             "missing": True}]}


def test_check_without_zfs_fails_like_before():
    answers = {tuple(argv): failed(f"sh: {argv[0]}: not found\n", 127) for argv in PROBES[1:]}
    answers.update({tuple(PROBES[0]): ok("Linux #1\n"), tuple(WHICH): ok(""),
                    ("zpool", "list", "-H", "-o", "name,health"): failed("not found", 127)})
    t = ReplayNode("c1", answers)
    with pytest.raises(OperationFailed, match="no usable zfs"):
        nodes.check(Node("c1", "127.0.0.2"), [], sessions=Replays(c1=t))
    assert len(t.calls) == 1
