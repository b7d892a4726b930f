"""The remote calls of a restore (actions/restore.py) and its decisions on each
failing step, through tests/unit/replay.py: the nodes answer with outputs in
the format OpenZFS prints (batches framed by batch.py itself).

Before the stream: one batch per node (one in all when the backup is on the
compute node). The swap: one batch; a failed rename ends it, and then a busy
one goes on through the session's rename (which retries), any other puts the disk back.
"""
from datetime import datetime, timezone

import pytest

from esbackup.actions import restore
from esbackup.domain.models import VM, Backup, Node
from esbackup.drivers import files
from esbackup.drivers.transport import Result
from esbackup.errors import InvalidInput, OperationFailed, RemoteCommandError
from tests.unit.replay import DIES, ReplayNode, Replays, failed, ok

UUID = "3f2a5a4e-0000-4000-8000-0000000000a1"
DISK = "zones/vm1-disk1"
WHEN = datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc)
TEMP, OLD = f"{DISK}-esbrestore-20261130_090000", f"{DISK}-esbold-20261130_090000"
LOCATION = f"tank/backups/ds/{UUID}-disk1@esb-daily-20261129_010000"
RECEIVED = f"{DISK}@esb-daily-20261129_010000"
OPENZFS = {"flavour": "openzfs", "zvols": True}
GET = ["zfs", "get", "-H", "-p", "-o", "name,property,value"]
STATE = ["virsh", "domstate", UUID]
CHILDREN = ["zfs", "list", "-H", "-o", "name", "-r", "-d", "1", DISK]
TARGET = [*GET, "refquota,quota,available,volsize", DISK]
LOCAL = ["zfs", "get", "-H", "-p", "-o", "property,value", "-s", "local", "all", DISK]
BACKUP = [*GET, "referenced,volsize", LOCATION]
BUSY = "cannot rename 'x': dataset is busy\n"


def answers_before(volsize: int = 1 << 30) -> dict:
    return {
        tuple(STATE): ok("shut off\n"),
        tuple(CHILDREN): ok(f"{DISK}\n"),
        tuple(TARGET): ok(f"{DISK}\trefquota\t-\n{DISK}\tquota\t-\n"
                          f"{DISK}\tavailable\t5000000000\n{DISK}\tvolsize\t{volsize}\n"),
        tuple(LOCAL): ok("volsize\t1073741824\nrefreservation\t1094713344\n"
                         "esbackup:owner\tops\n"),
    }


BACKUP_ANSWER = {tuple(BACKUP): ok(f"{LOCATION}\treferenced\t70000000\n"
                                   f"{LOCATION}\tvolsize\t1073741824\n")}


def job(kind: str = "dataset", same_node: bool = False, reporter=None) -> restore.RestoreJob:
    compute = Node("c1", "127.0.0.2", hypervisor="libvirt", capabilities=OPENZFS)
    source = compute if same_node else Node("b1", "127.0.0.3", backup=True,
                                            capabilities={**OPENZFS, "tools": {}})
    location = LOCATION if kind == "dataset" else "/tank/backups/file/x/disk1/f.zfs"
    b = Backup(name="daily-20261129_010000", vm="web01", vm_uuid="other-uuid", disk_id=1,
               type=kind, created="2026-11-29T01:00:00+00:00", status="ok", node=source.name,
               storage="tank", location=location, checksum="ab" * 32)
    vm = VM("web01", UUID, "admin", "c1", disks={1: DISK})
    j = restore.RestoreJob(None, b, vm, 1, compute, source, reporter, sessions=REPLAYS)
    j.when, j.temp = WHEN, TEMP
    return j


REPLAYS = Replays()  # the jobs' sessions: what the `sessions` fixture set up


@pytest.fixture
def sessions():
    """sessions(c1=answers, b1=answers) -> {name: ReplayNode}, the nodes' sessions."""
    REPLAYS.clear()

    def make(**answers):
        REPLAYS.update({name: ReplayNode(name, a) for name, a in answers.items()})
        return REPLAYS

    yield make
    REPLAYS.clear()


def test_preflight_steps_exact():
    j = job()
    assert [(s.name, list(s.argv), s.stop) for s in j.compute_steps(force=False)] == [
        ("state", STATE, False), ("children", CHILDREN, False), ("target", TARGET, False),
        ("local", LOCAL, False)]
    assert [(s.name, list(s.argv)) for s in j.source_steps()] == [("backup", BACKUP)]
    f = job("file")
    assert [(s.name, list(s.argv)) for s in f.source_steps()] == [
        ("sha256", ["sha256sum", f.b.location]), ("size", ["wc", "-c", f.b.location])]
    j.compute.hypervisor = "none"
    assert [s.name for s in j.compute_steps(force=True)] == ["children", "target", "local"]
    with pytest.raises(InvalidInput, match="cannot tell whether web01 is stopped"):
        j.compute_steps(force=False)


