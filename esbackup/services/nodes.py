"""Talking to nodes: host-key pinning, capability detection, health check."""
from __future__ import annotations

import sys
from collections.abc import Callable

from esbackup.domain.models import Node, Storage
from esbackup.drivers import batch, probe, zfs
from esbackup.drivers.session import Sessions
from esbackup.errors import HostKeyMismatch, InvalidInput


def pin_host_key(node: Node, *, accept: bool, expected: str | None,
                 confirm: Callable[[str], bool] | None = None) -> None:
    """Learn the node's host key and pin it: it must match `expected`, be
    accepted with `accept`, or be confirmed by the operator on a terminal."""
    from esbackup.drivers import transport

    key_type, offered = transport.fetch_host_key(node)
    if expected:
        if expected != offered:
            raise HostKeyMismatch(f"host key mismatch for node {node.name}: expected {expected}, "
                                  f"offered {offered}")
    elif node.host_key and node.host_key != offered and not accept:
        raise HostKeyMismatch(f"host key mismatch for node {node.name}: pinned {node.host_key}, "
                              f"offered {offered}")
    elif not accept:
        question = f"node {node.name} offers {key_type} key {offered}. Pin it?"
        if confirm is None:
            confirm = _terminal_confirm
        if not confirm(question):
            raise InvalidInput(f"host key of node {node.name} not accepted ({offered}); "
                               "use --accept-host-key or --host-key SHA256:...")
    node.host_key = offered


def _terminal_confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    import click

    return click.confirm(question, default=False, err=True)


def detect(node: Node, *, sessions: Sessions) -> dict:
    """ZFS flavour, features and tools of a node (one remote call); stored as its
    capabilities."""
    return _capabilities(node, sessions(node).batch(detect_steps()))


def detect_steps() -> list[batch.Step]:
    """Each capability probe, whatever the one before did, then the tools."""
    probes = [batch.Step(_probe_step(key), argv) for key, argv in zfs.capability_probes().items()]
    return [*probes, batch.Step("tools", probe.which(probe.TOOLS))]


def _probe_step(key: str) -> str:
    return "probe-" + key.replace("_", "-")


def _capabilities(node: Node, results: batch.Results) -> dict:
    """A probe's failure is a clue (`zfs version` on zfs-fuse): its stdout and
    stderr go to the parser together."""
    caps = zfs.parse_capabilities({
        key: results[_probe_step(key)].stdout + results[_probe_step(key)].stderr
        for key in zfs.capability_probes()})
    caps["tools"] = probe.parse_which(results.ok("tools").stdout, probe.TOOLS)
    node.capabilities = caps
    return caps


def check_steps(storages: list[Storage]) -> list[batch.Step]:
    steps = [*detect_steps(), batch.Step("pools", zfs.list_pools())]
    if storages:
        steps.append(batch.Step("space", zfs.space([s.zpool for s in storages])))
    return steps


def check(node: Node, storages: list[Storage], *, sessions: Sessions) -> dict:
    """A fresh look at a node in one remote call: capabilities, pools, free space
    per storage (a missing pool fails `zfs get` for itself only)."""
    results = sessions(node).batch(check_steps(storages))
    caps = _capabilities(node, results)
    pools = zfs.parse_pools(results.ok("pools").stdout)
    space = zfs.parse_get(results["space"].stdout) if storages else {}
    return {
        "node": node.name, "address": node.address, "port": node.port,
        "host_key": node.host_key, "capabilities": caps,
        "pools": [f"{p.name} ({p.health})" for p in pools],
        "storages": [{"storage": s.name, "zpool": s.zpool,
                      "available": space.get(s.zpool, {}).get("available"),
                      "used": space.get(s.zpool, {}).get("used"),
                      "missing": s.zpool not in space} for s in storages],
    }
