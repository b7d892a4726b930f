"""Throttling and relaying streams (engine/transfer.py): fakes, no ZFS, no SSH."""
from __future__ import annotations

import hashlib
import random

import pytest

from esbackup.engine.transfer import CHUNK, Throttle, relay
from esbackup.errors import OperationFailed, RemoteCommandError

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
