"""The remote calls of one backup run, pinned: a recording transport wraps the
real SSH transport of each lab node and notes every call (a batch as the argv
of its steps, a stream as the argv of its pipeline's stages), per node in order.

Before the stream each node gets one batch (both at once), then the stream,
then one batch per node; the trim of a dataset backup's source follows the
backup node's last call (the old base must stay until the new backup is
whole). Retention makes no call while it has nothing to delete.
"""
from __future__ import annotations

import os
import re
import shlex
from collections import defaultdict

import pytest

from esbackup.drivers import files, transport, zfs
from esbackup.drivers.session import TransportSession
from tests.integration.conftest import both_flavours
from tests.integration.site import VM_UUID

BATCH_STEP = re.compile(r'^b \d+; (.*?)(?: </dev/null)?; s=\$\?; e \d+ "\$s"', re.M)
STAGE = re.compile(r'\{ (.*?); echo "esb-stage \d+ \$\?" >&2; \}')


def describe(argv: list[str]) -> tuple:
    """("batch", [step argv...]), ("stream", [stage...]) or ("run", argv)."""
    if argv[:2] == ["sh", "-c"] and argv[2].startswith("b() {"):
        return "batch", [shlex.split(cmd) for cmd in BATCH_STEP.findall(argv[2])]
    if argv[:2] == ["sh", "-c"] and "esb-stage" in argv[2]:
        return "stream", [shlex.split(stage) for stage in STAGE.findall(argv[2])]
    return "run", list(argv)


class RecordingTransport:
    """The real transport of a node, noting each remote call it starts."""

    def __init__(self, inner, calls: list) -> None:
        self.inner, self.calls = inner, calls

    @property
    def node(self):
        return self.inner.node

    def run(self, argv, **options):
        self.calls.append(describe(argv))
        return self.inner.run(argv, **options)

    def open_stream(self, argv, **options):
        self.calls.append(describe(argv))
        return self.inner.open_stream(argv, **options)


@pytest.fixture
def recorded(site):
    """calls[node name] -> that node's remote calls, in order; `clear()` between runs.
    The CLI's sessions go through the recording transports (its `sessions` factory)."""
    calls: dict[str, list] = defaultdict(list)
    site.esb.sessions = lambda node: TransportSession(RecordingTransport(
        transport.connect(node), calls[node.name]))
    yield calls
    site.esb.sessions = None


def normalized(calls: list, **names: str) -> list:
    """Calls with the run's names (longest first) replaced by {placeholders}."""
    pairs = sorted(names.items(), key=lambda kv: -len(kv[1]))

    def fix(arg: str) -> str:
        for key, value in pairs:
            arg = arg.replace(value, "{" + key + "}")
        return arg

    return [(kind, [[fix(a) for a in step] for step in body] if kind != "run"
             else [fix(a) for a in body]) for kind, body in calls]


def list_snaps(dataset: str) -> list[str]:
    return zfs.list_snapshots("pool/x")[:-1] + [dataset]


def used(dataset: str) -> list[str]:
    return ["zfs", "get", "-H", "-p", "-o", "name,property,value", "used", dataset]


def write(path: str) -> list[str]:
    head, _, tail = path.rpartition("/")
    return ["sh", "-c", 'mkdir -p "$3" && cat > "$1" && [ -s "$1" ] && mv -f "$1" "$2"', "sh",
            f"{head}/.{tail}.part", path, head]


MANIFEST = "{mnt}/backups/manifests/{uuid}/disk1/{new}.json"
FILE = "{mnt}/backups/file/{uuid}/disk1/{new}.zfs"
SNAP = "{src}@esb-{new}"
SOURCE_BEFORE = ("batch", [["zfs", "snapshot", SNAP], list_snaps("{src}")])


def contain(target: str) -> list[str]:
    """A backup's receive is contained (zfs-fuse has no `receive -x`)."""
    return ["sh", "-c", zfs.CONTAIN_SCRIPT, "sh", target]


def target_before(pool: str) -> tuple:
    return ("batch", [["zfs", "create", "-p", f"{pool}/backups/ds"],
                      ["zfs", "get", "-H", "-p", "-o", "name,property,value", "mountpoint", pool],
                      list_snaps("{target}")])


