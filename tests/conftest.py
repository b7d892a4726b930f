"""Shared fixtures: a CLI runner on a real SQLite catalog in a temporary folder."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esbackup.cli import cli

pytest_plugins = ["tests.integration.site"]


@dataclass
class Esbackup:
    catalog: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--catalog", str(self.catalog), *args], input=input,
                             catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    def json(self, *args: str):
        return json.loads(self.ok(*args, "-f", "json").stdout)

    def fails(self, code: int, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result.stderr


@pytest.fixture
def esb(tmp_path: Path) -> Esbackup:
    return Esbackup(tmp_path / "catalog.db")


@pytest.fixture
def inventory(esb: Esbackup) -> Esbackup:
    """Two unconnected nodes, a storage and a KVM server with two disks."""
    esb.ok("node", "create", "c1", "--address", "127.0.0.2", "--no-connect")
    esb.ok("node", "create", "b1", "--address", "127.0.0.3", "--backup", "--no-compute",
           "--no-connect")
    esb.ok("storage", "create", "b1", "tank", "--zpool", "tank")
    esb.ok("vm", "create", "web01", "--node", "c1", "--disk", "1=zones/web01-disk0",
           "--disk", "2=zones/web01-disk1", "--uuid", "3f2a5a4e-0000-4000-8000-000000000001")
    return esb
