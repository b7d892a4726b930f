"""Pure argv builders and output parsers for `zfs` and `zpool`.

Nothing here runs a command: the transport runs the argv lists and hands the
output back to the parsers. Every dataset, snapshot, property and tag name is
validated before it is put into an argv, so nothing a user typed reaches a
node unchecked.

The commands stay within what zfs-fuse (pool version 23), illumos and OpenZFS
2.x all accept. Numbers come from `zfs get -H -p`, never from `zfs list`,
because zfs-fuse's `zfs list` has no `-p` and prints guids as "4.14E".
Flags that only some nodes have (`send -w`, `receive -s`, `receive -u`) are
left out when the node's capability dict, from `parse_capabilities`, is passed
as `caps` and lacks them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from esbackup.domain.zfs_names import (
    bad_name,
    bookmark_of,
    validate_any,
    validate_bookmark_name,
    validate_dataset_name,
    validate_property_name,
    validate_snapshot_name,
    validate_tag,
    validate_value,
)
from esbackup.errors import InvalidInput, OperationFailed

BACKUP_PROP = "esbackup:backup"


# Native properties whose `zfs get -p` values are integers.
NUMERIC_PROPS = frozenset({
    "available", "copies", "createtxg", "creation", "guid",
    "logicalreferenced", "logicalused", "quota", "recordsize", "referenced",
    "refquota", "refreservation", "reservation", "used", "usedbychildren",
    "usedbydataset", "usedbyrefreservation", "usedbysnapshots", "userrefs",
    "volblocksize", "volsize", "written",
})

SNAPSHOT_PROPS = ("createtxg", "guid", "creation", "used", BACKUP_PROP)
SPACE_PROPS = ("available", "used")

# classify_error reasons
NOT_FOUND = "not_found"
BUSY = "busy"
NO_SPACE = "no_space"
MODIFIED = "modified"
MISMATCH = "mismatch"
EXISTS = "exists"
HAS_CHILDREN = "has_children"
BAD_STREAM = "bad_stream"
PERMISSION = "permission"
UNSUPPORTED = "unsupported"
BROKEN_PIPE = "broken_pipe"

# Most specific first: a receiver's "does not match incremental source" must
# win over the generic "does not exist", and the sender's "Broken pipe" only
# counts when the receiver said nothing better.
_ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern)) for reason, pattern in (
        (MODIFIED, r"has been modified since most recent snapshot"),
        (MISMATCH, r"does not match incremental source|not an earlier snapshot"
                   r"|incremental source .*(does not exist|no longer exists)"),
        (NO_SPACE, r"out of space|no space left|quota exceeded"),
        (EXISTS, r"already exists|destination '[^']*' exists|destination has snapshots"),
        (HAS_CHILDREN, r"has children|has dependent clones"),
        (BUSY, r"is busy|device busy|resource busy"),
        # OpenZFS's `zfs destroy fs@snap` of a snapshot that is gone says the second
        (NOT_FOUND, r"does not exist|no such pool|could not find any snapshots to destroy"),
        (BAD_STREAM, r"failed to read from stream|invalid stream|invalid backup stream"
                     r"|checksum mismatch"),
        (PERMISSION, r"permission denied"),
        (UNSUPPORTED, r"invalid option|unrecognized command|operation not supported"
                      r"|invalid property"),
        (BROKEN_PIPE, r"broken pipe"),
    )
)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot from `parse_snapshots`; numbers are exact (`-p`)."""

    name: str  # dataset@snapname
    guid: int
    createtxg: int
    creation: int  # seconds since the epoch, UTC
    used: int  # bytes
    backup: str | None  # value of esbackup:backup, None when unset

    @property
    def dataset(self) -> str:
        return self.name.split("@", 1)[0]

    @property
    def snapname(self) -> str:
        return self.name.split("@", 1)[1]


@dataclass(frozen=True)
class Pool:
    name: str
    health: str  # ONLINE, DEGRADED, FAULTED, ...


def _as_list(items: str | Iterable[str]) -> list[str]:
    return [items] if isinstance(items, str) else list(items)


def _props_arg(properties: str | Iterable[str]) -> str:
    props = [validate_property_name(p) for p in _as_list(properties)]
    if not props:
        raise InvalidInput("no ZFS property given")
    return ",".join(props)


