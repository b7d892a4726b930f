"""Which of some commands a node has on its PATH: argv and parser.

A constant script: the names arrive as positional parameters.
"""
from __future__ import annotations

# What a node's capabilities record: compressors, pacers, hashers, the guest agent's helper.
TOOLS = ("gzip", "bzip2", "pigz", "pbzip2", "pv", "mbuffer", "sha256sum", "digest", "python3")
WHICH_SCRIPT = 'for t in "$@"; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true'


def which(names: tuple[str, ...]) -> list[str]:
    """Prints each of `names` the node has, one a line; always exits 0."""
    return ["sh", "-c", WHICH_SCRIPT, "sh", *names]


def parse_which(output: str, names: tuple[str, ...]) -> dict[str, bool]:
    found = output.split()
    return {name: name in found for name in names}
