"""Argv of the file operations jobs run on nodes, and parsers of their output.

Constant scripts only: paths and names always arrive as positional
parameters ("$1"...), never inside the script text.
"""
from __future__ import annotations

from collections.abc import Iterable

from esbackup.drivers import zfs
from esbackup.errors import InvalidInput, OperationFailed

# mkdir the folder, write under a temporary name, rename into place if not empty (an
# input that never came leaves no file in place)
WRITE_SCRIPT = 'mkdir -p "$3" && cat > "$1" && [ -s "$1" ] && mv -f "$1" "$2"'
# print the pool's mountpoint, then make the folder below it and drop dead runs'
# partial files there (the caller holds the disk's lock)
FOLDER_SCRIPT = ('m=$(zfs get -H -o value mountpoint "$1") || exit; '
                 'case $m in /*) ;; *) echo "$1 has no mountpoint ($m)" >&2; exit 3;; esac; '
                 'printf "%s\\n" "$m"; mkdir -p "$m$2" && '
                 'find "$m$2" -maxdepth 1 -name ".*.part" -type f -delete')
# Each file as hex bytes after a "#" line (exact bytes, whatever the encoding);
# "#big" for one over the limit ($0); "#later" for one past the call's budget
# of file bytes ($1), which the first file always fits (budget >= limit).
READ_SCRIPT = ('b=$1; shift; for f in "$@"; do s=$(wc -c < "$f"); '
               'if [ "$s" -le "$0" ]; then if [ "$s" -gt "$b" ]; then echo "#later"; '
               'else b=$((b - s)); echo "#"; od -An -v -tx1 "$f"; fi; else echo "#big"; fi; '
               'done')
# od prints 49 characters for 16 bytes: a call's budget of file bytes whose hex
# stays within the cap on one call's output (transport.MAX_OUTPUT)
HEX_PER_BYTE = 4
# Each line of stdin a path to remove; stops at the first that cannot be removed.
REMOVE_LISTED_SCRIPT = 'while IFS= read -r f; do rm -f -- "$f" || exit 1; done'
EXISTING_SCRIPT = 'for f in "$@"; do [ -e "$f" ] && echo "$f"; done; true'
# NUL-separated, so that no file name (spaces, newlines) can split into others.
FIND_SCRIPT = ('for d in "$@"; do [ -d "$d" ] && find "$d" -type f -name "*.json" '
               '-exec sh -c \'for f; do printf "%s\\0" "$f"; done\' sh {} +; done; true')


def write(path: str) -> list[str]:
    """Write stdin to `path` whole: under a temporary name first, then renamed."""
    head, _, tail = path.rpartition("/")
    return ["sh", "-c", WRITE_SCRIPT, "sh", f"{head}/.{tail}.part", path, head or "/"]


def prepare_folder(dataset: str, below: str) -> list[str]:
    """Make `<mountpoint of dataset><below>` and empty it of `.*.part` files;
    prints the mountpoint (parse with `parse_prepared_folder`)."""
    if not below.startswith("/") or "/../" in f"{below}/":
        raise InvalidInput(f"bad folder {below!r}")
    return ["sh", "-c", FOLDER_SCRIPT, "sh", zfs.validate_dataset_name(dataset), below]


def parse_prepared_folder(dataset: str, output: str) -> str:
    """The one absolute path `prepare_folder` printed."""
    lines = output.splitlines()
    if len(lines) != 1 or not lines[0].startswith("/"):
        raise OperationFailed(f"{dataset}: no usable mountpoint in {output[:200]!r}")
    return lines[0]


def read(paths: list[str], limit: int, budget: int) -> list[str]:
    """Print each file as hex after a "#" line, "#big" for one over `limit` bytes,
    "#later" for those past `budget` bytes of files in this call."""
    if budget < limit:
        raise InvalidInput(f"a read's budget ({budget}) must hold one file ({limit})")
    return ["sh", "-c", READ_SCRIPT, str(int(limit)), str(int(budget)), *paths]


class Later:
    """parse_read: a file this call left for the next one."""


LATER = Later()


def parse_read(output: str, count: int) -> list[bytes | None | Later]:
    """The files `read` printed, in order; None for one over the limit or missing,
    LATER for one left to the next call."""
    chunks = output.split("#")[1:]
    if len(chunks) != count:
        raise InvalidInput("files changed while being read; try again")
    try:
        return [None if chunk.startswith("big") else LATER if chunk == "later\n"
                else bytes.fromhex("".join(chunk.split())) for chunk in chunks]
    except ValueError:
        raise InvalidInput("files changed while being read; try again") from None


def remove(*paths: str) -> list[str]:
    return ["rm", "-f", "--", *paths]


def remove_listed() -> list[str]:
    """Remove the files named on stdin, one absolute path a line (`listed`)."""
    return ["sh", "-c", REMOVE_LISTED_SCRIPT]


def listed(paths: Iterable[str]) -> bytes:
    """The stdin of `remove_listed`: paths of esbackup's own layout, which hold
    no newline (checked)."""
    paths = list(paths)
    if any("\n" in p or not p.startswith("/") for p in paths):
        raise InvalidInput("cannot list a relative path or one with a newline for removal")
    return "".join(f"{p}\n" for p in paths).encode()


def place(partial: str, path: str) -> list[str]:
    """Give a whole file its final name (the same file system: atomic)."""
    return ["mv", "-f", "--", partial, path]


def existing(paths: list[str]) -> list[str]:
    """Print those of `paths` that exist, one per line."""
    return ["sh", "-c", EXISTING_SCRIPT, "sh", *paths]


def find_manifests(top: str) -> list[str]:
    """Print every `*.json` file under `top`, NUL-terminated (nothing when it is missing)."""
    return ["sh", "-c", FIND_SCRIPT, "sh", top]


def sha256(path: str | None, tools: dict) -> list[str]:
    """Hash the file at `path`; with None, what arrives on stdin."""
    named = [path] if path is not None else []
    if tools.get("sha256sum", True):
        return ["sha256sum", *named]
    return ["digest", "-a", "sha256", *named]  # illumos


def parse_sha256(output: str) -> str:
    digest = output.split()[0] if output.split() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise OperationFailed(f"not a SHA-256 digest: {output[:100]!r}")
    return digest


def size(path: str) -> list[str]:
    return ["wc", "-c", path]


def parse_size(output: str) -> int:
    words = output.split()
    if not words or not words[0].isdigit():
        raise OperationFailed(f"not a file size: {output[:100]!r}")
    return int(words[0])
