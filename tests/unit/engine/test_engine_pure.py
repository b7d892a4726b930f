"""Pure pieces of the engine: throttling and relaying streams, pipeline and ssh argv,
on-node names, tool choice, retention, hypervisor argv, the scheduler tick, locks, and
rendering. No ZFS, no SSH: fakes, local `sh`, and real SQLite catalogs in tmp_path."""
from __future__ import annotations

import hashlib
import json
import random
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import click
import pytest

from esbackup.actions import tick
from esbackup.catalog.core import Catalog
from esbackup.commands.output import Column, human_duration, human_size, render
from esbackup.domain.models import VM, Backup, Node, Run
from esbackup.drivers import compress, qga
from esbackup.drivers.hypervisor import parse_state, state_argv
from esbackup.drivers.transport import Result, check_pipeline, pipeline_argv, ssh_argv
from esbackup.engine import layout, locks, retention
from esbackup.engine.freeze import step_argv
from esbackup.engine.transfer import CHUNK, Throttle, relay
from esbackup.errors import Busy, InvalidInput, NotFound, OperationFailed, RemoteCommandError

UUID = "3f2a5a4e-0000-4000-8000-000000000001"
UTC = timezone.utc
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


# --- Throttle ----------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when told to (or when slept on)."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def simulate(rate: int, total: int, *, jitter: float = 0.0, stall_at: int | None = None,
             stall: float = 0.0, seed: int = 1) -> tuple[Throttle, FakeClock, list]:
    """Pass `total` bytes through a Throttle as fast as it lets them go.

    Returns the (seconds since start, bytes passed so far) at each chunk's passing.
    """
    rng = random.Random(seed)
    clock = FakeClock()
    throttle = Throttle(rate, clock=clock, sleep=clock.sleep)
    start, passed, events = clock.now, 0, []
    while passed < total:
        if stall_at is not None and passed >= stall_at and stall:
            clock.now += stall  # the source had nothing to give for a while
            stall = 0.0
        n = min(throttle.chunk, total - passed)
        passed += n
        events.append((clock.now - start, passed))
        throttle(n)
        clock.now += rng.uniform(0, jitter)  # the work of moving a chunk
    return throttle, clock, events


@pytest.mark.parametrize("rate", [4096, 100_000, 1_000_000, 10 * 1024 * 1024])
@pytest.mark.parametrize("jitter", [0.0, 0.002])
def test_throttle_never_ahead_of_rate_by_more_than_a_chunk(rate, jitter):
    total = rate * 3 + 12345
    throttle, clock, events = simulate(rate, total, jitter=jitter)
    for elapsed, passed in events:
        assert passed <= rate * elapsed + throttle.chunk + 1, (elapsed, passed)  # 1: float
    # and it does not hold the stream back much either
    assert clock.now - 1000.0 == pytest.approx(total / rate, rel=0.05, abs=0.1)


@pytest.mark.parametrize("rate, chunk", [
    (1, 4096), (4096, 4096), (81920, 4096), (100_000, 5000), (1_000_000, 50_000),
    (10 * 1024 * 1024, 524288), (100 * 1024 * 1024, CHUNK),
])
def test_throttle_chunk_is_a_twentieth_of_a_second(rate, chunk):
    throttle = Throttle(rate, clock=lambda: 0.0, sleep=lambda s: None)
    assert throttle.chunk == chunk
    assert throttle.chunk <= max(4096, rate // 20)


def test_throttle_rate_zero_never_sleeps():
    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds}")

    throttle = Throttle(0, clock=lambda: 0.0, sleep=no_sleep)
    assert throttle.chunk == CHUNK
    for _ in range(1000):
        throttle(CHUNK)


def test_throttle_no_burst_after_a_stall():
    rate = 1_000_000
    throttle, _, events = simulate(rate, rate * 20, stall_at=rate * 2, stall=10.0)
    for i, (t0, _) in enumerate(events):
        before = events[i - 1][1] if i else 0
        in_window = max(p for t, p in events[i:] if t < t0 + 1.0) - before
        assert in_window <= rate + throttle.chunk, (t0, in_window)


