"""Pieces shared by the command modules."""
from __future__ import annotations

import sys

import click

from esbackup.errors import InvalidInput


def app():
    """The AppContext of this invocation (catalog, identity, messages)."""
    return click.get_current_context().find_root().obj


def confirm_destructive(message: str, yes: bool) -> None:
    """Ask on a terminal; without one, `--yes` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"{message}: not confirmed (use --yes when not on a terminal)")
    if not click.confirm(f"{message}. Continue?", default=False, err=True):
        raise click.Abort()


def known(cat, *, dc: str | None = None, node: str | None = None) -> None:
    """Filters name existing records: a typo is "not found" (exit 4), not an empty list."""
    if dc is not None:
        cat.dc(dc)
    if node is not None:
        cat.node(node)