def test_preflight_is_one_call_per_node(sessions):
    t = sessions(c1=answers_before(), b1=BACKUP_ANSWER)
    j = job()
    j.preflight()
    assert t["c1"].calls == [("batch", [STATE, CHILDREN, TARGET, LOCAL])]
    assert t["b1"].calls == [("batch", [BACKUP])]
    assert j.local == {"volsize": "1073741824", "refreservation": "1094713344",
                       "esbackup:owner": "ops"}


def test_preflight_on_one_node_is_one_call(sessions):
    t = sessions(c1={**answers_before(), **BACKUP_ANSWER})
    job(same_node=True).preflight()
    assert t["c1"].calls == [("batch", [STATE, CHILDREN, TARGET, LOCAL, BACKUP])]


@pytest.mark.parametrize("change, error, message", [
    ({tuple(STATE): ok("running\n")}, InvalidInput, "web01 is running: stop it first"),
    ({tuple(CHILDREN): ok(f"{DISK}\n{DISK}/child\n")}, InvalidInput,
     f"has datasets below it ({DISK}/child)"),
    ({tuple(CHILDREN): failed(f"cannot open '{DISK}': dataset does not exist\n")},
     RemoteCommandError, "dataset does not exist"),
    ({tuple(TARGET): ok(f"{DISK}\tvolsize\t16777216\n{DISK}\tavailable\t5000000000\n")},
     InvalidInput, "(16777216 bytes) is smaller than backup"),
    ({tuple(TARGET): ok(f"{DISK}\tvolsize\t1073741824\n{DISK}\tavailable\t1000\n")},
     OperationFailed, "70000000 bytes needed, 1000 available"),
])
def test_preflight_refusals(sessions, change, error, message):
    t = sessions(c1={**answers_before(), **change}, b1=BACKUP_ANSWER)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        job().preflight()
    assert len(t["c1"].calls) == 1 and len(t["b1"].calls) <= 1


def test_corrupt_file_backup_refused(sessions):
    f = job("file")
    sessions(c1=answers_before(), b1={
        tuple(files.sha256(f.b.location, {})): ok(f"{'cd' * 32}  {f.b.location}\n"),
        tuple(files.size(f.b.location)): ok(f"1000 {f.b.location}\n")})
    with pytest.raises(OperationFailed, match="is corrupt"):
        f.preflight()


# --- the swap ------------------------------------------------------------------
def prepared(kind="dataset", reporter=None) -> restore.RestoreJob:
    j = job(kind, reporter=reporter)
    j.local = {"refreservation": "1094713344", "esbackup:owner": "ops"}
    return j


SETS = [["zfs", "set", "refreservation=1094713344", DISK],
        ["zfs", "set", "esbackup:owner=ops", DISK]]
AFTER = [*SETS, ["zfs", "mount", DISK], ["zfs", "destroy", "-r", "-f", OLD],
         ["zfs", "destroy", RECEIVED]]
SWAP = [["zfs", "unmount", DISK], ["zfs", "rename", DISK, OLD], ["zfs", "unmount", TEMP],
        ["zfs", "rename", TEMP, DISK], *AFTER]


def swap_answers(**change) -> dict:
    """Every swap step succeeds (unmounting a volume fails, as it does), unless changed."""
    answers = {tuple(argv): ok() for argv in SWAP}
    answers[tuple(SWAP[0])] = answers[tuple(SWAP[2])] = failed(
        "cannot open: operation not applicable to datasets of this type\n")
    answers[tuple(SWAP[1])], answers[tuple(SWAP[3])] = [ok()], [ok()]
    return {**answers, **{tuple(k): v for k, v in change.items()}}


class Warnings:
    def __init__(self):
        self.lines = []

    def warn(self, message):
        self.lines.append(message)


def test_swap_steps_exact():
    j = prepared()
    steps = j.swap_steps(OLD)
    assert [(s.name, list(s.argv), s.stop) for s in steps] == [
        ("unmount-disk", SWAP[0], False), ("aside", SWAP[1], True),
        ("unmount-new", SWAP[2], False), ("in", SWAP[3], True),
        ("set-0", SETS[0], False), ("set-1", SETS[1], False),
        ("mount", AFTER[2], False), ("destroy-old", AFTER[3], False),
        ("destroy-received", AFTER[4], False)]
    # a dataset backup restored onto its own disk keeps the received snapshot
    j.b.vm_uuid = UUID
    assert [s.name for s in j.after_steps(OLD)][-1] == "destroy-old"