# --- builders: datasets and snapshots ---------------------------------------

def snapshot(name: str, properties: Mapping[str, str] | None = None) -> list[str]:
    """`zfs snapshot [-o p=v]... ds@snap` (zfs-fuse 0.7 accepts -o too)."""
    return ["zfs", "snapshot", *_opts(properties), validate_snapshot_name(name)]


def destroy(name: str, recursive: bool = False, force: bool = False) -> list[str]:
    """Destroy ONE dataset, snapshot or bookmark (zfs-fuse has no comma or % lists).

    `force` unmounts a busy filesystem first, which zfs-fuse needs.
    """
    if isinstance(name, str) and "#" in name:
        return ["zfs", "destroy", validate_bookmark_name(name)]
    validate_any(name)
    if "/" not in name and "@" not in name:
        raise InvalidInput(f"refusing to destroy the pool root {name!r}")
    flags = (["-r"] if recursive else []) + (["-f"] if force else [])
    return ["zfs", "destroy", *flags, name]


def create(dataset: str, parents: bool = True,
           properties: Mapping[str, str] | None = None) -> list[str]:
    flags = ["-p"] if parents else []
    return ["zfs", "create", *flags, *_opts(properties), validate_dataset_name(dataset)]


def rename(old: str, new: str) -> list[str]:
    """Rename a dataset, or a snapshot within its dataset.

    zfs-fuse refuses to rename a mounted filesystem ("dataset is busy"):
    unmount it first.
    """
    if "@" in old or "@" in new:
        validate_snapshot_name(old)
        validate_snapshot_name(new)
        if old.split("@")[0] != new.split("@")[0]:
            raise InvalidInput(f"a snapshot keeps its dataset: {old!r} -> {new!r}")
    else:
        validate_dataset_name(old)
        validate_dataset_name(new)
    return ["zfs", "rename", old, new]


def set_property(name: str, prop: str, value: str) -> list[str]:
    validate_property_name(prop)
    return ["zfs", "set", f"{prop}={validate_value(prop, value)}", validate_any(name)]


def inherit(name: str, prop: str) -> list[str]:
    """Clear a local property; for a user property this removes it."""
    return ["zfs", "inherit", validate_property_name(prop), validate_any(name)]


def hold(tag: str, snap: str) -> list[str]:
    return ["zfs", "hold", validate_tag(tag), validate_snapshot_name(snap)]


def release(tag: str, snap: str) -> list[str]:
    return ["zfs", "release", validate_tag(tag), validate_snapshot_name(snap)]


def mount(dataset: str) -> list[str]:
    return ["zfs", "mount", validate_dataset_name(dataset)]


def unmount(dataset: str, force: bool = False) -> list[str]:
    return ["zfs", "unmount", *(["-f"] if force else []), validate_dataset_name(dataset)]


def _opts(properties: Mapping[str, str] | None) -> list[str]:
    argv: list[str] = []
    for prop, value in (properties or {}).items():
        validate_property_name(prop)
        argv += ["-o", f"{prop}={validate_value(prop, value)}"]
    return argv


# --- builders: send and receive ---------------------------------------------

def _can(caps: Mapping[str, Any] | None, key: str) -> bool:
    """A flag is used when no caps are given (caller vouches) or caps allow it."""
    return caps is None or bool(caps.get(key))


def _incremental(snap: str, base: str | None) -> list[str]:
    """`-i base snap`; the base is a snapshot or (OpenZFS, illumos) a bookmark."""
    validate_snapshot_name(snap)
    if base is None:
        return [snap]
    if isinstance(base, str) and "#" in base:
        if validate_bookmark_name(base).split("#")[0] != snap.split("@")[0]:
            raise InvalidInput(f"incremental base {base!r} is not a bookmark of "
                               f"{snap.split('@')[0]!r}")
        return ["-i", base, snap]
    validate_snapshot_name(base)
    if base.split("@")[0] != snap.split("@")[0]:
        raise InvalidInput(f"incremental base {base!r} is not a snapshot of {snap.split('@')[0]!r}")
    if base == snap:
        raise InvalidInput(f"incremental base and snapshot are the same: {snap!r}")
    return ["-i", base, snap]