def storage_root(pool: str) -> tuple:
    """The first backup on a storage makes its datasets alone, first (one run at a
    time, under the storage's lock: actions/backup.py `make_storage_root`)."""
    return ("run", ["zfs", "create", "-p", f"{pool}/backups/ds"])


def run_and_record(site, recorded, ref: str, **names: str) -> dict[str, list]:
    """Run `ref`; its calls per node, with its names as {placeholders}."""
    recorded.clear()
    old = [b["name"] for b in site.backups(definition=ref.split("/")[1])]
    site.esb.ok("run", ref)
    new = site.backups(definition=ref.split("/")[1])[-1]["name"]
    names.update(new=new, **({"old": old[-1]} if old else {}))
    return {node: normalized(calls, **names) for node, calls in recorded.items()}


def test_calls_of_dataset_and_file_runs(site, recorded):
    names = dict(src=site.source, target=site.target, b1pool=site.nodes.backup.pool,
                 mnt=str(site.nodes.backup.mountpoint), uuid=VM_UUID)
    ref = site.define("daily", "--type", "dataset", "--retention", "5")
    assert run_and_record(site, recorded, ref, **names) == {
        "c1": [SOURCE_BEFORE, ("stream", [["zfs", "send", SNAP]])],  # nothing to trim
        "b1": [storage_root("{b1pool}"), target_before("{b1pool}"),
               ("stream", [["zfs", "receive", "-u", "{target}"]]),
               ("batch", [contain("{target}"), ["zfs", "set", "readonly=on", "{target}"],
                          used("{target}"), write(MANIFEST)])]}

    site.write("changed.bin", os.urandom(1 << 20))
    assert run_and_record(site, recorded, ref, **names) == {
        "c1": [SOURCE_BEFORE, ("stream", [["zfs", "send", "-i", "{src}@esb-{old}", SNAP]]),
               ("batch", [["zfs", "destroy", "{src}@esb-{old}"]])],
        "b1": [target_before("{b1pool}"),
               ("stream", [["zfs", "receive", "-F", "-u", "{target}"]]),
               ("batch", [contain("{target}"), used("{target}"), write(MANIFEST)])]}

    file_before = ("batch", [["zfs", "create", "-p", "{b1pool}/backups/ds"],
                             ["sh", "-c", files.FOLDER_SCRIPT, "sh", "{b1pool}",
                              "/backups/file/{uuid}/disk1"]])
    for compression, stage, extension in (("off", ["cat"], ""),
                                          ("gzip", ["gzip", "-c", "-1"], ".gz")):
        path = FILE + extension
        partial = path.replace("{new}", ".{new}") + ".part"
        hashed = [] if compression == "off" else [["sha256sum", partial]]  # off: on its way
        ref = site.define(f"f{compression}", "--type", "file", "--compression", compression,
                          "--retention", "5")
        assert run_and_record(site, recorded, ref, **names) == {
            "c1": [SOURCE_BEFORE, ("stream", [["zfs", "send", SNAP]]),
                   ("batch", [["zfs", "destroy", SNAP]])],
            "b1": [file_before, ("stream", [[*stage, ">", partial]]),
                   ("batch", [*hashed, ["mv", "-f", "--", partial, path], ["wc", "-c", path],
                              write(MANIFEST)])]}


def test_calls_of_a_same_node_run(site, recorded):
    """One node: one batch before the stream, one after (the trim in it, after the
    manifest), and the pipe stays on the node."""
    c1 = site.nodes.compute
    site.esb.ok("node", "update", "c1", "--backup")
    site.esb.ok("storage", "create", "c1", "local", "--zpool", c1.pool)
    ref = "web01/local"
    site.esb.ok("definition", "create", ref, "--disk-id", "1", "--type", "dataset", "--node",
                "c1", "--storage", "local", "--schedule", "0 3 * * *", "--retention", "5")
    names = dict(src=site.source, target=f"{c1.pool}/backups/ds/{VM_UUID}-disk1",
                 c1pool=c1.pool, mnt=str(c1.mountpoint), uuid=VM_UUID)
    source_and_target = ("batch", [*SOURCE_BEFORE[1], *target_before("{c1pool}")[1]])
    assert run_and_record(site, recorded, ref, **names) == {"c1": [
        storage_root("{c1pool}"), source_and_target,
        ("stream", [["zfs", "send", SNAP], ["zfs", "receive", "-u",
                                                               "{target}"]]),
        ("batch", [contain("{target}"), ["zfs", "set", "readonly=on", "{target}"],
                   used("{target}"), write(MANIFEST)])]}
    site.write("changed.bin", os.urandom(1 << 20))
    assert run_and_record(site, recorded, ref, **names) == {"c1": [
        source_and_target,
        ("stream", [["zfs", "send", "-i", "{src}@esb-{old}", SNAP],
                    ["zfs", "receive", "-F", "-u", "{target}"]]),
        ("batch", [contain("{target}"), used("{target}"), write(MANIFEST),
                   ["zfs", "destroy", "{src}@esb-{old}"]])]}