# --- relay ----------------------------------------------------------------------------


class FakeSourceStream:
    """Test double of transport.Stream for the sending side: read() serves `data`."""

    def __init__(self, data: bytes, events: list, piece: int = 100_000,
                 fail_at: int | None = None):
        self.data, self.events, self.piece, self.fail_at = data, events, piece, fail_at
        self.pos = 0
        self.aborted: str | None = None
        self.reads: list[int] = []

    def read(self, n: int) -> bytes:
        self.reads.append(n)
        if self.fail_at is not None and self.pos >= self.fail_at:
            self.events.append("source.read failed")
            raise RemoteCommandError("c1", ["zfs", "send"], 1, "cannot send: I/O error")
        chunk = self.data[self.pos:self.pos + min(n, self.piece)]
        self.pos += len(chunk)
        return chunk

    def wait(self) -> int:
        self.events.append("source.wait")
        return 0

    def abort(self, reason: str) -> None:
        self.events.append("source.abort")
        self.aborted = reason


class FakeTargetStream:
    """Test double of transport.Stream for the receiving side: write() collects."""

    def __init__(self, events: list):
        self.events = events
        self.received = bytearray()
        self.aborted: str | None = None

    def write(self, data: bytes) -> None:
        self.received += data

    def wait(self) -> int:
        self.events.append("target.wait")
        return 0

    def abort(self, reason: str) -> None:
        self.events.append("target.abort")
        self.aborted = reason


def test_relay_copies_everything_with_size_and_sha256():
    data = random.Random(7).randbytes(3 * CHUNK + 17)
    events: list = []
    src, dst = FakeSourceStream(data, events, piece=300_001), FakeTargetStream(events)
    seen = []
    moved = relay(src, dst, progress=seen.append,
                  check_source=lambda: events.append("check_source"))
    assert bytes(dst.received) == data
    assert moved.size == len(data) == sum(seen)
    assert moved.sha256 == hashlib.sha256(data).hexdigest()
    assert events == ["source.wait", "check_source", "target.wait"]
    assert src.aborted is None and dst.aborted is None
    assert all(n <= CHUNK for n in src.reads)


def test_relay_of_an_empty_stream():
    events: list = []
    moved = relay(FakeSourceStream(b"", events), FakeTargetStream(events))
    assert (moved.size, moved.sha256) == (0, hashlib.sha256(b"").hexdigest())


def test_relay_without_checksum_copies_and_counts_only():
    events: list = []
    dst = FakeTargetStream(events)
    moved = relay(FakeSourceStream(b"abc", events), dst, checksum=False)
    assert (moved.size, moved.sha256, bytes(dst.received)) == (3, None, b"abc")


