"""A throwaway PostgreSQL server for the tests: Debian's postgresql binaries,
a cluster made by initdb in a temporary directory, listening on 127.0.0.1 on
a free port with password (scram) authentication, removed on close.

initdb and the server refuse to run as root, so as root they run as the
`postgres` OS user (Debian's package creates it).
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "esbackup-lab"
SUPERUSER = "postgres"


class PostgresError(Exception):
    pass


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresError("PostgreSQL is not installed (Debian package postgresql)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One cluster; `url(db)` names a database on it, `new_database()` makes one."""

    def __init__(self):
        self.bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="esb-pg-"))
        self.data, self.port = self.dir / "data", free_port()
        self.passfile = self.dir / "pgpass"
        self._names = itertools.count(1)
        self._as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        os.chmod(pwfile, 0o644)
        self._pg("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                 "--auth-host=scram-sha-256", "--auth-local=trust", "--locale=C.UTF-8",
                 "-E", "UTF8")
        pwfile.unlink()
        self.passfile.write_text(f"127.0.0.1:{self.port}:*:{SUPERUSER}:{PASSWORD}\n")
        os.chmod(self.passfile, 0o600)
        self.start()

    def _pg(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self._as, str(self.bindir / tool), *args],
                                capture_output=True, text=True, cwd=self.dir)
        if result.returncode != 0:
            raise PostgresError(f"{tool} failed: {result.stderr.strip() or result.stdout}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.dir} -c fsync=off")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                 str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), password=PASSWORD, autocommit=True) as conn:
            conn.execute(statement)

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL (password in the pgpass file)."""
        name = f"esb_{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
