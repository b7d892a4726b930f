"""The one seam to a node (docs/DESIGN.md, "One node seam").

Every remote operation of the engine, the actions and the services goes through a
`NodeSession`: commands, batches, streams, the small file operations a job needs,
and renames that retry while a dataset is busy. Callers receive a `Sessions`
factory (`connect` in production, a recording or faulty one in tests) instead of
looking a transport up themselves. The shell text those operations need lives
here and in the other driver modules, nowhere else.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from esbackup.domain.models import Node
from esbackup.drivers import batch, files, openssh, transport, zfs
from esbackup.errors import InvalidInput, OperationFailed, RemoteCommandError

MAX_READ = 1024 * 1024  # manifests are a few KiB; a node's file is untrusted input


class Reporter(Protocol):
    """Where the core says what it is doing, one line at a time (the CLI's
    AppContext; a list of lines in tests). Optional wherever it is taken."""

    def warn(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...

    def progress(self, label: str, total: Callable[[], int | None] | None = None
                 ) -> Callable[[int | None], None] | None:
        """`advance(n)` for a stream's bytes (`advance(None)` ends it), or None
        when nothing is drawn (then `total`, an estimate, is never asked)."""
        ...


class NodeSession(Protocol):
    """Everything the core may ask of one node."""

    node: Node

    def run(self, argv: list[str], *, input: bytes | None = None,
            check: bool = True) -> transport.Result: ...

    def batch(self, steps: list[batch.Step], *,
              feed: Callable[[batch.Results], bytes] | None = None) -> batch.Results: ...

    def open_stream(self, argv: list[str], *, bulk: bool = False) -> transport.Stream: ...

    def pipeline(self, stages: list[list[str]], *, output: str | None = None,
                 input_path: str | None = None) -> transport.Result: ...

    def read_files(self, paths: list[str], limit: int = MAX_READ) -> list[bytes | None]: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def remove_files(self, *paths: str) -> None: ...

    def existing_files(self, paths: Iterable[str]) -> set[str]: ...

    def find_manifests(self, top: str) -> list[str]: ...

    def mountpoint(self, dataset: str) -> str: ...

    def rename(self, old: str, new: str, attempts: int = 10, pause: float = 0.5) -> None: ...


Sessions = Callable[[Node], NodeSession]


class TransportSession:
    """A NodeSession over one of drivers/transport.py's transports."""

    def __init__(self, t: transport.Transport) -> None:
        self.t = t
        self.node = t.node

    def run(self, argv: list[str], *, input: bytes | None = None,
            check: bool = True) -> transport.Result:
        return self.t.run(argv, input=input, check=check)

    def batch(self, steps: list[batch.Step], *,
              feed: Callable[[batch.Results], bytes] | None = None) -> batch.Results:
        return batch.run(self.t, steps, feed=feed)

    def open_stream(self, argv: list[str], *, bulk: bool = False) -> transport.Stream:
        """A bulk stream of an SSH node goes through OpenSSH's `ssh` when it is
        installed (faster ciphers, drivers/openssh.py); any other, a channel."""
        if bulk and isinstance(self.t, transport.SSHTransport) and openssh.available():
            return openssh.open_stream(self.t, argv)
        return self.t.open_stream(argv, check=False)

    def pipeline(self, stages: list[list[str]], *, output: str | None = None,
                 input_path: str | None = None) -> transport.Result:
        """Run `stages` as one pipeline; the stage that failed raises."""
        result = self.t.run(transport.pipeline_argv(stages, output=output, input_path=input_path),
                            check=False)
        transport.check_pipeline(self.node.name, stages, result)
        return result

    def read_files(self, paths: list[str], limit: int = MAX_READ) -> list[bytes | None]:
        """Exact bytes of several small files, in one round trip per few MiB (hex on
        the wire, so no encoding can shift the framing, and within the cap on one
        call's output); None for a file missing or over `limit`."""
        budget = max(limit, transport.MAX_OUTPUT // files.HEX_PER_BYTE)
        found: list[bytes | None | files.Later] = [files.LATER] * len(paths)
        while todo := [i for i, data in enumerate(found) if data is files.LATER]:
            argv = files.read([paths[i] for i in todo], limit, budget)
            output = files.parse_read(self.t.run(argv, check=False).stdout, len(todo))
            if output[0] is files.LATER:
                raise OperationFailed(f"{self.node.name}: file reader left {paths[todo[0]]} "
                                      "unread")
            for i, data in zip(todo, output, strict=True):
                found[i] = data
        return [None if isinstance(data, files.Later) else data for data in found]

    def write_file(self, path: str, data: bytes) -> None:
        """Write `data` to `path` whole: under a temporary name first, then renamed."""
        self.t.run(files.write(path), input=data)

    def remove_files(self, *paths: str) -> None:
        self.t.run(files.remove(*paths))

    def existing_files(self, paths: Iterable[str]) -> set[str]:
        """Which of `paths` exist, in one call."""
        paths = list(paths)
        if not paths:
            return set()
        return set(self.t.run(files.existing(paths)).stdout.splitlines())

    def find_manifests(self, top: str) -> list[str]:
        """Every `*.json` file under `top` (none when it is missing)."""
        return self.t.run(files.find_manifests(top)).stdout.split("\0")[:-1]

    def mountpoint(self, dataset: str) -> str:
        return parse_mountpoint(dataset, self.t.run(zfs.get(dataset, "mountpoint")).stdout)

    def rename(self, old: str, new: str, attempts: int = 10, pause: float = 0.5) -> None:
        """Unmount and rename a filesystem or volume. One that was just read can be
        busy for a moment (zfs-fuse especially), so both steps retry while it is;
        one that stays busy raises, and stays as it was."""
        for attempt in range(attempts):
            self.t.run(zfs.unmount(old), check=False)  # not mounted, or a volume: fine
            result = self.t.run(zfs.rename(old, new), check=False)
            if result.status == 0:
                return
            if zfs.classify_error(result.stderr) != zfs.BUSY or attempt == attempts - 1:
                raise RemoteCommandError(self.node.name, zfs.rename(old, new), result.status,
                                         result.stderr)
            time.sleep(pause)


def connect(node: Node) -> NodeSession:
    """The production factory: the node's transport, lazy and shared within the
    process (drivers/transport.py)."""
    return TransportSession(transport.connect(node))


def parse_mountpoint(dataset: str, output: str) -> str:
    """The mountpoint in `zfs get mountpoint` output; a file backup needs one."""
    value = zfs.parse_get(output).get(dataset, {}).get("mountpoint")
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput(f"{dataset} has no mountpoint ({value}); file backups need one")
    return value


def snapshot_listing(session: NodeSession, parent: str) -> set[str]:
    """Snapshot names under `parent`; none when it does not exist."""
    result = session.run(zfs.list_snapshot_names(parent), check=False)
    if result.status == 0:
        return zfs.parse_snapshot_names(result.stdout)
    if zfs.classify_error(result.stderr) == zfs.NOT_FOUND:
        return set()
    raise OperationFailed(f"cannot list {parent}: {result.stderr.strip()}")