def test_relay_reads_small_chunks_under_a_limit():
    events: list = []
    src = FakeSourceStream(b"x" * 10, events)
    relay(src, FakeTargetStream(events), bwlimit=100 * 1024 * 1024)
    assert src.reads and all(n <= 100 * 1024 * 1024 // 20 for n in src.reads)


def test_relay_source_failure_aborts_both_and_propagates():
    events: list = []
    src = FakeSourceStream(b"y" * 500_000, events, piece=100_000, fail_at=200_000)
    dst = FakeTargetStream(events)
    with pytest.raises(RemoteCommandError, match="I/O error"):
        relay(src, dst, check_source=lambda: events.append("check_source"))
    assert src.aborted and dst.aborted
    assert "target.wait" not in events and "check_source" not in events
    assert len(dst.received) == 200_000


def test_relay_check_source_failure_aborts_target_before_its_wait():
    events: list = []
    src, dst = FakeSourceStream(b"z" * 1000, events), FakeTargetStream(events)

    def check_source():
        events.append("check_source")
        raise RemoteCommandError("c1", ["zfs", "send"], 2, "zfs send died")

    with pytest.raises(RemoteCommandError, match="zfs send died"):
        relay(src, dst, check_source=check_source)
    assert "target.wait" not in events
    assert events[:2] == ["source.wait", "check_source"]
    assert {"source.abort", "target.abort"} <= set(events)
    assert dst.aborted and src.aborted


def test_relay_target_failure_aborts_both():
    events: list = []
    src, dst = FakeSourceStream(b"w" * 1000, events), FakeTargetStream(events)

    def broken(data):
        raise OperationFailed("b1: zfs ended before reading all its input")

    dst.write = broken
    with pytest.raises(OperationFailed, match="before reading"):
        relay(src, dst)
    assert src.aborted and dst.aborted


# --- pipeline_argv / check_pipeline / ssh_argv ----------------------------------------------


def test_pipeline_argv_one_stage():
    assert pipeline_argv([["zfs", "send", "tank/a@esb-d-20261126_010000"]]) == [
        "sh", "-c",
        '{ zfs send tank/a@esb-d-20261126_010000; echo "esb-stage 0 $?" >&2; }']


def test_pipeline_argv_two_stages_with_input_and_output():
    argv = pipeline_argv([["cat"], ["gzip", "-c", "-1"]], input_path="/in dir/a b",
                         output="/out/it's.zfs.gz")
    assert argv == [
        "sh", "-c",
        "{ cat < '/in dir/a b'; echo \"esb-stage 0 $?\" >&2; } | "
        "{ gzip -c -1 > '/out/it'\"'\"'s.zfs.gz'; echo \"esb-stage 1 $?\" >&2; }"]


def test_pipeline_argv_one_stage_with_both_redirections():
    assert pipeline_argv([["cat"]], input_path="/a", output="/b") == [
        "sh", "-c", '{ cat < /a > /b; echo "esb-stage 0 $?" >&2; }']


@pytest.mark.parametrize("stages", [[], [[]], [["ok"], ["bad\0arg"]], [["x", 3]]])
def test_pipeline_argv_refuses_bad_stages(stages):
    with pytest.raises(InvalidInput):
        pipeline_argv(stages)


NASTY = "a b;$(touch PWNED)`touch PWNED2`'q\"\\ $HOME *|&>x\n"


def test_pipeline_quotes_everything_when_run(tmp_path):
    out = tmp_path / "out file;$(touch PWNED3)'x'"
    argv = pipeline_argv([["printf", "%s", NASTY]], output=str(out))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == NASTY
    assert result.stderr == "esb-stage 0 0\n"
    check_pipeline("local", [["printf", "%s", NASTY]], Result(0, "", result.stderr))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_pipeline_input_output_paths_quoted_when_run(tmp_path):
    source = tmp_path / "in `x` $(y) 'z';w"
    source.write_text("hello pipeline\n")
    target = tmp_path / "res\"ult & more"
    stages = [["cat"], ["tr", "a-z", "A-Z"]]
    argv = pipeline_argv(stages, input_path=str(source), output=str(target))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert target.read_text() == "HELLO PIPELINE\n"
    check_pipeline("local", stages, Result(result.returncode, "", result.stderr))
    assert len(list(tmp_path.iterdir())) == 2


def test_pipeline_failure_found_when_run(tmp_path):
    stages = [["printf", "data"], ["sh", "-c", "cat >/dev/null; echo broken >&2; exit 3"]]
    result = subprocess.run(pipeline_argv(stages), capture_output=True, text=True, check=False)
    assert result.returncode == 0  # sh has no pipefail: the marks are what tells
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("local", stages, Result(result.returncode, "", result.stderr))
    assert (caught.value.status, caught.value.argv) == (3, stages[1])
    assert "broken" in caught.value.stderr and "esb-stage" not in caught.value.stderr


STAGES = [["zfs", "send", "tank/a@s"], ["gzip", "-c"]]


def test_check_pipeline_passes_when_all_report_zero():
    check_pipeline("c1", STAGES, Result(0, "", "esb-stage 0 0\nesb-stage 1 0\n"))
    check_pipeline("c1", STAGES, Result(0, "", "esb-stage 1 0\nnoise\nesb-stage 0 0\n"))


def test_check_pipeline_names_the_failing_stage():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(0, "", "cannot open 'tank/a@s'\nesb-stage 0 1\n"
                                                   "esb-stage 1 0\n"))
    error = caught.value
    assert (error.node, error.argv, error.status) == ("c1", STAGES[0], 1)
    assert error.stderr == "cannot open 'tank/a@s'"
    assert str(error) == "c1: zfs failed: cannot open 'tank/a@s'"


