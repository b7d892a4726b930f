"""Records of the domain, their enums, and validation of what users type.

Validation lives here so that every command (and the engine) applies the same
rules; it raises `InvalidInput` with one line naming the offending value.
"""
from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import asdict, dataclass, field

from esbackup.domain.prune import RULES, Policy
from esbackup.errors import InvalidInput, NotFound, OperationFailed

ROLES = ("superadmin", "dcadmin", "vmowner")
BRANDS = ("kvm", "bhyve", "os", "lx")
FREEZE_BRANDS = ("kvm", "bhyve")
HYPERVISORS = ("smartos", "libvirt", "qemu", "none")
TRANSFERS = ("relay", "direct")
BACKUP_TYPES = ("dataset", "file")
COMPRESSIONS = ("off", "gzip", "bzip2")
STATUSES = ("ok", "pending", "restore", "lost")
RUN_OUTCOMES = ("running", "ok", "failed", "skipped")
ADMIN_DC = "admin"

# Names that end up in dataset paths, file names and remote argv: a conservative
# set that needs no quoting anywhere and cannot climb directories.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NAME_RULE = "1-63 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"
SIZE_RE = re.compile(r"^ *([0-9]{1,16}) *([KMGT]?)i?B? *$", re.IGNORECASE | re.ASCII)
SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
# Control characters, line separators, and the invisible ones that reorder or
# hide text (bidirectional embeddings, overrides, isolates and marks; zero-width
# spaces, joiners and BOM): a note must read as what it stores ("Trojan Source").
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                        r"\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]")


def escape_controls(text: str) -> str:
    """Control characters as visible escapes (\\n, \\x1b): stored text from an
    older catalog or a node must not forge lines or drive a terminal."""
    return CONTROL_RE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)

# Ranges of every number a user or a manifest gives (SQLite integers end at
# 2**63; Python's own limits must never show up as a traceback).
MAX_SIZE = 2**50  # bytes and bytes/s: 1 PiB
MAX_RETENTION = 100_000
MAX_DISK_ID = 9_999
MAX_BACKUPS_PER_NODE = 1_000
MAX_WAIT_S = 7 * 86400
MAX_TEXT = 1_000  # descriptions and notes
MAX_PATH = 1_024  # key paths, ssh configs, guest agent sockets
MAX_HOST = 253  # a DNS name


def validate_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or ".." in value:
        raise InvalidInput(f"invalid {what} {value!r}: use {NAME_RULE}")
    return value


def validate_hostname(value: str) -> str:
    """A VM's hostname: a name, and never of a uuid's form, so that hostnames
    and uuids stay one namespace and a reference means one VM only."""
    validate_name(value, "hostname")
    try:
        uuidlib.UUID(value)
    except ValueError:
        return value
    raise InvalidInput(f"invalid hostname {value!r}: a hostname may not look like a uuid")


def validate_dataset(value: str) -> str:
    """A ZFS filesystem or volume name, by the rule the driver applies at run
    time (so nothing is accepted at create time that a backup would refuse)."""
    from esbackup.domain import zfs_names

    rule = "pool/child names of letters, digits, '_.:-', the pool starting with a letter"
    if not isinstance(value, str) or not value.isascii():
        raise InvalidInput(f"invalid dataset {value!r}: {rule}")
    try:
        return zfs_names.validate_dataset_name(value)
    except InvalidInput as error:
        raise InvalidInput(f"invalid dataset {value!r}: {str(error).rpartition(': ')[2]}") \
            from None


def validate_text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    """Free text that is stored and shown (descriptions, notes): no control
    characters (a newline or ESC would forge lines or drive a terminal), no
    bidirectional or zero-width ones (they make text read as other text)."""
    if not isinstance(value, str):
        raise InvalidInput(f"invalid {what}: text expected")
    if CONTROL_RE.search(value):
        raise InvalidInput(f"invalid {what} {value!r}: control, bidirectional and "
                           "zero-width characters are not allowed")
    if len(value) > limit:
        raise InvalidInput(f"invalid {what}: longer than {limit} characters")
    return value


def validate_int(value, what: str, low: int, high: int) -> int:
    """An integer in [low, high] from an int or a string of ASCII digits."""
    if isinstance(value, str) and DIGITS_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"invalid {what} {value!r}: a whole number from {low} to {high}")
    return value


