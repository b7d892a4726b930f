"""Paths inside a backup, and which archive members may be written out.

A backup's content is the VM's own data: hostile input. Paths a user names
are checked here before they reach a node; members of the archive a node
sends are checked here before anything is written (engine/extract.py adds
tarfile's own `data` filter, which also looks at the files on disk).
"""
from __future__ import annotations

import posixpath

from esbackup.errors import InvalidInput

MAX_INNER_PATH = 4096
MAX_PATHS = 100
KINDS = {"f": "file", "d": "directory", "l": "symlink", "b": "block device",
         "c": "char device", "p": "fifo", "s": "socket", "D": "door", "h": "hardlink"}
REFUSED_KINDS = {"b", "c", "p", "s", "D"}  # never made on the admin host


def inner_path(path: str) -> str:
    """A path inside the backup as the node is asked for it: relative to the
    disk's root, without `.`, `..` or empty components ("" is the root)."""
    if not isinstance(path, str) or len(path) > MAX_INNER_PATH or "\0" in path:
        raise InvalidInput(f"invalid path {path!r}")
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"invalid path {path!r}: no '..' inside a backup")
    return "/".join(parts)


def get_paths(paths: tuple[str, ...] | list[str]) -> list[str]:
    """The paths of one `backup get`: each lands in the target folder under its
    last component, so two with the same one (or the root with another) clash."""
    if not paths:
        raise InvalidInput("name at least one path to get")
    if len(paths) > MAX_PATHS:
        raise InvalidInput(f"at most {MAX_PATHS} paths per call")
    checked = [inner_path(p) for p in paths]
    if "" in checked and len(checked) > 1:
        raise InvalidInput("the root (/) is got alone")
    names = [posixpath.basename(p) for p in checked]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise InvalidInput(f"two paths would land as {clash[0]!r}: get them one at a time")
    return checked


def refusal(name: str, kind: str, link: str = "") -> str | None:
    """Why an archive member may not be written out, or None. `kind` is
    tar's/find's letter (f d l h b c p s D); names are relative to the target.
    setuid/setgid bits are not refused here: they are dropped when written."""
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or "\0" in name:
        return "name outside the target"
    if kind in REFUSED_KINDS:
        return f"{KINDS[kind]}: not created"
    if kind in ("l", "h"):
        if not link or link.startswith("/"):
            return "absolute link: not created"
        base = posixpath.dirname(name) if kind == "l" else ""
        resolved = posixpath.normpath(posixpath.join(base, link))
        if resolved == ".." or resolved.startswith("../"):
            return "link out of the target: not created"
    return None