def test_check_pipeline_missing_marker_is_a_failure():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(0, "", "esb-stage 0 0\n"))
    assert caught.value.argv == STAGES[1]
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(255, "", "ssh: connection lost\n"))
    assert caught.value.argv == STAGES[0] and caught.value.status == 255


def test_check_pipeline_sigpipe_blames_the_reader():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(0, "", "esb-stage 0 141\nesb-stage 1 2\n"))
    assert (caught.value.argv, caught.value.status) == (STAGES[1], 2)
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(0, "", "esb-stage 0 141\nesb-stage 1 0\n"))
    assert (caught.value.argv, caught.value.status) == (STAGES[0], 141)


def test_check_pipeline_shell_failure_after_stages():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(2, "", "esb-stage 0 0\nesb-stage 1 0\n"))
    assert caught.value.argv == ["sh"]


def test_ssh_argv_exact():
    node = Node("c1", "10.0.0.2", port=2222, user="backup")
    assert ssh_argv(node, ["zfs", "send", "-i", "zones/a@x", "zones/a@y"]) == [
        "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-p", "2222",
        "-l", "backup", "--", "10.0.0.2", "zfs send -i zones/a@x zones/a@y"]
    assert ssh_argv(Node("c2", "h"), ["echo", "a b", "$(id)"])[5:] == [
        "-p", "22", "-l", "root", "--", "h", "echo 'a b' '$(id)'"]
    with pytest.raises(InvalidInput):
        ssh_argv(node, [])