def send(snap: str, base: str | None = None, raw: bool = False, compact: bool = False,
         caps: Mapping[str, Any] | None = None) -> list[str]:
    """`zfs send [-w] [-L -e -c] [-i base] snap`: full, or incremental from `base`.

    `raw` (-w) is dropped when `caps` says the node cannot do it; so is
    `compact` (-L -e -c: large blocks, embedded data and blocks as compressed
    on disk), which only a receiver that has them too may be sent: pass the
    `common_features` of both ends as `caps`.
    """
    flags = ["-w"] if raw and _can(caps, "raw") else []
    if compact and caps is not None and _can(caps, "compact_send"):  # never by default
        flags += ["-L", "-e", "-c"]
    return ["zfs", "send", *flags, *_incremental(snap, base)]


def is_encrypted(output: str, dataset: str) -> bool:
    """From `get(dataset, "encryption")` output: native encryption is on (any cipher)."""
    value = parse_get(output).get(dataset, {}).get("encryption")
    return value not in (None, "off")


def load_key(dataset: str) -> list[str]:
    """`zfs load-key DATASET`: its key from its keylocation (an encryption root)."""
    return ["zfs", "load-key", validate_dataset_name(dataset)]


def stream_refusal(sender: Mapping[str, Any], receiver: Mapping[str, Any]) -> str | None:
    """Why `receiver` cannot take a dataset stream that `sender` makes, else None.

    zfs-fuse (pool version 23: ZPL 4, no zvols) cannot receive what a newer
    ZFS sends; file backups still work both ways. Undetected nodes pass.
    """
    flavour = sender.get("flavour")
    if receiver.get("flavour") == "zfs-fuse" and flavour not in (None, "zfs-fuse"):
        return (f"zfs-fuse (pool version {receiver.get('pool_version')}) cannot receive "
                f"a dataset stream from {flavour}")
    return None


def common_features(*caps: Mapping[str, Any]) -> dict[str, bool]:
    """The feature flags that every node of `caps` has: what a stream between them may use."""
    flags = {key for c in caps for key, value in c.items() if isinstance(value, bool)}
    return {key: all(c.get(key) is True for c in caps) for key in sorted(flags)}


def send_estimate(snap: str, base: str | None = None) -> list[str]:
    """Dry-run size estimate; only for nodes with caps["send_estimate"].

    Parse stdout+stderr with `parse_send_estimate`.
    """
    return ["zfs", "send", "-n", "-v", "-P", *_incremental(snap, base)]


def receive(target: str, force: bool = False, unmounted: bool = False,
            resumable: bool = False, contained: bool = False,
            caps: Mapping[str, Any] | None = None) -> list[str]:
    """`zfs receive [-F] [-u] [-s] [-x mountpoint -x canmount] target`, reading
    the stream from stdin.

    -u and -s are dropped when `caps` says the node lacks them. `contained`
    (a backup node receiving what a compute node sent) ignores a stream's
    mountpoint and canmount, where the receiver can (`recv_exclude`): the
    dataset then mounts only below its parent, never where the sender chose.
    `-o canmount=noauto` would be refused for a volume (OpenZFS 2.1: "does not
    apply to datasets of this type", while `-x` only warns), so `contain`
    follows every such receive.
    """
    flags = ["-F"] if force else []
    if unmounted and _can(caps, "recv_unmounted"):
        flags.append("-u")
    if resumable and _can(caps, "resume"):
        flags.append("-s")
    if contained and _can(caps, "recv_exclude"):
        flags += ["-x", "mountpoint", "-x", "canmount"]
    return ["zfs", "receive", *flags, validate_any(target)]


# A filesystem's canmount=noauto and its parent's mountpoint, whatever a stream
# said (an explicit inherit masks a received value); a volume has neither.
CONTAIN_SCRIPT = ('[ "$(zfs get -H -o value type "$1")" != filesystem ] || '
                  '{ zfs set canmount=noauto "$1" && zfs inherit mountpoint "$1"; }')


def contain(target: str) -> list[str]:
    """After a backup's receive: `zfs mount -a` leaves the dataset alone, and
    a receiver without `receive -x` (zfs-fuse has `-vnFu` only, illumos
    `-o origin=`) loses the mountpoint a stream set."""
    return ["sh", "-c", CONTAIN_SCRIPT, "sh", validate_dataset_name(target)]