@both_flavours
def test_calls_of_a_restore(site, recorded):
    """Before the stream one batch per node (both at once), the stream, then one
    batch on the compute node that swaps the disk; a dataset backup restored
    onto its own disk keeps its received snapshot (the next backup's base)."""
    ref = site.define("daily", "--type", "dataset", "--retention", "5")
    site.esb.ok("run", ref)
    new = site.backups()[-1]["name"]
    site.zfs("set", "esbackup:owner=ops", site.source)
    local = [line.split("\t") for line in site.zfs(
        "get", "-H", "-p", "-o", "property,value", "-s", "local", "all", site.source).splitlines()]
    recorded.clear()
    site.esb.ok("backup", "restore", f"web01/{new}", "--yes", "--force")
    (stamp,) = {m for call in recorded["c1"] for m in re.findall(
        r"-esbrestore-(\d{8}_\d{6})", repr(call))}
    calls = {node: normalized(c, src=site.source, target=site.target, new=new,
                              temp=f"{site.source}-esbrestore-{stamp}",
                              old=f"{site.source}-esbold-{stamp}")
             for node, c in recorded.items()}
    get = ["zfs", "get", "-H", "-p", "-o", "name,property,value"]
    before = [("batch", [["zfs", "list", "-H", "-o", "name", "-r", "-d", "1", "{src}"],
                         [*get, "refquota,quota,available,volsize", "{src}"],
                         ["zfs", "get", "-H", "-p", "-o", "property,value", "-s", "local",
                          "all", "{src}"]]),
              ("stream", [["zfs", "receive", "-u", "{temp}"]])]
    assert calls["c1"][:2] == before
    assert calls["c1"][2:] in swap_alternatives(local)
    raw = ["-w"] if site.nodes.compute.guest else []  # OpenZFS ends: raw, where both can
    assert calls["b1"] == [("batch", [[*get, "referenced,volsize", "{target}@esb-{new}"]]),
                           ("stream", [["zfs", "send", *raw, "{target}@esb-{new}"]])]
    if calls["c1"][2:] != swap_alternatives(local)[0]:  # seen under load, on zfs-fuse only
        assert not site.nodes.compute.guest, calls["c1"]


def swap_alternatives(local: list) -> list:
    """The swap's calls on the compute node: one batch, as a rule; but zfs-fuse
    may call a dataset it has just unmounted busy for a moment (under load: the
    FUSE unmount is still settling), and a rename that fails so is retried
    (actions/restore.py `swap`, the session's `rename`: up to 10 tries of unmount
    and rename), then the batch goes on from the step after it. The first entry
    is the rule; the others, exactly the documented busy paths."""
    aside = [["zfs", "unmount", "{src}"], ["zfs", "rename", "{src}", "{old}"]]
    in_ = [["zfs", "unmount", "{temp}"], ["zfs", "rename", "{temp}", "{src}"]]
    after = [*[["zfs", "set", f"{prop}={value}", "{src}"] for prop, value in local],
             ["zfs", "mount", "{src}"], ["zfs", "destroy", "-r", "-f", "{old}"]]

    def retries(steps: list, tries: int) -> list:
        return [("run", step) for _ in range(tries) for step in steps]

    found = [[("batch", [*aside, *in_, *after])]]
    for tries in range(1, 11):
        found.append([("batch", [*aside, *in_, *after]), *retries(aside, tries),
                      ("batch", [*in_, *after])])
        found.append([("batch", [*aside, *in_, *after]), *retries(in_, tries),
                      ("batch", after)])
        for more in range(1, 11):
            found.append([("batch", [*aside, *in_, *after]), *retries(aside, tries),
                          ("batch", [*in_, *after]), *retries(in_, more), ("batch", after)])
    return found