def test_ssh_argv_remote_command_is_shell_quoted_when_run(tmp_path):
    argv = ssh_argv(Node("c1", "h"), ["printf", "%s", NASTY])
    result = subprocess.run(["sh", "-c", argv[-1]], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    assert result.stdout == NASTY and list(tmp_path.iterdir()) == []


# --- layout ------------------------------------------------------------------------------


def test_backup_name_is_utc_stamp():
    created = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    assert layout.backup_name("daily", created) == "daily-20261126_010203"
    assert layout.snapshot_name("daily-20261126_010203") == "esb-daily-20261126_010203"
    assert layout.source_snapshot("zones/web01-disk0", "daily-20261126_010203") == (
        "zones/web01-disk0@esb-daily-20261126_010203")


def test_backup_name_converts_to_utc():
    created = datetime(2026, 11, 26, 2, 2, 3, tzinfo=ZoneInfo("Europe/Prague"))
    assert layout.backup_name("daily", created) == "daily-20261126_010203"


@pytest.mark.parametrize("snapname, owned", [
    ("esb-daily-20261126_010000", True),
    ("esb-daily-x-20261126_010000", False),
    ("esb-daily-20261126_010000x", False),
    ("esb-daily-2026112_010000", False),
    ("esb-dailyy-20261126_010000", False),
    ("daily-20261126_010000", False),
    ("esb-weekly-20261126_010000", False),
    ("xesb-daily-20261126_010000", False),
    ("esb-daily-20261126_0100", False),
])
def test_owned_by_only_exact_names(snapname, owned):
    assert layout.owned_by(snapname, "daily") is owned


def test_owned_by_definition_record_and_regex_characters():
    d = definition_record("d.1")
    assert layout.owned_by("esb-d.1-20261126_010000", d)
    assert not layout.owned_by("esb-dx1-20261126_010000", d)


def definition_record(name: str):
    from esbackup.domain.models import Definition

    return Definition(vm="web01", name=name, disk_id=1, type="dataset", node="b1",
                      storage="tank", schedule="0 1 * * *", timezone="UTC", retention=3)


def test_paths_on_the_nodes():
    assert layout.dataset_target("tank", UUID, 2) == f"tank/backups/ds/{UUID}-disk2"
    assert [layout.file_path("/tank", UUID, 1, "daily-20261126_010000", c)
            for c in ("off", "gzip", "bzip2")] == [
        f"/tank/backups/file/{UUID}/disk1/daily-20261126_010000{ext}"
        for ext in (".zfs", ".zfs.gz", ".zfs.bz2")]
    assert layout.partial_path(f"/tank/backups/file/{UUID}/disk1/d-1.zfs.gz") == (
        f"/tank/backups/file/{UUID}/disk1/.d-1.zfs.gz.part")
    assert layout.manifest_path("/tank", UUID, 1, "daily-20261126_010000") == (
        f"/tank/backups/manifests/{UUID}/disk1/daily-20261126_010000.json")
    when = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
    assert layout.aside_name("tank/backups/ds/x-disk1", when) == (
        "tank/backups/ds/x-disk1-20261126_010000")
    assert layout.restore_temp("zones/a", when) == "zones/a-esbrestore-20261126_010000"
    assert layout.restore_old("zones/a", when) == "zones/a-esbold-20261126_010000"


# --- tools on the nodes ---------------------------------------------------------------


def test_compressor_choice():
    assert compress.compressor("gzip", {"pigz": True, "gzip": True}) == ["pigz", "-c", "-1"]
    assert compress.compressor("gzip", {"pigz": False, "gzip": True}) == ["gzip", "-c", "-1"]
    assert compress.compressor("bzip2", {"bzip2": True}) == ["bzip2", "-c"]
    assert compress.compressor("bzip2", {"pbzip2": True, "bzip2": True}) == ["pbzip2", "-c"]
    assert compress.decompressor("gzip", {"gzip": True}) == ["gzip", "-d", "-c"]
    assert compress.decompressor("bzip2", {"pbzip2": True}) == ["pbzip2", "-d", "-c"]
    assert compress.compressor("off", {}) is None
    assert compress.decompressor("off", {"gzip": True}) is None


def test_compressor_missing_tool():
    with pytest.raises(OperationFailed, match="gzip"):
        compress.compressor("gzip", {"bzip2": True, "pigz": False})
    with pytest.raises(OperationFailed, match="bzip2"):
        compress.decompressor("bzip2", {"gzip": True})
    with pytest.raises(InvalidInput):
        compress.compressor("xz", {"xz": True})


# --- retention -------------------------------------------------------------------------


def backup(i: int, status: str = "ok") -> Backup:
    return Backup(name=f"daily-2026112{i}_010000", vm="web01", vm_uuid=UUID, disk_id=1,
                  type="dataset", created=f"2026-11-2{i}T01:00:00+00:00", status=status,
                  node="b1", storage="tank", definition="daily")


def names(backups) -> list[str]:
    return [b.name for b in backups]


def test_retention_keeps_newest_ok():
    history = [backup(1), backup(2), backup(3, "lost"), backup(4), backup(5, "pending"),
               backup(6)]
    assert names(retention.excess(history, 2)) == names([backup(1), backup(2)])
    assert names(retention.excess(history, 1)) == names([backup(1), backup(2), backup(4)])
    assert names(retention.excess(history, 3)) == names([backup(1)])
    assert retention.excess(history, 4) == []
    assert retention.excess(history, 0) == []
    assert retention.excess([], 2) == []
    assert retention.excess([backup(1, "lost"), backup(2, "lost")], 1) == []


# --- hypervisor argv ---------------------------------------------------------------------

SNAP = "zones/web01-disk0@esb-daily-20261126_010000"


def vm_record(**extra) -> VM:
    return VM("web01", UUID, "admin", "c1", disks={1: "zones/web01-disk0"}, **extra)


def test_state_argv():
    assert state_argv("smartos", UUID) == ["vmadm", "list", "-H", "-o", "state", f"uuid={UUID}"]
    assert state_argv("libvirt", UUID) == ["virsh", "domstate", UUID]
    assert state_argv("none", UUID) is None
    assert state_argv("qemu", UUID) is None


@pytest.mark.parametrize("hypervisor, answer, state", [
    ("libvirt", (0, "shut off\n", ""), "shut off"),
    ("libvirt", (0, "running\n", ""), "running"),
    ("smartos", (0, "stopped\n", ""), "stopped"),
])
def test_parse_state(hypervisor, answer, state):
    assert parse_state(hypervisor, "c1", "web01", *answer) == state


@pytest.mark.parametrize("hypervisor, answer, error, message", [
    ("libvirt", (1, "", "error: failed to get domain 'x'\n"), NotFound,
     "web01 is not a domain of libvirt on node c1: error: failed to get domain 'x'"),
    ("smartos", (0, "", ""), NotFound, "web01 is not a VM of vmadm on node c1"),
    ("libvirt", (1, "", "error: failed to connect to the hypervisor\n"), OperationFailed,
     "c1: virsh failed: error: failed to connect to the hypervisor"),
    ("smartos", (0, "stopped\nrunning\n", ""), OperationFailed,
     "c1: unexpected state of web01: 'stopped\\nrunning'"),
    ("libvirt", (0, "\x1b[2Jrunning", ""), OperationFailed,
     "c1: unexpected state of web01: '\\x1b[2Jrunning'"),
])
def test_parse_state_refuses(hypervisor, answer, error, message):
    with pytest.raises(error) as raised:
        parse_state(hypervisor, "c1", "web01", *answer)
    assert str(raised.value) == message and type(raised.value) is error


def test_freeze_step_argv():
    def node(hypervisor):
        return Node("c1", "h", hypervisor=hypervisor)

    libvirt = step_argv(node("libvirt"), vm_record(), SNAP)
    assert libvirt == qga.virsh_remote_argv(UUID, SNAP)
    assert libvirt[:2] == ["python3", "-c"] and libvirt[-3:] == ["virsh", UUID, SNAP]

    smartos = step_argv(node("smartos"), vm_record(), SNAP)
    assert smartos[-3:] == ["qga", f"/zones/{UUID}/root/tmp/vm.qga", SNAP]

    socket_vm = vm_record(qga_socket="/run/qemu/web01.qga")
    qemu = step_argv(node("qemu"), socket_vm, SNAP)
    assert qemu == qga.remote_argv("/run/qemu/web01.qga", SNAP)
    assert qemu[-3:] == ["qga", "/run/qemu/web01.qga", SNAP]

    assert step_argv(node("qemu"), vm_record(), SNAP) is None
    assert step_argv(node("none"), vm_record(), SNAP) is None


def test_freeze_step_argv_refuses_bad_snapshot():
    with pytest.raises(InvalidInput):
        step_argv(Node("c1", "h", hypervisor="libvirt"), vm_record(), "zones/a@x;id")


# --- scheduler tick --------------------------------------------------------------------------

BASE = ["--disk-id", "1", "--type", "dataset", "--node", "b1", "--storage", "tank",
        "--retention", "3"]
NOW = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)


