"""Asking nodes: one batch of steps per node, two nodes at the same time.

A job asks each node it needs once before its stream and once after it
(drivers/batch.py); backups and restores alike.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from esbackup.domain.models import Node
from esbackup.drivers import batch
from esbackup.drivers.session import Sessions


def ask(first: Node, first_steps: list[batch.Step], second: Node | None = None,
        second_steps: Sequence[batch.Step] = (), *, sessions: Sessions, feed=None) -> list:
    """One batch on each node, both at once (on one node: one batch of both,
    `feed` for the first's input step). Returns each node's Results, or the
    error its call raised, or None when it had no steps; `settled` raises."""
    second = second or first
    if first.name == second.name:
        if not [*first_steps, *second_steps]:
            return [None, None]
        merged: batch.Results | Exception
        try:
            merged = sessions(first).batch([*first_steps, *second_steps], feed=feed)
        except Exception as error:  # noqa: BLE001 - handed to the caller
            merged = error
        return [merged, merged]
    jobs = [(first, first_steps, feed), (second, list(second_steps), None)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(sessions(node).batch, steps, feed=f) if steps else None
                   for node, steps, f in jobs]
        return [None if f is None else f.exception() or f.result() for f in futures]


def settled(outcome):
    """A node's Results; its call's error raises."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
