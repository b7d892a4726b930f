"""Talking to nodes: host-key pinning, capability detection, health check,
and the small file operations the jobs need on a node."""
from __future__ import annotations

import sys
from collections.abc import Callable

from esbackup.domain.models import Node, Storage
from esbackup.drivers import batch, files, probe, zfs
from esbackup.errors import HostKeyMismatch, InvalidInput, RemoteCommandError

TOOLS = ("gzip", "bzip2", "pigz", "pbzip2", "pv", "mbuffer", "sha256sum", "digest", "python3")


def session(node: Node):
    """The node's transport (lazy, cached per process)."""
    from esbackup.drivers import transport

    return transport.connect(node)


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


def detect(node: Node) -> dict:
    """ZFS flavour, features and tools of a node (one remote call); stored as its
    capabilities."""
    return _capabilities(node, batch.run(session(node), detect_steps()))


def detect_steps() -> list[batch.Step]:
    """Each capability probe, whatever the one before did, then the tools."""
    probes = [batch.Step(_probe_step(key), argv) for key, argv in zfs.capability_probes().items()]
    return [*probes, batch.Step("tools", probe.which(TOOLS))]


def _probe_step(key: str) -> str:
    return "probe-" + key.replace("_", "-")


def _capabilities(node: Node, results: batch.Results) -> dict:
    """A probe's failure is a clue (`zfs version` on zfs-fuse): its stdout and
    stderr go to the parser together."""
    caps = zfs.parse_capabilities({
        key: results[_probe_step(key)].stdout + results[_probe_step(key)].stderr
        for key in zfs.capability_probes()})
    caps["tools"] = probe.parse_which(results.ok("tools").stdout, TOOLS)
    node.capabilities = caps
    return caps


def check_steps(storages: list[Storage]) -> list[batch.Step]:
    steps = [*detect_steps(), batch.Step("pools", zfs.list_pools())]
    if storages:
        steps.append(batch.Step("space", zfs.space([s.zpool for s in storages])))
    return steps


def check(node: Node, storages: list[Storage]) -> dict:
    """A fresh look at a node in one remote call: capabilities, pools, free space
    per storage (a missing pool fails `zfs get` for itself only)."""
    results = batch.run(session(node), check_steps(storages))
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


def rename(t, old: str, new: str, attempts: int = 10, pause: float = 0.5) -> None:
    """Unmount and rename a filesystem or volume. One that was just read can be
    busy for a moment (zfs-fuse especially), so both steps retry while it is;
    one that stays busy raises, and stays as it was."""
    import time

    for attempt in range(attempts):
        t.run(zfs.unmount(old), check=False)  # not mounted, or a volume: fine
        result = t.run(zfs.rename(old, new), check=False)
        if result.status == 0:
            return
        if zfs.classify_error(result.stderr) != zfs.BUSY or attempt == attempts - 1:
            raise RemoteCommandError(t.node.name, zfs.rename(old, new), result.status,
                                     result.stderr)
        time.sleep(pause)


# --- file operations on a node (argv from drivers/files.py) -------------------
def mountpoint(t, dataset: str) -> str:
    return parse_mountpoint(dataset, t.run(zfs.get(dataset, "mountpoint")).stdout)


def parse_mountpoint(dataset: str, output: str) -> str:
    """The mountpoint in `zfs get mountpoint` output; a file backup needs one."""
    value = zfs.parse_get(output).get(dataset, {}).get("mountpoint")
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput(f"{dataset} has no mountpoint ({value}); file backups need one")
    return value


def write_file(t, path: str, data: bytes) -> None:
    """Write `data` to `path` whole: under a temporary name first, then renamed."""
    t.run(files.write(path), input=data)


def remove_files(t, *paths: str) -> None:
    t.run(["rm", "-f", "--", *paths])


MAX_READ = 1024 * 1024  # manifests are a few KiB; a node's file is untrusted input


def read_files(t, paths: list[str], limit: int = MAX_READ) -> list[bytes | None]:
    """Exact bytes of several small files in one round trip (hex on the wire, so
    no encoding can shift the framing); None for a file missing or over `limit`."""
    if not paths:
        return []
    script = (f'for f in "$@"; do if [ "$(wc -c < "$f")" -le {int(limit)} ]; '
              'then echo "#"; od -An -v -tx1 "$f"; else echo "#big"; fi; done')
    chunks = t.run(["sh", "-c", script, "sh", *paths], check=False).stdout.split("#")[1:]
    if len(chunks) != len(paths):
        raise InvalidInput("files changed while being read; try again")
    return [None if chunk.startswith("big") else bytes.fromhex("".join(chunk.split()))
            for chunk in chunks]
