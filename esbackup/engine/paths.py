"""The three data paths of a transfer (docs/DESIGN.md, "Data path").

- same node: the compute node is the backup node; the pipe stays there.
- relay (default): two SSH legs through this host; limit, progress and
  checksum here. A bulk stream (a full send; any restore) goes through two
  `ssh` processes (drivers/openssh.py: about twice paramiko's throughput), a
  small one (an incremental) through paramiko channels of the connections the
  run already holds (no logins to pay).
- direct: the backup node pulls from the compute node with its own ssh
  (node-to-node keys); the limit is `mbuffer -r` or `pv -L` on the backup node.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from esbackup.domain.models import Node
from esbackup.drivers import transport
from esbackup.drivers.session import Reporter, Sessions
from esbackup.drivers.throttle import limiter
from esbackup.engine import transfer as transfer_stream
from esbackup.errors import OperationFailed


def mode(source: Node, target: Node) -> str:
    if source.name == target.name:
        return "local"
    return target.transfer


@dataclass(frozen=True)
class Transfer:
    """One stream: what `source_stages` print on `source` into `stages` on `target`.

    `input_path` feeds the first source stage, `output` takes the last stage's
    output; `rate` caps it (bytes/s); `direct_ok` False keeps it off the direct
    path; `bulk` says it may be large (False for an incremental send); with
    `checksum` its SHA-256 is taken as it passes through this host.
    """

    source: Node
    target: Node
    source_stages: tuple[tuple[str, ...], ...]
    stages: tuple[tuple[str, ...], ...]
    input_path: str | None = None
    output: str | None = None
    rate: int = 0
    direct_ok: bool = True
    bulk: bool = True
    checksum: bool = False

    @classmethod
    def of(cls, source: Node, target: Node, source_stages: list[list[str]],
           stages: list[list[str]], **options) -> Transfer:
        return cls(source, target, tuple(map(tuple, source_stages)), tuple(map(tuple, stages)),
                   **options)

    @property
    def sends(self) -> list[list[str]]:
        return [list(stage) for stage in self.source_stages]

    @property
    def receives(self) -> list[list[str]]:
        return [list(stage) for stage in self.stages]


def move(transfer: Transfer, *, sessions: Sessions, reporter: Reporter | None = None,
         total: Callable[[], int | None] | None = None) -> transfer_stream.Moved | None:
    """Carry `transfer` by the path its nodes call for (the module's docstring).

    `total` estimates the stream's size, asked only when a progress bar shows.
    Returns the stream's size, and with `checksum` its SHA-256, when it passed
    through this host.
    """
    how = mode(transfer.source, transfer.target)
    if how == "direct" and not transfer.direct_ok:
        how = "relay"
    if how == "relay":
        return relay(transfer, sessions=sessions, reporter=reporter, total=total)
    source_stages = transfer.sends
    if how == "direct":
        if len(source_stages) != 1 or transfer.input_path is not None:
            raise ValueError("direct mode pulls one command's output")
        source_stages = [transport.pull_argv(transfer.source, source_stages[0],
                                            transfer.target.ssh_config)]
    pipeline = [*source_stages, *limiter(transfer.rate, transfer.target), *transfer.receives]
    sessions(transfer.target).pipeline(pipeline, output=transfer.output,
                                       input_path=transfer.input_path)
    return None


def relay(transfer: Transfer, *, sessions: Sessions, reporter: Reporter | None = None,
          total: Callable[[], int | None] | None = None) -> transfer_stream.Moved:
    source, target = transfer.source, transfer.target
    source_stages, stages = transfer.sends, transfer.receives
    send_argv = transport.pipeline_argv(source_stages, input_path=transfer.input_path)
    receive_argv = transport.pipeline_argv(stages, output=transfer.output)
    progress = reporter.progress(f"{source.name} → {target.name}", total) if reporter else None
    with sessions(source).open_stream(send_argv, bulk=transfer.bulk) as src, \
            sessions(target).open_stream(receive_argv, bulk=transfer.bulk) as dst:
        try:
            moved = transfer_stream.relay(
                src, dst, bwlimit=transfer.rate, progress=progress, checksum=transfer.checksum,
                check_source=lambda: transport.check_pipeline(
                    source.name, source_stages, src.result()))
        except OperationFailed as error:
            better = stage_error((source, source_stages, src), (target, stages, dst))
            if better is None:
                raise
            raise better from error
        finally:
            if progress:
                progress(None)
        transport.check_pipeline(target.name, stages, dst.result())
    return moved


def stage_error(*sides) -> OperationFailed | None:
    """The failure a stage reported, which says more than a broken stream does."""
    for node, stages, stream in sides:
        try:
            transport.check_pipeline(node.name, stages, transport.Result(0, "", stream.stderr))
        except OperationFailed as error:
            if any(line.startswith(transport.STAGE_MARK) for line in stream.stderr.splitlines()):
                return error
    return None
