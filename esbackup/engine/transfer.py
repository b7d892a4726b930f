"""Moving a stream from one node's command to another's through this host.

The relay path: two SSH channels, no trust between the nodes. Bandwidth
limit, progress and checksum happen here, in Python.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 1 << 20


class Throttle:
    """Keeps a stream at or under `rate` bytes/s, smoothly.

    It sleeps whenever the bytes passed so far are ahead of `rate * elapsed`,
    and callers move chunks of at most a twentieth of a second's worth, so no
    one-second window sees more than the limit plus one small chunk.
    """

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start = clock()
        self.passed: float = 0

    @property
    def chunk(self) -> int:
        return CHUNK if not self.rate else max(4096, min(CHUNK, self.rate // 20))

    def __call__(self, n: int) -> None:
        if not self.rate:
            return
        elapsed = self.clock() - self.start
        # idle time is no credit: a stalled source may not burst afterwards
        self.passed = max(self.passed, elapsed * self.rate - self.chunk) + n
        ahead = self.passed / self.rate - elapsed
        if ahead > 0:
            self.sleep(ahead)


@dataclass
class Moved:
    size: int
    sha256: str | None  # None unless asked for


def relay(source, target, *, bwlimit: int = 0,
          progress: Callable[[int], None] | None = None,
          check_source: Callable[[], None] | None = None, checksum: bool = True) -> Moved:
    """Copy `source` Stream's stdout into `target` Stream's stdin; both must end well.

    With `checksum`, the bytes are hashed on their way (SHA-256 costs as much
    CPU as the copy itself: 1-2 s per GiB here), else not.

    `check_source` raises if the source command did not end well; it runs
    before the target's stdin is closed. On any failure both commands are
    stopped and the error propagates, so the receiving side never sees an end
    of stream it could take for a whole one.
    """
    throttle = Throttle(bwlimit)
    digest = hashlib.sha256() if checksum else None
    size = 0
    try:
        while chunk := source.read(throttle.chunk):
            target.write(chunk)
            if digest is not None:
                digest.update(chunk)
            size += len(chunk)
            throttle(len(chunk))
            if progress:
                progress(len(chunk))
        source.wait()
        if check_source:
            check_source()
        target.wait()
    except BaseException:
        source.abort("stopped: the transfer failed")
        target.abort("stopped: the transfer failed")
        raise
    return Moved(size, digest.hexdigest() if digest is not None else None)