def validate_uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except (ValueError, AttributeError):
        raise InvalidInput(f"invalid uuid {value!r}") from None


def validate_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InvalidInput(f"invalid {what} {value!r}: one of {', '.join(choices)}")
    return value


def parse_size(value: str | int, what: str = "size") -> int:
    """Bytes from '1048576', '512K', '10M', '1G' (1024-based); must be >= 0."""
    if isinstance(value, bool):
        raise InvalidInput(f"invalid {what} {value!r}: a number of bytes")
    if isinstance(value, int):
        number = value
    else:
        match = SIZE_RE.match(str(value))
        if not match:
            raise InvalidInput(f"invalid {what} {value!r}: a number of bytes, optionally K, M, G")
        number = int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]
    if not 0 <= number <= MAX_SIZE:
        raise InvalidInput(f"invalid {what} {value!r}: from 0 to {MAX_SIZE} (1P)")
    return number


def parse_address(value: str) -> tuple[str, int]:
    """HOST[:PORT] (IPv6 as [addr]:port); 'local' means the admin host itself."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]{2,45})\](?::([0-9]{1,5}))?"
                         rf"|([A-Za-z0-9_.-]{{1,{MAX_HOST}}})(?::([0-9]{{1,5}}))?", value or "",
                         flags=re.ASCII)
    if not match:
        raise InvalidInput(f"invalid address {value!r}: HOST or HOST:PORT")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4) or 22)
    if host.startswith("-"):
        raise InvalidInput(f"invalid address {value!r}: a host may not start with '-'")
    if not 0 < port < 65536:
        raise InvalidInput(f"invalid port {port} in address {value!r}")
    return host, port


def parse_ref(value: str, what: str) -> tuple[str, str]:
    """'VM/NAME' -> (vm, name) for definitions and backups."""
    vm, sep, name = (value or "").partition("/")
    if not sep or not vm or not name:
        raise InvalidInput(f"invalid {what} reference {value!r}: expected VM/NAME")
    return vm, name


@dataclass
class Record:
    def to_dict(self) -> dict:
        return asdict(self)


def saved_id(record_id: int | None, what: str) -> int:
    """The catalog id of a record read from the catalog; one never saved has none."""
    if record_id is None:
        raise NotFound(f"{what} is not in the catalog (it has no id)")
    return record_id


@dataclass
class DC(Record):
    name: str
    desc: str = ""
    id: int | None = None


@dataclass
class Node(Record):
    name: str
    address: str  # host name or IP; "local" runs commands with subprocess
    port: int = 22
    user: str = "root"
    key_path: str | None = None
    host_key: str | None = None  # pinned fingerprint, "SHA256:..." as OpenSSH prints it
    compute: bool = True
    backup: bool = False
    max_backups: int = 2
    transfer: str = "relay"  # relay | direct
    hypervisor: str = "none"  # smartos | libvirt | qemu | none
    ssh_config: str | None = None  # on this node: `ssh -F` config for its direct pulls
    capabilities: dict = field(default_factory=dict)
    created: str | None = None
    id: int | None = None


@dataclass
class Storage(Record):
    node: str
    name: str
    zpool: str
    id: int | None = None


@dataclass
class VM(Record):
    hostname: str
    uuid: str
    dc: str
    node: str
    owner: str | None = None
    brand: str = "kvm"
    disks: dict[int, str] = field(default_factory=dict)  # disk id -> dataset
    qga_socket: str | None = None  # hypervisor qemu: the guest agent's socket on the node
    created: str | None = None
    id: int | None = None


class KeepCounts:
    """What has keep_last ... keep_yearly counts: a definition, a copy definition."""

    @property
    def policy(self) -> Policy:
        """The retention policy its keep counts make (domain/prune.py)."""
        return Policy.of(**self.keep)

    @property
    def keep(self) -> dict[str, int]:
        """The retention counts by rule name (domain/prune.py's RULES)."""
        return {rule: getattr(self, f"keep_{rule}") for rule in RULES}


@dataclass
class Definition(Record, KeepCounts):
    vm: str
    name: str
    disk_id: int
    type: str
    node: str
    storage: str
    schedule: str
    timezone: str
    keep_last: int = 0  # `--retention N` is `--keep-last N`; all counts 0 keep everything
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    active: bool = True
    desc: str = ""
    compression: str = "off"
    bwlimit: int = 0
    fsfreeze: bool = False
    created: str | None = None
    # since when its schedule counts: creation, or the last activation or change of
    # schedule or time zone; a firing before it is never run, nor missed
    scheduled_since: str | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.vm}/{self.name}"



