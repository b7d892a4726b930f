"""sudo with a real unprivileged OS user, created here and removed after: the
user may run esbackup as root through sudo (as an operator would allow), and
must not turn that into root's power over a catalog of their own."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from esbackup.catalog.location import SYSTEM_PATH

ESBACKUP = Path(sys.executable).with_name("esbackup")
REPO = Path(__file__).resolve().parents[2]
# The venv's interpreter may live where an unprivileged user cannot run it
# (pyenv under /root): as that user, the system python runs this checkout with
# the venv's packages (the same Python minor version).
AS_USER = ["/usr/bin/python3", "-m", "esbackup"]
USER_PATH = f"{REPO}:{next(Path(sys.prefix).glob('lib/python3*/site-packages'))}"


@dataclass
class OsUser:
    name: str
    home: Path  # a private directory of theirs

    def run(self, *argv: str, sudo: bool = False, env: dict | None = None):
        """esbackup as this user, or as this user through `sudo` (env kept by SETENV)."""
        assignments = [f"{k}={v}" for k, v in (env or {}).items()]
        inner = ["sudo", "-n", *assignments, str(ESBACKUP)] if sudo else \
            ["env", *assignments, f"PYTHONPATH={USER_PATH}", *AS_USER]
        return subprocess.run(["sudo", "-n", "-u", self.name, "--", *inner, *argv],
                              capture_output=True, text=True, cwd=self.home, timeout=60)


@pytest.fixture
def os_user() -> Iterator[OsUser]:
    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.fail("sudo tests need root and sudo (scripts/install-deps.sh)", pytrace=False)
    name = f"esbsec{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    rule = Path(f"/etc/sudoers.d/esbackup-test-{name}")
    try:
        shutil.chown(home, name, name)
        draft = home.with_suffix(".sudoers")
        draft.write_text(f"{name} ALL=(root) NOPASSWD:SETENV: {ESBACKUP}\n")
        draft.chmod(0o440)
        subprocess.run(["visudo", "-cqf", str(draft)], check=True)  # never a broken sudoers
        shutil.move(draft, rule)
        yield OsUser(name, home)
    finally:
        rule.unlink(missing_ok=True)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_sudo_refuses_a_catalog_the_user_brings(os_user):
    evil = os_user.home / "evil.db"
    # on their own catalog the user is its superadmin (it runs as them: harmless)...
    assert os_user.run("--catalog", str(evil), "catalog", "init").returncode == 0
    made = os_user.run("--catalog", str(evil), "node", "create", "pwn", "--address", "local",
                       "--no-connect")
    assert made.returncode == 0, made.stderr
    # ...but through sudo it would run `local` commands as root: refused
    for argv, env in ((["--catalog", str(evil), "node", "list"], None),
                      (["node", "check", "pwn"], {"ESBACKUP_CATALOG": str(evil)}),
                      (["--catalog", str(os_user.home / "fresh.db"), "user", "create",
                        os_user.name, "--role", "superadmin"], None)):
        result = os_user.run(*argv, sudo=True, env=env)
        assert result.returncode == 3, (argv, result.stdout, result.stderr)
        assert result.stderr == f"Error: through sudo, esbackup opens only {SYSTEM_PATH}, " \
            f"not {argv[1] if argv[0] == '--catalog' else evil}\n"
    assert not (os_user.home / "fresh.db").exists()


def test_sudo_user_is_not_superadmin_of_the_system_catalog(os_user):
    existed = SYSTEM_PATH.exists()
    before = SYSTEM_PATH.read_bytes() if existed else None
    result = os_user.run("user", "create", os_user.name, "--role", "superadmin", sudo=True)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert SYSTEM_PATH.exists() == existed
    if existed:
        assert SYSTEM_PATH.read_bytes() == before


def test_read_only_catalog_is_one_line(os_user, tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="esbsec-ro-"))
    try:
        shared.chmod(0o755)
        catalog = shared / "catalog.db"
        subprocess.run([str(ESBACKUP), "catalog", "init", str(catalog)], check=True)
        root = subprocess.run([str(ESBACKUP), "--catalog", str(catalog), "user", "create",
                               os_user.name, "--role", "superadmin"], capture_output=True,
                              text=True)
        assert root.returncode == 0, root.stderr
        catalog.chmod(0o644)
        result = os_user.run("--catalog", str(catalog), "dc", "create", "d1")
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "read-only" in result.stderr or "unable to open" in result.stderr
    finally:
        shutil.rmtree(shared)
