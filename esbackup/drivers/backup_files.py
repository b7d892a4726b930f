"""Argv that reads files out of a dataset backup on its backup node, and its parsers.

One constant script does it all in one call: it removes the clones that calls
killed before their end left (each is named after its shell's PID; a PID no
longer running marks a leftover), clones the snapshot read-only (no devices,
no setuid, no exec) onto a private folder under /tmp, walks to the asked
paths without following any symlink, then lists them (GNU find) or sends them
as a tar stream (GNU tar), and destroys the clone on its way out, also when the
reader went away (a broken pipe ends tar, then the shell's EXIT trap runs).
The snapshot itself is never changed. Paths arrive as positional parameters.
"""
from __future__ import annotations

from datetime import datetime, timezone

from esbackup.domain.backup_files import inner_path
from esbackup.domain.zfs_names import validate_dataset_name, validate_snapshot_name
from esbackup.errors import EsbackupError, InvalidInput, NotFound, RemoteCommandError

CLONE_PREFIX = "esbfiles-"
NOT_FOUND, NOT_A_FOLDER, UNSUPPORTED = 64, 65, 66
FIELDS = 6  # type, size, mode, mtime, path, link target

SCRIPT = r"""root=$1 snap=$2 mode=$3; shift 3
gone() {
  m=$(zfs get -H -o value mountpoint "$1" 2>/dev/null)
  for i in 1 2 3 4 5 6 7 8 9 10; do
    zfs unmount "$1" 2>/dev/null; zfs destroy "$1" 2>/dev/null && break; sleep 0.5
  done
  case $m in /tmp/esbfiles.*) rmdir "$m" 2>/dev/null;; esac
}
zfs list -H -o name -r -d 1 -t filesystem "$root" 2>/dev/null | while IFS= read -r c; do
  pid=${c#"$root/esbfiles-"}
  case $pid in ''|*[!0-9]*) continue;; esac
  [ -d "/proc/$pid" ] || gone "$c"
done
[ "$mode" = sweep ] && exit 0
t=$(zfs get -H -o value type "${snap%@*}") || exit 1
[ "$t" = filesystem ] || {
  echo "a $t backup: files are read from filesystem backups only, so far" >&2; exit 66; }
clone=$root/esbfiles-$$
mnt=$(mktemp -d /tmp/esbfiles.XXXXXX) || exit 1
trap 'cd /; gone "$clone"; rmdir "$mnt" 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM PIPE
zfs clone -o mountpoint="$mnt" -o readonly=on -o devices=off -o setuid=off -o exec=off \
  "$snap" "$clone" || exit 1
walk() {
  cd "$mnt" || return 1
  rest=$1
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    case $rest in */*) rest=${rest#*/};; *) rest=;; esac
    if [ -L "$c" ] || [ ! -d "$c" ]; then
      echo "not a folder in the backup: $1" >&2; return 65; fi
    cd "./$c" || return 1
  done
}
locate() {
  case $1 in */*) walk "${1%/*}" || return;; *) walk "" || return;; esac
  name=${1##*/}
  [ -e "./$name" ] || [ -L "./$name" ] || {
    echo "no such path in the backup: $1" >&2; return 64; }
}
F='%y\0%s\0%m\0%T@\0%p\0%l\0'
case $mode in
list)
  if [ -z "$1" ]; then walk "" || exit; find . -mindepth 1 -maxdepth 1 -printf "$F"
  else
    locate "$1" || exit
    if [ -d "./$name" ] && [ ! -L "./$name" ]; then
      cd "./$name" && find . -mindepth 1 -maxdepth 1 -printf "$F"
    else find "./$name" -maxdepth 0 -printf "$F"; fi
  fi;;
tree)
  for p; do
    if [ -z "$p" ]; then walk "" || exit; find . -mindepth 1 -printf "$F"
    else locate "$p" || exit; find "./$name" -printf "$F"; fi || exit
  done;;
tar)
  n=$#
  for p; do
    if [ -z "$p" ]; then walk "" || exit; set -- "$@" -C "$PWD" .
    else locate "$p" || exit; set -- "$@" -C "$PWD" "./$name"; fi
  done
  shift "$n"
  cd / && tar -c -f - --numeric-owner --one-file-system "$@";;
esac
"""


def clone_root(zpool: str) -> str:
    """Where the temporary clones of a storage's backups are made."""
    return f"{validate_dataset_name(zpool)}/backups"


def _argv(zpool: str, snapshot: str, mode: str, paths: list[str]) -> list[str]:
    return ["sh", "-c", SCRIPT, "sh", clone_root(zpool), snapshot, mode,
            *(inner_path(p) for p in paths)]


def listing(zpool: str, snapshot: str, path: str) -> list[str]:
    """List the folder `path` of the snapshot (or the one entry, if not a folder)."""
    return _argv(zpool, validate_snapshot_name(snapshot), "list", [path])


def tree(zpool: str, snapshot: str, paths: list[str]) -> list[str]:
    """List every entry under each of `paths`, recursively (what a get would copy)."""
    return _argv(zpool, validate_snapshot_name(snapshot), "tree", paths)


def archive(zpool: str, snapshot: str, paths: list[str]) -> list[str]:
    """A tar stream of `paths`, each as `./<last component>` (the root as `.`)."""
    return _argv(zpool, validate_snapshot_name(snapshot), "tar", paths)


def sweep(zpool: str) -> list[str]:
    """Only remove the clones killed calls left behind on this storage."""
    return _argv(zpool, "-", "sweep", [])


def parse_listing(output: bytes) -> list[dict]:
    """Entries of a `list`/`tree` answer: node output, so untrusted; names are
    decoded with escapes for bytes that are not UTF-8 (display only)."""
    fields = output.split(b"\0")
    if len(fields) % FIELDS != 1 or fields[-1]:
        raise InvalidInput("malformed file listing from the node")
    entries = []
    for i in range(0, len(fields) - 1, FIELDS):
        kind, size, mode, mtime, path, link = (
            f.decode(errors="backslashreplace") for f in fields[i:i + FIELDS])
        try:
            entries.append({
                "path": path[2:] if path.startswith("./") else path.lstrip("."),
                "type": kind, "size": int(size), "mode": f"{int(mode, 8):04o}",
                "mtime": datetime.fromtimestamp(float(mtime), timezone.utc).isoformat(),
                "link": link or None})
        except (ValueError, OverflowError, OSError):
            raise InvalidInput(f"malformed entry in the node's file listing: {path!r}") from None
    return entries


def failure(node: str, argv: list[str], status: int, stderr: str) -> EsbackupError:
    """The error of a call that ended with `status`: not found, not a folder and
    an unsupported backup are the user's to fix (one line), the rest a failure."""
    lines = stderr.strip().splitlines()
    line = lines[-1] if lines else f"exit status {status}"
    if status == NOT_FOUND:
        return NotFound(line)
    if status in (NOT_A_FOLDER, UNSUPPORTED):
        return InvalidInput(line)
    return RemoteCommandError(node, argv, status, stderr)