@pytest.fixture
def scheduled(inventory):
    """Definitions of web01 around NOW = 2026-11-26 01:30 UTC; yields an open Catalog."""
    for name, cron, zone, extra in [
        ("hourly", "0 * * * *", "UTC", []),          # fired 01:00
        ("nightly", "0 1 * * *", "UTC", []),         # fired 01:00
        ("prague", "15 2 * * *", "Europe/Prague", []),  # 02:15 CET = 01:15 UTC
        ("early", "0 0 * * *", "UTC", []),           # 00:00: more than an hour ago
        ("later", "45 1 * * *", "UTC", []),          # not yet
        ("off", "0 1 * * *", "UTC", ["--inactive"]),
    ]:
        inventory.ok("definition", "create", f"web01/{name}", *BASE, "--schedule", cron,
                     "--timezone", zone, *extra)
    cat = Catalog.open(inventory.catalog)
    yield cat
    cat.close()


def due_names(cat, now=NOW) -> list[str]:
    return sorted(d.name for d, _ in tick.due(cat, now))


@BOTH_BACKENDS
def test_due_fired_in_the_last_hour(scheduled):
    assert due_names(scheduled) == ["hourly", "nightly", "prague"]
    assert due_names(scheduled, NOW.replace(minute=59)) == ["hourly", "later", "nightly",
                                                           "prague"]
    assert due_names(scheduled, NOW + timedelta(hours=2)) == ["hourly"]


@BOTH_BACKENDS
def run_of(cat, name: str, trigger: str, started: str, **fields) -> Run:
    d = cat.definition("web01", name)
    return Run(d.ref, trigger, started, definition_id=d.id, **fields)


