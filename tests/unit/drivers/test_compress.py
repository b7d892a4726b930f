"""The choice of compression tools on a node (drivers/compress.py)."""
from __future__ import annotations

import pytest

from esbackup.drivers import compress
from esbackup.errors import InvalidInput, OperationFailed


def test_compressor_choice():
    assert compress.compressor("gzip", {"pigz": True, "gzip": True}) == ["pigz", "-c", "-1"]
    assert compress.compressor("gzip", {"pigz": False, "gzip": True}) == ["gzip", "-c", "-1"]
    assert compress.compressor("bzip2", {"bzip2": True}) == ["bzip2", "-c"]
    assert compress.compressor("bzip2", {"pbzip2": True, "bzip2": True}) == ["pbzip2", "-c"]
    assert compress.decompressor("gzip", {"gzip": True}) == ["gzip", "-d", "-c"]
    assert compress.decompressor("bzip2", {"pbzip2": True}) == ["pbzip2", "-d", "-c"]
    assert compress.compressor("off", {}) is None
    assert compress.decompressor("off", {"gzip": True}) is None


def test_compressor_missing_tool():
    with pytest.raises(OperationFailed, match="gzip"):
        compress.compressor("gzip", {"bzip2": True, "pigz": False})
    with pytest.raises(OperationFailed, match="bzip2"):
        compress.decompressor("bzip2", {"gzip": True})
    with pytest.raises(InvalidInput):
        compress.compressor("xz", {"xz": True})