_TOKEN = re.compile(r"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+")
MAX_TOKEN_LEN = 8192


def validate_resume_token(token: str) -> str:
    """A `receive_resume_token` is `<version>-<checksum>-<length>-<hex of a
    compressed nvlist>`: nothing else may reach a command line."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LEN or not _TOKEN.fullmatch(token):
        raise InvalidInput(f"invalid ZFS receive resume token {str(token)[:40]!r}")
    return token


def resume_token(dataset: str) -> list[str]:
    """The partial receive state of `dataset`, if any; see `parse_resume_token`."""
    return ["zfs", "get", "-H", "-p", "-o", "value", "receive_resume_token",
            validate_dataset_name(dataset)]


def parse_resume_token(output: str) -> str | None:
    """The token from `resume_token` output; None for "-" (no partial receive)."""
    value = output.strip()
    if value == "-":
        return None
    if "\n" in value:
        raise OperationFailed(f"unexpected receive_resume_token output: {value[:80]!r}")
    try:
        return validate_resume_token(value)
    except InvalidInput as error:
        raise OperationFailed(str(error)) from None


def send_resume(token: str) -> list[str]:
    """`zfs send -t TOKEN`: the rest of an interrupted stream. No other flags:
    the token carries the stream's -L -e -c (and -w) choices itself."""
    return ["zfs", "send", "-t", validate_resume_token(token)]


def send_resume_info(token: str) -> list[str]:
    """What `send -t TOKEN` would send (`-n -v -P`): see `parse_resume_info`.
    It fails when the token's snapshot is gone from the node."""
    return ["zfs", "send", "-n", "-v", "-P", "-t", validate_resume_token(token)]


def receive_abort(dataset: str) -> list[str]:
    """`zfs receive -A DATASET`: discard a partial receive and its token."""
    return ["zfs", "receive", "-A", validate_dataset_name(dataset)]


@dataclass(frozen=True)
class ResumeInfo:
    """A resume token's contents, as `send -nvP -t` prints them."""

    toname: str  # the snapshot the stream sends
    toguid: int
    fromguid: int | None  # the incremental base's guid, None for a full stream
    bytes: int  # bytes the receiver already has
    remaining: int | None  # the estimate of what is left to send


_TOKEN_FIELD = re.compile(r"^\s+(\w+) = (\S+)\s*$", re.M)


def parse_resume_info(output: str) -> ResumeInfo:
    """Parse `send_resume_info` output (stdout and stderr together); untrusted:
    numbers must be numbers and the snapshot name valid, else OperationFailed."""
    if "resume token contents" not in output:
        raise OperationFailed("no resume token contents in zfs send -nvP -t output")
    fields = dict(_TOKEN_FIELD.findall(output.split("resume token contents", 1)[1]))
    try:
        toname = validate_snapshot_name(fields["toname"])
        numbers = {k: int(fields[k], 0) for k in ("toguid", "bytes") if k in fields}
        fromguid = int(fields["fromguid"], 0) if "fromguid" in fields else None
        return ResumeInfo(toname=toname, toguid=numbers["toguid"], fromguid=fromguid,
                          bytes=numbers.get("bytes", 0),
                          remaining=parse_send_estimate(output))
    except (KeyError, ValueError, InvalidInput) as error:
        raise OperationFailed(f"unexpected resume token contents: {error}") from None


# --- bookmarks (OpenZFS, illumos) -------------------------------------------

# Constant script: the names arrive as positional parameters.
_REPLACE_WITH_BOOKMARK = 'zfs bookmark "$1" "$2" && zfs destroy "$1"'


def replace_with_bookmark(snap: str) -> list[str]:
    """Bookmark `ds@x` as `ds#x`, then destroy the snapshot: one step, so that a
    snapshot without its bookmark is never destroyed (exit status: the first
    command that failed)."""
    return ["sh", "-c", _REPLACE_WITH_BOOKMARK, "sh", validate_snapshot_name(snap),
            bookmark_of(snap)]


def list_bookmarks(dataset: str) -> list[str]:
    """Bookmarks of ONE dataset with guid and createtxg; see `parse_bookmarks`."""
    return ["zfs", "list", "-H", "-p", "-o", "name,guid,createtxg", "-t", "bookmark",
            "-r", "-d", "1", validate_dataset_name(dataset)]


