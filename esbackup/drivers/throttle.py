"""A bandwidth limit as a pipeline stage on a node: `mbuffer -r`, else `pv -L`."""
from __future__ import annotations

from esbackup.domain.models import Node
from esbackup.errors import OperationFailed


def limiter(rate: int, node: Node) -> list[list[str]]:
    """Pipeline stages that cap a stream on `node` at `rate` bytes/s (none for 0)."""
    if not rate:
        return []
    tools = node.capabilities.get("tools", {})
    if tools.get("mbuffer"):
        return [["mbuffer", "-q", "-m", "16M", "-r", str(rate)]]
    if tools.get("pv"):
        return [["pv", "-q", "-L", str(rate)]]
    raise OperationFailed(f"node {node.name} has neither mbuffer nor pv for the bandwidth "
                          "limit: install one, or use the relay transfer mode")
