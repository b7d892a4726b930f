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

from esbackup.domain.models import Node
from esbackup.drivers import openssh, transport
from esbackup.engine import transfer
from esbackup.errors import OperationFailed
from esbackup.services import nodes


def limiter(rate: int, node: Node) -> list[list[str]]:
    """Pipeline stages that cap a stream on `node` at `rate` bytes/s."""
    if not rate:
        return []
    tools = node.capabilities.get("tools", {})
    if tools.get("mbuffer"):
        return [["mbuffer", "-q", "-m", "16M", "-r", str(rate)]]
    if tools.get("pv"):
        return [["pv", "-q", "-L", str(rate)]]
    raise OperationFailed(f"node {node.name} has neither mbuffer nor pv for the bandwidth "
                          "limit: install one, or use the relay transfer mode")


def mode(source: Node, target: Node) -> str:
    if source.name == target.name:
        return "local"
    return target.transfer


def move(source: Node, target: Node, *, source_stages: list[list[str]],
         stages: list[list[str]], input_path: str | None = None, output: str | None = None,
         rate: int = 0, reporter=None, direct_ok: bool = True,
         total: Callable[[], int | None] | None = None,
         bulk: bool = True, checksum: bool = False) -> transfer.Moved | None:
    """Stream what `source_stages` print on `source` into `stages` on `target`.

    `total` estimates the stream's size, asked only when a progress bar shows.
    `bulk`: the stream may be large (False for an incremental send).

    Returns the stream's size, and with `checksum` its SHA-256, when it passed
    through this host.
    """
    how = mode(source, target)
    if how == "direct" and not direct_ok:
        how = "relay"
    if how == "relay":
        return relay(source, target, source_stages, stages, input_path, output, rate, reporter,
                     total, bulk, checksum)
    if how == "direct":
        if len(source_stages) != 1 or input_path is not None:
            raise ValueError("direct mode pulls one command's output")
        source_stages = [transport.ssh_argv(source, source_stages[0], target.ssh_config)]
    pipeline = [*source_stages, *limiter(rate, target), *stages]
    result = nodes.session(target).run(
        transport.pipeline_argv(pipeline, output=output, input_path=input_path), check=False)
    transport.check_pipeline(target.name, pipeline, result)
    return None


def relay(source: Node, target: Node, source_stages, stages, input_path, output, rate,
          reporter, total: Callable[[], int | None] | None, bulk: bool,
          checksum: bool) -> transfer.Moved:
    send_argv = transport.pipeline_argv(source_stages, input_path=input_path)
    receive_argv = transport.pipeline_argv(stages, output=output)
    progress = reporter.progress(f"{source.name} → {target.name}", total) if reporter else None
    with leg(source, send_argv, bulk) as src, leg(target, receive_argv, bulk) as dst:
        try:
            moved = transfer.relay(
                src, dst, bwlimit=rate, progress=progress, checksum=checksum,
                check_source=lambda: transport.check_pipeline(
                    source.name, source_stages, transport.Result(src.status, "", src.stderr)))
        except OperationFailed as error:
            better = stage_error((source, source_stages, src), (target, stages, dst))
            if better is None:
                raise
            raise better from error
        finally:
            if progress:
                progress(None)
        transport.check_pipeline(target.name, stages,
                                 transport.Result(dst.status, "", dst.stderr))
    return moved


def leg(node: Node, argv: list[str], bulk: bool) -> transport.Stream:
    """One side of a relay: an `ssh` process for a bulk stream when this host has
    `ssh`, else a channel of the node's transport."""
    session = nodes.session(node)
    if bulk and isinstance(session, transport.SSHTransport) and openssh.available():
        return openssh.open_stream(session, argv)
    return session.open_stream(argv, check=False)


def stage_error(*sides) -> OperationFailed | None:
    """The failure a stage reported, which says more than a broken stream does."""
    for node, stages, stream in sides:
        try:
            transport.check_pipeline(node.name, stages, transport.Result(0, "", stream.stderr))
        except OperationFailed as error:
            if any(line.startswith(transport.STAGE_MARK) for line in stream.stderr.splitlines()):
                return error
    return None
