"""ZFS's naming rules: what a dataset, snapshot, bookmark, property or hold tag
may be called. Pure: the domain validates names with them before anything is
stored, and drivers/zfs.py before anything reaches an argv."""
from __future__ import annotations

import re

from esbackup.errors import InvalidInput

MAX_NAME_LEN = 255
MAX_VALUE_LEN = 8191

_COMPONENT = re.compile(r"[A-Za-z0-9_.:-]+")
_NATIVE_PROP = re.compile(r"[a-z][a-z0-9_]*")
_USER_PROP = re.compile(r"[a-z][a-z0-9_.-]*:[a-z0-9_.:-]+")

def bad_name(kind: str, name: str, why: str) -> InvalidInput:
    return InvalidInput(f"invalid ZFS {kind} name {name!r}: {why}")


def check_component(kind: str, name: str, part: str) -> None:
    if not part:
        raise bad_name(kind, name, "empty component")
    if not _COMPONENT.fullmatch(part):
        raise bad_name(kind, name, "only letters, digits and _ . : - are allowed")
    if part.startswith("-"):
        raise bad_name(kind, name, "a component may not start with '-'")
    if part in (".", ".."):
        raise bad_name(kind, name, f"'{part}' is not a valid component")


def check_length(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise bad_name(kind, str(name), "empty")
    if len(name) > MAX_NAME_LEN:
        raise bad_name(kind, name, f"longer than {MAX_NAME_LEN} characters")
    if ".." in name:
        raise bad_name(kind, name, "'..' is not allowed")


def validate_dataset_name(name: str) -> str:
    """Check a filesystem/volume name (`pool/a/b`) and return it unchanged."""
    check_length("dataset", name)
    if "@" in name:
        raise bad_name("dataset", name, "'@' belongs in snapshot names only")
    for part in name.split("/"):
        check_component("dataset", name, part)
    if not name[0].isalpha():
        raise bad_name("dataset", name, "the pool name must start with a letter")
    return name


def validate_snapshot_name(name: str) -> str:
    """Check a full snapshot name (`pool/a@snap`) and return it unchanged."""
    check_length("snapshot", name)
    dataset, sep, snap = name.partition("@")
    if not sep:
        raise bad_name("snapshot", name, "missing '@'")
    if "@" in snap:
        raise bad_name("snapshot", name, "more than one '@'")
    validate_dataset_name(dataset)
    check_component("snapshot", name, snap)
    return name


def validate_bookmark_name(name: str) -> str:
    """Check a full bookmark name (`pool/a#mark`) and return it unchanged."""
    check_length("bookmark", name)
    dataset, sep, mark = name.partition("#")
    if not sep or "@" in name:
        raise bad_name("bookmark", name, "a bookmark is `dataset#name`")
    validate_dataset_name(dataset)
    check_component("bookmark", name, mark)
    return name


def bookmark_of(snap: str) -> str:
    """The bookmark that stands for a snapshot once it is gone: `ds@x` -> `ds#x`."""
    return validate_bookmark_name(validate_snapshot_name(snap).replace("@", "#", 1))


def validate_any(name: str) -> str:
    if isinstance(name, str) and "@" in name:
        return validate_snapshot_name(name)
    return validate_dataset_name(name)


def validate_property_name(prop: str) -> str:
    """Check a native (`readonly`) or user (`esbackup:backup`) property name."""
    if not isinstance(prop, str) or len(prop) > MAX_NAME_LEN or not (
        _NATIVE_PROP.fullmatch(prop) or _USER_PROP.fullmatch(prop)
    ):
        raise InvalidInput(f"invalid ZFS property name {prop!r}")
    return prop


def validate_value(prop: str, value: str) -> str:
    # Tabs and newlines would corrupt the tab-separated `zfs get -H` output.
    if len(value) > MAX_VALUE_LEN or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"invalid value for ZFS property {prop}: {value!r}")
    return value


def validate_tag(tag: str) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_NAME_LEN:
        raise InvalidInput(f"invalid ZFS hold tag {tag!r}")
    check_component("hold tag", tag, tag)
    return tag
