"""Active definitions as load on nodes: which nodes each one occupies (its VM's
compute node and its backup node), and for how long, in whole minutes; and
the disk it backs up, which runs one operation at a time (the disk lock):
runs of one disk never add up.

The median of its last `RECENT` ok runs; a definition without such history is
estimated from its disk's used size at `ESTIMATE_RATE` (or at its bandwidth
limit, when that is lower), asked of each compute node in one command. A node
that cannot be asked leaves its definitions at `UNKNOWN_MINUTES`, with a
warning.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import median

from esbackup.catalog.core import Catalog
from esbackup.domain import balance as balancer
from esbackup.domain.auth import Identity
from esbackup.domain.models import VM, Definition
from esbackup.drivers import zfs
from esbackup.drivers.session import NodeSession, Reporter, Sessions
from esbackup.errors import EsbackupError
from esbackup.services import definitions

RECENT = 5
ESTIMATE_RATE = 50 * 1000**2  # bytes/s: about gzip -1, the slowest usual path
UNKNOWN_MINUTES = 60


@dataclass(frozen=True)
class Load:
    definition: Definition
    nodes: frozenset[str]
    minutes: int
    disk: tuple[str, int]  # (VM uuid, disk id): what the disk lock locks
    copy: bool = False  # a copy's job (as its definition, named VM/DEF/NODE): never moved


def active(cat: Catalog, reporter: Reporter | None = None, *, sessions: Sessions) -> list[Load]:
    """Every active definition with the nodes it occupies and its expected minutes;
    and every active scheduled copy (issue 20), on both backup nodes, for as long
    as its definition's backup takes."""
    vms = {vm.hostname: vm for vm in cat.vms()}
    defs = [d for d in cat.definitions() if d.active]
    durations = expected(cat, defs, vms, reporter, sessions=sessions)
    by_id = {d.id: d for d in defs}
    copies = [Load(replace(d, name=f"{d.name}/{c.node}", schedule=c.schedule),
                   frozenset({d.node, c.node}), durations[d.ref], (vms[d.vm].uuid, d.disk_id),
                   copy=True)
              for c in cat.copy_definitions(active=True)
              if c.schedule and (d := by_id.get(c.definition_id)) is not None]
    return [*(Load(d, frozenset({d.node, vms[d.vm].node}), durations[d.ref],
                   (vms[d.vm].uuid, d.disk_id)) for d in defs), *copies]


def minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def estimate(used: int, bwlimit: int = 0) -> int:
    rate = min(ESTIMATE_RATE, bwlimit) if bwlimit else ESTIMATE_RATE
    return minutes(used / rate)


def expected(cat: Catalog, defs: list[Definition], vms: dict[str, VM],
             reporter: Reporter | None = None, *, sessions: Sessions) -> dict[str, int]:
    """Expected minutes per definition ref; `vms` by hostname."""
    history = cat.recent_durations(RECENT)
    found = {d.ref: minutes(median(history[d.id])) for d in defs if d.id in history}
    by_node: dict[str, list[Definition]] = defaultdict(list)
    for d in defs:
        if d.ref not in found:
            by_node[vms[d.vm].node].append(d)
    for node, waiting in sorted(by_node.items()):
        datasets = sorted({vms[d.vm].disks[d.disk_id] for d in waiting
                           if d.disk_id in vms[d.vm].disks})
        try:
            used = _used(sessions(cat.node(node)), datasets)
        except EsbackupError as error:
            used = {}
            if reporter is not None:
                reporter.warn(f"disk sizes on {node} unknown ({error}): "
                              f"{UNKNOWN_MINUTES} minutes assumed")
        for d in waiting:
            dataset = vms[d.vm].disks.get(d.disk_id)
            size = None if dataset is None else used.get(dataset)
            found[d.ref] = UNKNOWN_MINUTES if size is None else estimate(size, d.bwlimit)
    return found


def _used(session: NodeSession, datasets: list[str]) -> dict[str, int]:
    if not datasets:
        return {}
    result = session.run(zfs.get(datasets, "used"), check=False)
    used = {name: props.get("used") for name, props in zfs.parse_get(result.stdout).items()}
    return {name: size for name, size in used.items() if isinstance(size, int)}


def rebalance(cat: Catalog, now: datetime, *, node: str | None, window: str | None,
              reporter: Reporter | None = None,
              sessions: Sessions) -> tuple[list[dict], list[dict]]:
    """`schedule balance`: the moves that spread fixed-time schedules over the
    nodes' slots (domain/balance.py), and each node's peak before and after.
    With `node`, only definitions that touch it move. `apply` makes the moves."""
    zone = balancer.parse_window(window)
    loads: dict[Hashable, Load] = {  # keyed as balance's Plan.moves are
        w.definition.ref: w for w in active(cat, reporter, sessions=sessions)}
    items = [balancer.Item(ref, w.definition.schedule, w.definition.timezone, w.nodes,
                           w.minutes, fixed=w.copy or (node is not None and node not in w.nodes),
                           disk=w.disk)
             for ref, w in loads.items()]
    slots = {n.name: n.max_backups for n in cat.nodes()}
    plan = balancer.balance(items, slots, now, zone)
    moves = []
    for ref, new in plan.moves.items():
        d = loads[ref].definition
        moves.append({"definition": ref, "timezone": d.timezone, "minutes": loads[ref].minutes,
                      "old": d.schedule, "new": new})
    peaks = [{"node": name, "slots": slots[name], "before": before, "after": after}
             for name, (before, after) in sorted(plan.peaks.items()) if node in (None, name)]
    return moves, peaks


def apply(cat: Catalog, who: Identity, moves: list[dict]) -> None:
    """Give each moved definition (`rebalance`'s moves) its new schedule, in one
    transaction: all moves or none."""
    with cat.transaction():
        for move in moves:
            d = definitions.find(cat, move["definition"])
            definitions.update(cat, who, d, {"schedule": move["new"]})