@dataclass
class Backup(Record):
    name: str
    vm: str
    vm_uuid: str
    disk_id: int
    type: str
    created: str
    status: str
    node: str
    storage: str
    duration: float | None = None
    size: int | None = None
    note: str = ""
    fsfreeze: bool = False
    definition: str | None = None
    location: str | None = None
    checksum: str | None = None
    manifest: str | None = None
    verified: str | None = None  # when its data was last read back whole
    verify_result: str | None = None  # ok | failed
    verify_error: str | None = None
    protected: bool = False  # never removed by retention; `backup delete` needs --force
    copied: bool = False  # its primary was removed: node, storage, location are a copy's
    copy_id: int | None = None  # that copy's definition (its retention keeps the backup)
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.vm}/{self.name}"

    @property
    def stored_at(self) -> str:
        """`location`, for a backup that must have one (its data is read)."""
        if self.location is None:
            raise OperationFailed(f"backup {self.ref} has no location recorded")
        return self.location


@dataclass
class Run(Record):
    definition: str  # VM/NAME
    trigger: str  # manual | cron | tick
    started: str
    outcome: str = "running"
    finished: str | None = None
    error: str | None = None
    backup: str | None = None
    size: int | None = None
    duration: float | None = None
    pid: int | None = None
    host: str | None = None  # the admin host that ran it (ESBACKUP_HOST_ID or hostname)
    firing: str | None = None  # the schedule firing a tick run serves: one run per firing
    sent: int | None = None  # bytes of stream that crossed the wire (relay mode), if known
    resumed: int | None = None  # a resumed transfer: bytes the target already had (saved)
    definition_id: int | None = None  # whose run it is; None once that definition is deleted
    id: int | None = None


@dataclass
class User(Record):
    name: str
    role: str
    dcs: list[str] = field(default_factory=list)
    id: int | None = None


LOCATION_STATUSES = ("ok", "pending", "lost")


@dataclass
class CopyDefinition(Record, KeepCounts):
    """A second copy of a definition's backups on another backup node (issue 20):
    sent on its own schedule or right after each backup, kept by its own
    retention. Named `VM/DEFINITION/NODE`: one copy per definition and node."""

    vm: str
    definition: str
    node: str
    storage: str
    schedule: str = ""  # cron in the definition's time zone; "" with after_backup only
    timezone: str = "UTC"  # the definition's
    after_backup: bool = False
    keep_last: int = 0  # all counts 0 keep every copy
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    bwlimit: int = 0
    active: bool = True
    created: str | None = None
    last_started: str | None = None
    last_ok: str | None = None  # when its newest successful run ended
    last_error: str | None = None  # its newest run's error; None when that run went well
    definition_id: int | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.vm}/{self.definition}/{self.node}"



@dataclass
class Location(Record):
    """Where one backup's data lives: its primary (the backup's own node) or a copy."""

    node: str
    storage: str
    status: str  # ok | pending | lost
    created: str
    size: int | None = None
    location: str | None = None  # the snapshot or file on that node
    manifest: str | None = None
    checksum: str | None = None
    verified: str | None = None
    primary: bool = False
    backup_id: int | None = None
    copy_id: int | None = None
    id: int | None = None

    @classmethod
    def primary_of(cls, b: Backup) -> Location:
        return cls(node=b.node, storage=b.storage, status=b.status, created=b.created,
                   size=b.size, location=b.location, manifest=b.manifest, checksum=b.checksum,
                   verified=b.verified, primary=not b.copied, backup_id=b.id,
                   copy_id=b.copy_id)


def parse_copy_ref(value: str) -> tuple[str, str, str]:
    """'VM/DEFINITION/NODE' -> its three parts."""
    parts = (value or "").split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(f"invalid copy reference {value!r}: expected VM/DEFINITION/NODE")
    return parts[0], parts[1], parts[2]