def test_not_due_after_a_run_since_the_firing(scheduled):
    scheduled.add_run(run_of(scheduled, "nightly", "tick", "2026-11-26T01:00:05+00:00",
                             outcome="failed", error="x"))
    scheduled.add_run(run_of(scheduled, "hourly", "cron", "2026-11-26T00:59:59+00:00",
                             outcome="ok"))
    scheduled.add_run(run_of(scheduled, "prague", "manual", "2026-11-26T01:15:00+00:00",
                             outcome="skipped"))
    assert due_names(scheduled) == ["hourly"]
    # the next firing makes it due again
    assert due_names(scheduled, datetime(2026, 11, 27, 1, 20, tzinfo=UTC)) == [
        "hourly", "nightly", "prague"]


@BOTH_BACKENDS
def test_due_at_its_minute_never_before(scheduled):
    """A firing is due from its very second; a tick a moment before it (second
    59.5 of the minute before) leaves it to the next tick."""
    at = datetime(2026, 11, 26, 1, 45, tzinfo=UTC)  # "later" fires at 01:45
    assert "later" in due_names(scheduled, at)
    assert "later" not in due_names(scheduled, at - timedelta(milliseconds=500))


@BOTH_BACKENDS
def test_inactive_never_due(scheduled):
    for minute in range(0, 60, 7):
        assert "off" not in due_names(scheduled, NOW.replace(hour=1, minute=minute))


# --- locks ---------------------------------------------------------------------------------


@pytest.fixture
def cat(esb):
    catalog = Catalog.open(esb.catalog)
    yield catalog
    catalog.close()


@pytest.fixture
def fast_poll(monkeypatch):
    monkeypatch.setattr(locks, "POLL_S", 0.02)


@BOTH_BACKENDS
def test_disk_lock_busy_immediately(cat):
    with locks.Locks(cat, owner="backup web01/daily") as first:
        first.disk(UUID, 1)
        started = time.monotonic()
        with locks.Locks(cat, owner="restore") as second, pytest.raises(Busy) as caught:
            second.disk(UUID, 1)
        assert time.monotonic() - started < 0.5
        assert caught.value.exit_code == 5
        assert "backup web01/daily" in str(caught.value)
        with locks.Locks(cat, owner="other disk") as third:
            third.disk(UUID, 2)  # another disk is free
    with locks.Locks(cat, owner="after") as later:
        later.disk(UUID, 1)  # released on exit
        assert later.stale == []


@BOTH_BACKENDS
def test_disk_lock_busy_after_wait(cat, fast_poll):
    with locks.Locks(cat, owner="first") as first:
        first.disk(UUID, 1)
        started = time.monotonic()
        with locks.Locks(cat, owner="second") as second, pytest.raises(Busy):
            second.disk(UUID, 1, wait=0.3)
        assert 0.3 <= time.monotonic() - started < 2


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@BOTH_BACKENDS
def test_dead_holder_taken_over(cat):
    pid = dead_pid()
    resource = locks.disk_resource(UUID, 1)
    assert cat.take_lock(resource, "crashed backup", pid, socket.gethostname(),
                         locks.lease_until()) is None
    with locks.Locks(cat, owner="new") as mine:
        mine.disk(UUID, 1)
        assert [(s["owner"], s["pid"]) for s in mine.stale] == [("crashed backup", pid)]
        assert cat.locks("disk:")[0]["owner"] == "new"


@BOTH_BACKENDS
def test_expired_lease_taken_over(cat):
    resource = locks.disk_resource(UUID, 1)
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    cat.take_lock(resource, "remote run", 1, "some-other-host", past)
    with locks.Locks(cat, owner="new") as mine:
        mine.disk(UUID, 1)
        assert [s["owner"] for s in mine.stale] == ["remote run"]


@BOTH_BACKENDS
def test_live_local_holder_keeps_its_lock_past_its_lease(cat):
    """A stopped (Ctrl-Z) or starved process on this host still holds its disk."""
    import os
    import socket

    resource = locks.disk_resource(UUID, 1)
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    cat.take_lock(resource, "slow run", os.getppid(), socket.gethostname(), past)
    with locks.Locks(cat, owner="new") as mine, pytest.raises(Busy):
        mine.disk(UUID, 1)


