"""Where a catalog is and whether its file may be used: the system catalog's
path, a postgresql:// URL told from a SQLite file path, the default location
(ESBACKUP_CATALOG, root's system catalog, or the caller's own), and the checks
that refuse a file others could have written or swapped, and the one way a
catalog file is created (`create_file`)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from esbackup.errors import PermissionDenied

SYSTEM_PATH = Path("/var/lib/esbackup/catalog.db")


def is_url(location: Path | str | None) -> bool:
    """A postgresql:// URL (a PostgreSQL catalog) rather than a SQLite file path."""
    return str(location).startswith(("postgresql://", "postgres://"))


def init_hint(location: Path | str) -> str:
    """The one command that makes a catalog at `location`."""
    import shlex

    from esbackup.catalog.postgresql import redact

    return f"create it with `esbackup catalog init {shlex.quote(redact(str(location)))}`"


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
    check_directory(path.parent)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise PermissionDenied(f"catalog {path} is not a regular file (a symlink?): refused")
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise PermissionDenied(f"catalog {path} is writable by others: chmod go-w {path}")
    if info.st_uid not in (0, os.geteuid()) and info.st_mode & stat.S_IWUSR:
        raise PermissionDenied(f"catalog {path} belongs to uid {info.st_uid}, who could change "
                               "what esbackup runs as you: use your own catalog")
    for journal in (f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        if os.path.islink(journal):
            raise PermissionDenied(f"{journal} is a symlink: refused")


def check_directory(directory: Path) -> None:
    """Refuse a catalog's directory where someone else could swap the file: one
    that group or others may write without the sticky bit, or another user's."""
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise PermissionDenied(f"catalog directory {directory} is writable by others: "
                               f"chmod go-w {directory}")
    if info.st_uid not in (0, os.geteuid()):
        raise PermissionDenied(f"catalog directory {directory} belongs to uid {info.st_uid}, "
                               "who could swap the catalog: use a directory of your own")


def create_file(path: Path) -> None:
    """Create an empty catalog file, the caller's, mode 0600: never through a
    symlink, never over an existing file, never where others could write (its
    missing directories are made mode 0700)."""
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    check_directory(path.parent)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise PermissionDenied(f"{path} already exists (a symlink or file appeared): "
                               "refused") from None