@dataclass(frozen=True)
class Bookmark:
    name: str  # dataset#mark
    guid: int  # the guid of the snapshot it was made from
    createtxg: int

    @property
    def mark(self) -> str:
        return self.name.split("#", 1)[1]


def parse_bookmarks(output: str, dataset: str) -> list[Bookmark]:
    """Bookmarks of `dataset` from `list_bookmarks` output, oldest first; any
    line that is not `name<TAB>guid<TAB>txg` of that dataset raises."""
    prefix = validate_dataset_name(dataset) + "#"
    marks = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.isdigit() for f in fields[1:]):
            raise OperationFailed(f"unexpected zfs list output line: {line!r}")
        try:
            name = validate_bookmark_name(fields[0])
        except InvalidInput as error:
            raise OperationFailed(str(error)) from None
        if name.startswith(prefix):
            marks.append(Bookmark(name, int(fields[1]), int(fields[2])))
    return sorted(marks, key=lambda m: m.createtxg)


# --- queries and their parsers ----------------------------------------------

def get(names: str | Iterable[str], properties: str | Iterable[str]) -> list[str]:
    """`zfs get -H -p -o name,property,value PROPS NAMES...`; see `parse_get`."""
    targets = [validate_any(n) for n in _as_list(names)]
    if not targets:
        raise InvalidInput("no ZFS dataset given")
    return ["zfs", "get", "-H", "-p", "-o", "name,property,value", _props_arg(properties),
            *targets]


def _value(prop: str, raw: str) -> int | str | None:
    if raw == "-":
        return None
    if prop in NUMERIC_PROPS and raw.isdigit():
        return int(raw)
    return raw


def parse_get(output: str) -> dict[str, dict[str, int | str | None]]:
    """Parse `zfs get -H -p -o name,property,value` into {name: {prop: value}}.

    Numeric native properties become ints, "-" (unset, not applicable)
    becomes None, everything else stays a string.
    """
    result: dict[str, dict[str, int | str | None]] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        if len(fields) != 3:
            raise OperationFailed(f"unexpected zfs get output line: {line!r}")
        name, prop, raw = fields
        result.setdefault(name, {})[prop] = _value(prop, raw)
    return result


def numbers(props: dict[str, int | str | None]) -> dict[str, int]:
    """Of one name's `parse_get` properties, those with a number for value."""
    return {prop: value for prop, value in props.items() if isinstance(value, int)}


def space(names: str | Iterable[str]) -> list[str]:
    """Available and used bytes of pools or datasets, via `zfs get -p`.

    zfs-fuse's `zpool list` and `zpool get` have no -p; dataset `available`
    is also what a receive can really use.
    """
    return get(names, SPACE_PROPS)


def list_snapshots(dataset: str) -> list[str]:
    """Snapshots of ONE dataset with guid, createtxg, creation, used, esbackup:backup.

    `zfs get -r -d 1` is the portable way to exact numbers; its output also
    holds the dataset itself and its children, which `parse_snapshots` drops.
    """
    return ["zfs", "get", "-H", "-p", "-o", "name,property,value", ",".join(SNAPSHOT_PROPS),
            "-r", "-d", "1", validate_dataset_name(dataset)]


def list_snapshot_names(root: str) -> list[str]:
    """Names of every snapshot under `root`, in one call (sync asks once per
    parent of its targets, not once per target)."""
    return ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r",
            validate_dataset_name(root)]


def parse_snapshot_names(output: str) -> set[str]:
    return {line.strip() for line in output.splitlines() if "@" in line}


def parse_snapshots(output: str, dataset: str) -> list[Snapshot]:
    """Snapshots of `dataset` from `list_snapshots` output, oldest first.

    Ordered by createtxg: zfs-fuse stamps creation in whole seconds, so
    snapshots taken in the same second tie on creation.
    """
    prefix = validate_dataset_name(dataset) + "@"
    snaps = [
        Snapshot(name=name, guid=_int(name, props, "guid"),
                 createtxg=_int(name, props, "createtxg"),
                 creation=_int(name, props, "creation"), used=_int(name, props, "used"),
                 backup=_str_or_none(props.get(BACKUP_PROP)))
        for name, props in parse_get(output).items() if name.startswith(prefix)
    ]
    return sorted(snaps, key=lambda s: s.createtxg)


