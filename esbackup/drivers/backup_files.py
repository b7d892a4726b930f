"""Argv that reads files out of a dataset backup on its backup node, and its parsers.

One constant script does it all in one call: it removes the clones that calls
killed before their end left (each is named after its shell's PID; a PID no
longer running marks a leftover), clones the snapshot read-only (no devices,
no setuid, no exec) onto a private folder under /tmp (a volume: clones it,
reads its partition table, and mounts the chosen partition read-only without
journal replay: ext2/3/4 `ro,noload`, XFS `ro,norecovery`), walks to the asked
paths without following any symlink, then lists them (GNU find) or sends them
as a tar stream (GNU tar), and destroys the clone on its way out, also when the
reader went away (a broken pipe ends tar, then the shell's EXIT trap runs).
The snapshot itself is never changed. Paths arrive as positional parameters.
A file backup (`StreamFile`) is first received into that temporary dataset
(named and removed as a clone is), then read the same way.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from esbackup.domain.backup_files import inner_path
from esbackup.domain.zfs_names import validate_dataset_name, validate_snapshot_name
from esbackup.drivers import compress
from esbackup.errors import EsbackupError, InvalidInput, NotFound, RemoteCommandError

CLONE_PREFIX = "esbfiles-"
NOT_FOUND, NOT_A_FOLDER, UNSUPPORTED = 64, 65, 66
MAX_PARTITION = 128
DISK_ROOT = ""  # the root folder of the disk, as an inner path
PARTITIONS = b"partitions\n"  # the first line of a volume's partition list
FIELDS = 6  # type, size, mode, mtime, path, link target

# One file system checked in no-change mode, as one `fsck N FS STATUS LAST-LINE` line
# (`parse_fsck`): N, then a block device or image file, then its type. A journal or
# log left to replay (a backup of a writing guest, not frozen) is STATUS "replay",
# whether the checker then exits 0 (e2fsck 1.47) or 1 (xfs_repair -n 6.1 finds the
# spurious inconsistencies it warns of), never an operational error (e2fsck 8+).
CHECK = r"""check() {
  case $3 in
  ext2|ext3|ext4) out=$(e2fsck -n -f "$2" 2>&1); st=$?
    case $out in *"skipping journal recovery"*) [ $st -lt 8 ] && st=replay;; esac;;
  xfs) if [ -f "$2" ]; then out=$(xfs_repair -n -f "$2" 2>&1); else
      out=$(xfs_repair -n "$2" 2>&1); fi; st=$?
    case $out in *"metadata changes in a log"*) [ $st -le 2 ] && st=replay;; esac;;
  *) return 0;;
  esac
  last=$(printf '%s\n' "$out" | grep . | tail -n 1 | tr -c '[:print:]' ' ')
  echo "fsck $1 $3 $st $last"
}
"""

SCRIPT = CHECK + r"""root=$1 snap=$2 mode=$3 part=$4; shift 4
unpack= x=
case $snap in /*) unpack=$1 x=$2; shift 2;; esac
gone() {
  for i in 1 2 3 4 5 6 7 8 9 10; do
    zfs unmount "$1" 2>/dev/null
    for m in /tmp/esbfiles."${1##*-}".*; do [ -d "$m" ] && umount "$m" 2>/dev/null; done
    zfs destroy -r "$1" 2>/dev/null && break; sleep 0.5
  done
  for m in /tmp/esbfiles."${1##*-}".*; do [ -d "$m" ] && rmdir "$m" 2>/dev/null; done
}
zfs list -H -o name -r -d 1 -t filesystem,volume "$root" 2>/dev/null | while IFS= read -r c; do
  pid=${c#"$root/esbfiles-"}
  case $pid in ''|*[!0-9]*) continue;; esac
  [ -d "/proc/$pid" ] || gone "$c"
done
[ "$mode" = sweep ] && exit 0
if [ -z "$unpack" ]; then
  t=$(zfs get -H -o value type "${snap%@*}") || exit 1
  [ "$mode" = fsck ] && [ "$t" = filesystem ] && exit 0
fi
clone=$root/esbfiles-$$
mnt=$(mktemp -d "/tmp/esbfiles.$$.XXXXXX") || exit 1
trap 'cd /; gone "$clone"' EXIT
trap 'exit 1' HUP INT TERM PIPE
if [ -n "$unpack" ]; then
  [ -f "$snap" ] || { echo "no file backup at $snap" >&2; exit 64; }
  err=$( { if [ "$unpack" = cat ]; then cat "$snap"; else "$unpack" -d -c "$snap"; fi; } |
    zfs receive -u ${x:+-x mountpoint -x canmount} "$clone" 2>&1 >/dev/null) || {
    case $err in *"incremental stream"*)
      echo "file backup $snap is an incremental stream: it needs its base chain" \
        "received first, and only whole streams are read" >&2; exit 66;; esac
    printf '%s\n' "$err" >&2; exit 1; }
  t=$(zfs get -H -o value type "$clone") || exit 1
  zfs set readonly=on "$clone" || exit 1
  if [ "$t" = filesystem ]; then  # canmount first: a new mountpoint must not mount it
    for o in canmount=noauto devices=off setuid=off exec=off sharenfs=off sharesmb=off \
        "mountpoint=$mnt"; do zfs set "$o" "$clone" || exit 1; done
  fi
fi
if [ "$t" = filesystem ]; then
  [ -n "$unpack" ] || zfs clone -o mountpoint="$mnt" \
    -o readonly=on -o devices=off -o setuid=off -o exec=off "$snap" "$clone" || exit 1
  [ -z "$unpack" ] || zfs mount "$clone" || exit 1
  [ "$mode" = top ] && mode=list
else
  [ -n "$unpack" ] || zfs clone -o readonly=on "$snap" "$clone" || exit 1
  udevadm settle 2>/dev/null
  i=0
  while [ ! -b "/dev/zvol/$clone" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  dev=$(readlink -f "/dev/zvol/$clone") && [ -b "$dev" ] || exit 1
  fstype() { blkid -p -o value -s TYPE "$1" 2>/dev/null | grep . || echo -; }
  parts=$(for p in "$dev"p[0-9]*; do
    [ -b "$p" ] && echo "${p##*p} $(blockdev --getsize64 "$p") $(fstype "$p")"; done)
  [ -n "$parts" ] || parts="0 $(blockdev --getsize64 "$dev") $(fstype "$dev")"
  found=$(printf '%s\n' "$parts" | awk '{printf "%s%s %s", s, $1, $3; s=", "}')
  if [ "$mode" = fsck ]; then
    printf '%s\n' "$parts" | while read -r n size fs; do
      [ -n "$part" ] && [ "$n" != "$part" ] && continue
      p=$dev
      [ "$n" = 0 ] || p=${dev}p$n
      check "$n" "$p" "$fs"
    done
    exit 0
  fi
  if [ "$mode" = top ] && [ -z "$part" ]; then
    echo partitions; printf '%s\n' "$parts"; exit 0; fi
  [ "$mode" = top ] && mode=list
  if [ -n "$part" ]; then line=$(printf '%s\n' "$parts" | awk -v n="$part" '$1 == n')
  else line=$(printf '%s\n' "$parts" | awk '$3 ~ /^(ext[234]|xfs)$/' | sort -k2,2n | tail -n 1)
  fi
  [ -n "$line" ] || {
    echo "no ${part:+partition $part, no }ext2/3/4 or xfs file system: found $found" >&2
    exit 66; }
  n=${line%% *} fs=${line##* }
  case $fs in
  ext2|ext3|ext4) opts=ro,noload,nodev,nosuid,noexec;;
  xfs) opts=ro,norecovery,nodev,nosuid,noexec;;
  *) echo "partition $n: not an ext2/3/4 or xfs file system (found $found)" >&2; exit 66;;
  esac
  pdev=$dev
  [ "$n" = 0 ] || pdev=${dev}p$n
  mount -t "$fs" -o "$opts" "$pdev" "$mnt" || exit 1
fi
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


@dataclass(frozen=True)
class StreamFile:
    """A file backup: its `zfs send` stream is received (`-u`) into the temporary
    dataset first, which is then set read-only, no devices/setuid/exec, not
    shared, `canmount=noauto` and mounted on the private folder, whatever the
    stream carried, and read as a clone would be."""
    path: str
    unpack: str  # cat, or the decompressor run as `UNPACK -d -c PATH`
    exclude: bool  # the receiver has `receive -x`: the stream's mountpoint/canmount ignored


def stream_file(path: str, compression: str, caps: Mapping[str, Any]) -> StreamFile:
    """How the backup node reads the file backup at `path` (its own capabilities)."""
    if not path.startswith("/"):
        raise InvalidInput(f"invalid file backup path {path!r}: an absolute path")
    unpack = compress.decompressor(compression, caps.get("tools", {})) or compress.STORE
    if unpack[1:] not in ([], ["-d", "-c"]):
        raise InvalidInput(f"unexpected decompressor {unpack!r}")
    return StreamFile(path, unpack[0], bool(caps.get("recv_exclude")))


Source = str | StreamFile  # a snapshot's name, or a file backup


def _source(source: Source) -> list[str]:
    if isinstance(source, StreamFile):
        return [source.path, source.unpack, "x" if source.exclude else ""]
    return [validate_snapshot_name(source)]


def _argv(zpool: str, source: Source, mode: str, paths: list[str],
          partition: int | None) -> list[str]:
    if partition is not None and not 0 <= partition <= MAX_PARTITION:
        raise InvalidInput(f"invalid partition {partition}: 0 (the whole disk) to "
                           f"{MAX_PARTITION}")
    snap, *stream = _source(source) if mode != "sweep" else [source]
    return ["sh", "-c", SCRIPT, "sh", clone_root(zpool), snap, mode,
            "" if partition is None else str(partition), *stream,
            *(inner_path(p) for p in paths)]


def listing(zpool: str, snapshot: Source, path: str | None,
            partition: int | None = None) -> list[str]:
    """List the folder `path` of the snapshot (or the one entry, if not a folder).
    A volume's partitions (`parse_partitions`) when neither path nor partition is named."""
    mode, paths = ("top", [DISK_ROOT]) if path is None else ("list", [path])
    return _argv(zpool, snapshot, mode, paths, partition)


def tree(zpool: str, snapshot: Source, paths: list[str], partition: int | None = None) -> list[str]:
    """List every entry under each of `paths`, recursively (what a get would copy)."""
    return _argv(zpool, snapshot, "tree", paths, partition)


def archive(zpool: str, snapshot: Source, paths: list[str],
            partition: int | None = None) -> list[str]:
    """A tar stream of `paths`, each as `./<last component>` (the root as `.`)."""
    return _argv(zpool, snapshot, "tar", paths, partition)


def fsck(zpool: str, snapshot: str, partition: int | None = None) -> list[str]:
    """Check each ext2/3/4 and XFS file system of a volume snapshot's clone with
    its own checker in no-change mode (`e2fsck -n -f`, `xfs_repair -n`); nothing
    for a filesystem snapshot. Parse with `parse_fsck`."""
    return _argv(zpool, validate_snapshot_name(snapshot), "fsck", [], partition)


def parse_fsck(output: str) -> list[dict]:
    """One dict per file system checked: partition, filesystem, status (the
    checker's exit status, or "replay": its journal needs replaying), and the
    checker's last line."""
    found = []
    for line in output.splitlines():
        fields = line.split(" ", 4)
        if len(fields) < 4 or fields[0] != "fsck" or not fields[1].isdigit() or not (
                fields[3].isdigit() or fields[3] == "replay"):
            raise InvalidInput(f"malformed fsck line from the node: {line[:80]!r}")
        found.append({"partition": int(fields[1]), "filesystem": fields[2],
                      "status": fields[3], "last": fields[4] if len(fields) == 5 else ""})
    return found


def sweep(zpool: str) -> list[str]:
    """Only remove the clones killed calls left behind on this storage."""
    return _argv(zpool, "-", "sweep", [], None)


def parse_partitions(output: bytes) -> list[dict] | None:
    """A volume's partitions (number, size, file system type; number 0 is a file
    system on the whole disk), or None when `output` is a file listing."""
    if not output.startswith(PARTITIONS):
        return None
    found = []
    for line in output[len(PARTITIONS):].decode(errors="backslashreplace").splitlines():
        fields = line.split()
        number, size, fstype = fields if len(fields) == 3 else ("?", "?", "?")
        if not (number.isdigit() and size.isdigit()):
            raise InvalidInput(f"malformed partition line from the node: {line[:80]!r}")
        found.append({"partition": int(number), "size": int(size),
                      "filesystem": None if fstype == "-" else fstype})
    return found


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