def test_swap_is_one_call(sessions):
    t = sessions(c1=swap_answers())
    j = prepared(reporter=Warnings())
    j.swap()
    assert t["c1"].calls == [("batch", SWAP)]
    assert j.reporter.lines == []


def test_swap_warns_for_a_property_not_set_and_an_old_disk_kept(sessions):
    t = sessions(c1=swap_answers())
    t["c1"].answers[tuple(SETS[1])] = [failed("cannot set property: permission denied\n")]
    t["c1"].answers[tuple(AFTER[3])] = [failed("cannot destroy: filesystem has dependent "
                                               "clones\n")]
    j = prepared(reporter=Warnings())
    j.swap()
    assert t["c1"].calls == [("batch", SWAP)]
    assert j.reporter.lines == [
        f"{DISK}: could not set esbackup:owner=ops again: cannot set property: "
        "permission denied",
        f"restored; the old disk is kept as {OLD}: cannot destroy: filesystem has "
        "dependent clones"]


def test_disk_not_set_aside_is_remounted_and_the_error_raised(sessions):
    t = sessions(c1=swap_answers())
    t["c1"].answers[tuple(SWAP[1])] = [failed("cannot rename: permission denied\n")]
    t["c1"].answers[("zfs", "mount", DISK)] = [ok()]
    with pytest.raises(RemoteCommandError, match="permission denied"):
        prepared().swap()
    assert t["c1"].calls == [("batch", SWAP), ("run", ["zfs", "mount", DISK])]


def test_busy_disk_goes_on_through_nodes_rename(sessions, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    t = sessions(c1=swap_answers())
    t["c1"].answers[tuple(SWAP[1])] = [failed(BUSY), failed(BUSY), ok()]
    prepared().swap()
    assert t["c1"].calls == [
        ("batch", SWAP),
        ("run", SWAP[0]), ("run", SWAP[1]),  # the session's rename: busy once more, then done
        ("run", SWAP[0]), ("run", SWAP[1]),
        ("batch", SWAP[2:])]


def test_new_data_not_renamed_in_puts_the_disk_back(sessions):
    t = sessions(c1={**swap_answers(), ("zfs", "unmount", OLD): ok(),
                     ("zfs", "rename", OLD, DISK): ok()})
    t["c1"].answers[tuple(SWAP[3])] = [failed("cannot rename: out of space\n")]
    with pytest.raises(RemoteCommandError, match="out of space"):
        prepared().swap()
    assert t["c1"].calls == [
        ("batch", SWAP),
        ("run", ["zfs", "unmount", OLD]), ("run", ["zfs", "rename", OLD, DISK]),
        ("run", ["zfs", "mount", DISK])]


def test_busy_new_data_goes_on_through_nodes_rename(sessions, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    t = sessions(c1=swap_answers())
    t["c1"].answers[tuple(SWAP[3])] = [failed(BUSY), ok()]
    prepared().swap()
    assert t["c1"].calls == [("batch", SWAP), ("run", SWAP[2]), ("run", SWAP[3]),
                             ("batch", AFTER)]


def test_new_data_busy_for_good_puts_the_disk_back(sessions, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    t = sessions(c1={**swap_answers(), ("zfs", "unmount", OLD): ok(),
                     ("zfs", "rename", OLD, DISK): ok()})
    t["c1"].answers[tuple(SWAP[3])] = [failed(BUSY)]
    with pytest.raises(RemoteCommandError, match="busy"):
        prepared().swap()
    assert t["c1"].calls == [("batch", SWAP), *[("run", SWAP[2]), ("run", SWAP[3])] * 10,
                             ("run", ["zfs", "unmount", OLD]),
                             ("run", ["zfs", "rename", OLD, DISK]),
                             ("run", ["zfs", "mount", DISK])]


@pytest.mark.parametrize("dies_at, put_back", [
    (2, True),  # set aside, the new data not yet in: the disk goes back
    (0, False),  # nothing renamed yet: no old disk to rename back, the disk is mounted again
])
def test_a_swap_call_cut_short_puts_the_disk_back_if_it_can(sessions, dies_at, put_back):
    back = ok() if put_back else failed(f"cannot open '{OLD}': dataset does not exist\n")
    t = sessions(c1={**swap_answers(), tuple(SWAP[dies_at]): Result(DIES, "", ""),
                     ("zfs", "unmount", OLD): ok(), ("zfs", "rename", OLD, DISK): back})
    with pytest.raises(OperationFailed, match="cut short"):
        prepared().swap()
    assert t["c1"].calls == [("batch", SWAP), ("run", ["zfs", "unmount", OLD]),
                             ("run", ["zfs", "rename", OLD, DISK]),
                             ("run", ["zfs", "mount", DISK])]
