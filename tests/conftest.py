"""Shared fixtures: a CLI runner on a real catalog: a SQLite file in a temporary
folder, or (where a module asks for both backends) a PostgreSQL schema on the
session's throwaway server."""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esbackup.cli import cli

pytest_plugins = ["tests.integration.site"]


@dataclass
class Esbackup:
    catalog: Path | str  # a SQLite file or a postgresql:// URL
    sessions: Callable | None = None  # the node-session factory; None: production's

    def __call__(self, *args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--catalog", str(self.catalog), *args], input=input,
                             catch_exceptions=False, obj=self.sessions)

    def init(self) -> Esbackup:
        """Create this catalog (`catalog init`): no other command does."""
        self.ok("catalog", "init")
        return self

    def backdate_schedules(self, hours: float = 2) -> None:
        """As if every definition's schedule had begun `hours` ago: a firing a test
        made minutes ago is then theirs (a tick never runs one from before)."""
        from esbackup.catalog.core import Catalog

        since = datetime.now(timezone.utc) - timedelta(hours=hours)
        cat = Catalog.open(self.catalog)
        try:
            cat.conn.execute("UPDATE definitions SET scheduled_since = ?", (since.isoformat(),))
        finally:
            cat.close()

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


_schemas = itertools.count(1)
TEST_DATABASE = "esbackup_tests"


@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """The session's PostgreSQL server (lab/postgres.py); its password is in a
    pgpass file that PGPASSFILE names, as an operator's ~/.pgpass would hold it."""
    from lab.postgres import PostgresError, Server

    try:
        server = Server()
    except (PostgresError, OSError) as exc:
        pytest.fail(f"cannot start PostgreSQL: {exc}", pytrace=False)
    old = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(server.passfile)
    try:
        server.sql(f"CREATE DATABASE {TEST_DATABASE}")
        yield server
    finally:
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
        server.close()


@pytest.fixture
def pg_catalog(postgres) -> str:
    """The URL of a new, empty PostgreSQL catalog: a schema of its own."""
    schema = f"t{next(_schemas)}"
    postgres.sql(f"CREATE SCHEMA {schema}", TEST_DATABASE)
    return f"{postgres.url(TEST_DATABASE)}?options=-csearch_path%3D{schema}"


@pytest.fixture
def backend() -> str:
    """The catalog backend of `esb`; modules testing both override this fixture."""
    return "sqlite"


@pytest.fixture
def catalog_location(request: pytest.FixtureRequest, tmp_path: Path, backend: str):
    if backend == "postgresql":
        return request.getfixturevalue("pg_catalog")
    return tmp_path / "catalog.db"


@pytest.fixture
def esb(catalog_location) -> Esbackup:
    """A CLI on a new catalog, made as an operator makes one: `catalog init`."""
    return Esbackup(catalog_location).init()


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
