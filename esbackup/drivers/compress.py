"""Compression filters for file backups: argv for the node, pigz/pbzip2 when present."""
from __future__ import annotations

from collections.abc import Mapping

from esbackup.errors import InvalidInput, OperationFailed

# gzip is the fast compression (README): level 1. bzip2 the smaller one: its default -9.
_COMPRESS = {"gzip": (("pigz", "-c", "-1"), ("gzip", "-c", "-1")),
             "bzip2": (("pbzip2", "-c"), ("bzip2", "-c"))}
_DECOMPRESS = {"gzip": (("pigz", "-d", "-c"), ("gzip", "-d", "-c")),
               "bzip2": (("pbzip2", "-d", "-c"), ("bzip2", "-d", "-c"))}


def _pick(table: Mapping, compression: str, tools: Mapping[str, bool]) -> list[str] | None:
    if compression == "off":
        return None
    if compression not in table:
        raise InvalidInput(f"unknown compression {compression!r}")
    parallel, plain = table[compression]
    if tools.get(parallel[0]):
        return list(parallel)
    if tools and not tools.get(plain[0]):
        raise OperationFailed(f"{plain[0]} is not installed on the node")
    return list(plain)


STORE = ["cat"]  # the filter of an uncompressed file: stdin to stdout as it is


def compressor(compression: str, tools: Mapping[str, bool]) -> list[str] | None:
    """argv of the filter that compresses stdin to stdout; None for 'off'."""
    return _pick(_COMPRESS, compression, tools)


def decompressor(compression: str, tools: Mapping[str, bool]) -> list[str] | None:
    return _pick(_DECOMPRESS, compression, tools)