@BOTH_BACKENDS
def test_live_holder_on_another_host_with_lease_is_kept(cat):
    resource = locks.disk_resource(UUID, 1)
    cat.take_lock(resource, "remote run", dead_pid(), "some-other-host", locks.lease_until())
    with locks.Locks(cat, owner="new") as mine, pytest.raises(Busy):
        mine.disk(UUID, 1)


@BOTH_BACKENDS
def test_node_slots(cat, fast_poll):
    a, b, c = (locks.Locks(cat, owner=name) for name in "abc")
    try:
        a.slot("b1", 2)
        b.slot("b1", 2)
        with pytest.raises(Busy) as caught:
            c.slot("b1", 2)
        assert caught.value.exit_code == 5 and "2 backup slots" in str(caught.value)
        with pytest.raises(Busy):
            c.slot("b1", 2, wait=0.1)
        c.slot("b2", 2)  # another node's slots are its own
        a.release()
        c.slot("b1", 2)
        assert sorted(lock["owner"] for lock in cat.locks("slot:b1:")) == ["b", "c"]
    finally:
        for holder in (a, b, c):
            holder.release()
    assert cat.locks() == []


# --- output ---------------------------------------------------------------------------------

COLUMNS = [Column("name", "Name"), Column("size", "Size", "size"),
           Column("duration", "Duration", "duration"), Column("ok", "OK", "bool"),
           Column("note", "Note", full_only=True)]
RECORDS = [{"name": "daily-20261126_010000", "size": 1536, "duration": 3725.0, "ok": True,
            "note": "n", "created": "2026-11-26T01:00:00+00:00"}]


def test_human_units():
    assert human_size(1536) == "1.5 KiB"
    assert human_size(512) == "512 B"
    assert human_size(10 * 1024**3) == "10.0 GiB"
    assert human_size(None) == "-"
    assert human_duration(3725) == "1h02m05s"
    assert human_duration(65) == "1m05s"
    assert human_duration(5.4) == "5s"
    assert human_duration(None) == "-"


def test_render_json_is_raw():
    assert json.loads(render(RECORDS, COLUMNS, "json")) == RECORDS


def test_render_table_is_for_people():
    table = render(RECORDS, COLUMNS, "table")
    assert "1.5 KiB" in table and "1h02m05s" in table and "yes" in table
    assert "Note" not in table and "Note" in render(RECORDS, COLUMNS, "table", full=True)
    assert "1536" not in table


def test_render_csv_is_raw():
    assert render(RECORDS, COLUMNS, "csv").splitlines() == [
        "name,size,duration,ok", "daily-20261126_010000,1536,3725.0,True"]


def test_render_unknown_format():
    with pytest.raises(click.BadParameter):
        render(RECORDS, COLUMNS, "nope")


def test_compression_of_file_names():
    assert [layout.compression_of(f"/m/b/x{e}") for e in (".zfs", ".zfs.gz", ".zfs.bz2")] == [
        "off", "gzip", "bzip2"]
    with pytest.raises(ValueError):
        layout.compression_of("/m/b/x.tar")


@pytest.mark.parametrize("status, stderr, lost", [
    (1, "cannot create 'tank/backups/ds': dataset already exists\n", True),
    (1, "cannot create 'tank/backups': dataset already exists\n", True),  # zfs-fuse, -p
    (1, "cannot create 'tank/backups/ds': out of space\n", False),
    (0, "", False),
])
def test_a_lost_race_to_make_the_storage_datasets_is_asked_again(status, stderr, lost):
    from esbackup.actions.backup import lost_race
    from esbackup.drivers import batch, zfs

    step = batch.Step("create", zfs.create("tank/backups/ds", parents=True), stop=True)
    results = batch.Results("b1", [step], {"create": Result(status, "", stderr)})
    assert lost_race(results) is lost
    assert lost_race(batch.Results("b1", [step], {})) is False  # no answer: not a race