def _int(name: str, props: Mapping[str, int | str | None], prop: str) -> int:
    value = props.get(prop)
    if not isinstance(value, int):
        raise OperationFailed(f"{name}: no numeric {prop} in zfs get output")
    return value


def _str_or_none(value: int | str | None) -> str | None:
    return None if value is None else str(value)


def get_local(name: str) -> list[str]:
    """Properties set locally on a dataset (not inherited, not received)."""
    return ["zfs", "get", "-H", "-p", "-o", "property,value", "-s", "local", "all",
            validate_dataset_name(name)]


def parse_local(output: str) -> dict[str, str]:
    pairs = (line.split("\t", 1) for line in output.splitlines() if "\t" in line)
    return {prop: value for prop, value in pairs}


def list_children(dataset: str) -> list[str]:
    """Names of `dataset` and its direct children (filesystems and volumes)."""
    return ["zfs", "list", "-H", "-o", "name", "-r", "-d", "1", validate_dataset_name(dataset)]


def exists(name: str) -> list[str]:
    """Exit 0 if the dataset or snapshot exists; interpret with `parse_exists`."""
    return ["zfs", "list", "-H", "-o", "name", validate_any(name)]


def parse_exists(status: int, stderr: str) -> bool:
    """True on exit 0, False for "does not exist"; any other failure raises."""
    if status == 0:
        return True
    if classify_error(stderr) == NOT_FOUND:
        return False
    detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {status}"
    raise OperationFailed(f"zfs list failed: {detail}")


def list_pools() -> list[str]:
    """Pool names and health (zfs-fuse's `zpool list` has no -p: sizes via `space`)."""
    return ["zpool", "list", "-H", "-o", "name,health"]


def parse_pools(output: str) -> list[Pool]:
    pools = []
    for line in output.splitlines():
        if line.strip():
            name, _, health = line.partition("\t")
            pools.append(Pool(name=name, health=health.strip()))
    return pools


def pool_of(dataset: str) -> str:
    return validate_any(dataset).split("/")[0].split("@")[0]


def pool_status(pool: str) -> list[str]:
    """`zpool status -v POOL`: device error counters and damaged files; see `parse_pool_errors`."""
    if "/" in pool or "@" in pool:
        raise bad_name("pool", pool, "a pool name has no '/' or '@'")
    return ["zpool", "status", "-v", validate_dataset_name(pool)]


