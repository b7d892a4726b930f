"""Pieces shared by the command modules."""
from __future__ import annotations

import re
import sys

import click

from esbackup.domain.models import DIGITS_RE, MAX_RETENTION, MAX_WAIT_S
from esbackup.errors import InvalidInput

SECONDS_RE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", re.ASCII)


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


class WholeNumber(click.ParamType):
    """An integer of ASCII digits within a range (click's INT takes '١' and '1_0'
    and has no upper bound)."""

    name = "integer"

    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and DIGITS_RE.fullmatch(value) and len(value) <= 18:
            number = int(value)
        else:
            self.fail(f"{value!r} is not a whole number of ASCII digits", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is not in the range {self.low} to {self.high}", param, ctx)
        return number


class Seconds(click.ParamType):
    """A finite number of seconds from 0 to a week (no inf, nan or exponents)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text = repr(value)
        else:
            text = value
        if not isinstance(text, str) or not SECONDS_RE.fullmatch(text) or len(text) > 20:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        seconds = float(text)
        if not 0 <= seconds <= MAX_WAIT_S:
            self.fail(f"{value} is not in the range 0 to {MAX_WAIT_S}", param, ctx)
        return seconds


KEEP_HELP = {
    "last": "Keep the N newest backups.",
    "hourly": "Keep the newest backup of each of the N last hours that have one.",
    "daily": "... of each of the N last days (in the definition's time zone).",
    "weekly": "... of each of the N last ISO weeks.",
    "monthly": "... of each of the N last months.",
    "yearly": "... of each of the N last years.",
}  # by rule, in domain/prune.py's RULES order


def keep_option_list() -> list:
    """--keep-last ... --keep-yearly (definition create/update, retention preview)."""
    return [click.option(f"--keep-{rule}", f"keep_{rule}", type=WholeNumber(0, MAX_RETENTION),
                         help=help) for rule, help in KEEP_HELP.items()]
