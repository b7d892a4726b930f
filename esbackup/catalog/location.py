"""Where a catalog is and whether its file may be used: the system catalog's
path, a postgresql:// URL told from a SQLite file path, the default location
(ESBACKUP_CATALOG, root's system catalog, or the caller's own), and the checks
that refuse a file others could have written."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from esbackup.errors import PermissionDenied

SYSTEM_PATH = Path("/var/lib/esbackup/catalog.db")


def is_url(location: Path | str | None) -> bool:
    """A postgresql:// URL (a PostgreSQL catalog) rather than a SQLite file path."""
    return str(location).startswith(("postgresql://", "postgres://"))


def default_path() -> Path | str:
    env = os.environ.get("ESBACKUP_CATALOG")
    if env:
        return env if is_url(env) else Path(env)
    if os.geteuid() == 0:
        return SYSTEM_PATH
    import click

    return Path(click.get_app_dir("esbackup")) / "catalog.db"


def check_file(path: Path, system_only: bool) -> None:
    """Refuse a catalog that others could have written (group, others, or an
    owner who is neither root nor the caller). `system_only` (under
    sudo): nothing but the system catalog, root's, 0600 or stricter, no
    symlink, in a directory only root writes; it must already exist."""
    if system_only:
        if Path(os.path.abspath(path)) != SYSTEM_PATH:
            raise PermissionDenied(f"through sudo, esbackup opens only {SYSTEM_PATH}, not {path}")
        try:
            info, parent = os.lstat(path), os.stat(path.parent)
        except FileNotFoundError:
            raise PermissionDenied(f"no catalog {path}: root creates it (run esbackup as root "
                                   "without sudo first)") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise PermissionDenied(f"catalog {path} is not a regular file")
        if info.st_uid != 0 or stat.S_IMODE(info.st_mode) & 0o077:
            raise PermissionDenied(f"through sudo, the catalog must be root's with mode 0600: "
                                   f"chown root {path} && chmod 600 {path}")
        if parent.st_uid != 0 or parent.st_mode & 0o022:
            raise PermissionDenied(f"catalog directory {path.parent} must be root's and "
                                   f"writable by root only: chmod go-w {path.parent}")
        return
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise PermissionDenied(f"catalog {path} is writable by others: chmod go-w {path}")
    if info.st_uid not in (0, os.geteuid()) and info.st_mode & stat.S_IWUSR:
        raise PermissionDenied(f"catalog {path} belongs to uid {info.st_uid}, who could change "
                               "what esbackup runs as you: use your own catalog")