_DEVICE = re.compile(r"^\s+(\S+)\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def parse_pool_errors(output: str) -> list[str]:
    """What `zpool status -v` reports as wrong: each device with read, write or
    checksum errors, and the errors line unless it says there are none. Empty
    for a healthy pool."""
    found, in_config = [], False
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("config:"):
            in_config = True
        elif line.startswith("errors:"):
            in_config = False
            text = line.partition(":")[2].strip()
            if text != "No known data errors":
                damaged = [x.strip() for x in lines[i + 1:] if x.strip()]
                found.append(" ".join([text, *damaged]))
        elif in_config and (match := _DEVICE.match(line)) and match.group(2) != "READ":
            name, *counts = match.groups()
            if any(c != "0" for c in counts):
                found.append(f"{name}: {counts[0]} read, {counts[1]} write, "
                             f"{counts[2]} checksum errors")
    return found


_ESTIMATE_TOTAL = re.compile(r"^size\t(\d+)\s*$", re.M)
_ESTIMATE_PART = re.compile(r"^(?:full|incremental)\t.*\t(\d+)\s*$", re.M)


def parse_send_estimate(output: str) -> int | None:
    """Bytes from `zfs send -nvP` output (stdout and stderr together).

    Prefers the "size\\t<bytes>" total; falls back to summing the
    "full"/"incremental" lines; None when the output has neither.
    """
    total = _ESTIMATE_TOTAL.search(output)
    if total:
        return int(total.group(1))
    parts = _ESTIMATE_PART.findall(output)
    return sum(int(p) for p in parts) if parts else None


def classify_error(stderr: str) -> str | None:
    """Map zfs/zpool stderr to a reason constant (NOT_FOUND, BUSY, ...) or None.

    Messages wrap across lines ("does not\\nmatch incremental source"), so
    whitespace is collapsed before matching.
    """
    text = " ".join(stderr.split()).lower()
    for reason, pattern in _ERROR_PATTERNS:
        if pattern.search(text):
            return reason
    return None


# --- capability detection ---------------------------------------------------

def capability_probes() -> dict[str, list[str]]:
    """Commands to run once per node; feed their outputs to `parse_capabilities`.

    Run each regardless of exit status and keep stdout and stderr together:
    `zfs version` fails on zfs-fuse and illumos, and that failure is a clue.
    """
    return {
        "uname": ["uname", "-s", "-v"],
        "version": ["zfs", "version"],
        "usage": ["zfs", "-?"],
        "pool_versions": ["zpool", "upgrade", "-v"],
    }


_OPENZFS_VERSION = re.compile(r"^zfs-(\d\S*)", re.M)
_POOL_VERSION = re.compile(r"currently running ZFS pool version (\d+)")
_BOOKMARK_COMMAND = re.compile(r"^\tbookmark <snapshot", re.M)
_FLAG_CLUSTER = re.compile(r"(?:^|[\s\[|])-([A-Za-z]+)")


def usage_flags(usage: str, command: str) -> set[str]:
    """Single-letter flags that `zfs -?` usage text lists for one subcommand."""
    flags: set[str] = set()
    current = None
    for line in usage.splitlines():
        if line.startswith("\t    "):
            text = line  # continuation of the current command's usage
        elif line.startswith("\t") and line.strip():
            current = line.split()[0]
            text = line.strip()[len(current):]
        else:
            current = None
            continue
        if current == command:
            for cluster in _FLAG_CLUSTER.findall(text):
                flags.update(cluster)
    return flags


def _flavour(system: str, version_out: str, pool_version: int | None) -> tuple[str, str]:
    openzfs = _OPENZFS_VERSION.search(version_out)
    if openzfs:
        return "openzfs", openzfs.group(1)
    if system == "SunOS":
        return "illumos", ""
    if system == "Linux" and pool_version is not None:
        return "zfs-fuse", f"pool {pool_version}"
    # Linux ZFS before 0.8 has no `zfs version`; other systems without it
    # (FreeBSD before 13) run the illumos code base.
    return ("openzfs" if system == "Linux" else "illumos"), ""


def parse_capabilities(outputs: Mapping[str, str]) -> dict[str, Any]:
    """Flavour and feature flags of a node from the `capability_probes` outputs.

    Flags come from the usage text where it is honest; zfs-fuse 0.7 hides
    `receive -u` from its usage yet accepts it (checked on a real pool), and
    it has no zvols, no `written` and a `zfs holds` that crashes. `resume`
    needs `send -t`, `receive -s` and `receive -A`; `bookmarks` the
    `zfs bookmark` command (zfs-fuse has neither).
    """
    usage = outputs.get("usage", "")
    if "usage: zfs" not in usage:
        raise OperationFailed("no usable zfs command on the node")
    uname = outputs.get("uname", "").split()
    system = uname[0] if uname else ""
    pool_match = _POOL_VERSION.search(outputs.get("pool_versions", ""))
    pool_version = int(pool_match.group(1)) if pool_match else None
    flavour, version = _flavour(system, outputs.get("version", ""), pool_version)
    if flavour == "illumos" and len(uname) > 1:
        version = uname[1]
    send_flags = usage_flags(usage, "send")
    recv_flags = usage_flags(usage, "receive")
    modern = flavour != "zfs-fuse"
    return {
        "flavour": flavour,
        "version": version,
        "pool_version": pool_version,
        "send_estimate": {"n", "v", "P"} <= send_flags,
        "resume": "s" in recv_flags and "t" in send_flags and "A" in recv_flags,
        "bookmarks": modern and _BOOKMARK_COMMAND.search(usage) is not None,
        "raw": "w" in send_flags,
        "compact_send": {"L", "e", "c"} <= send_flags,
        "list_parsable": "p" in usage_flags(usage, "list"),
        "recv_unmounted": "u" in recv_flags or flavour == "zfs-fuse",
        "recv_exclude": "x" in recv_flags,
        "written": modern,
        "zvols": modern,
        "holds_list": modern,
    }
