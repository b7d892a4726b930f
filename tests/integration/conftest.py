"""Fixtures of the integration tests: a lab of real nodes on this machine.

Nodes are OpenSSH servers on 127.0.0.x with zfs-fuse pools on files (see
lab/nodes.py). The tests need root; the lab installs zfs-fuse and
openssh-server when they are missing. When the lab cannot be built the tests
fail loudly: they never skip.

Tests marked with `both_flavours` run twice: on zfs-fuse nodes, and on
OpenZFS 2.x guest nodes (lab/openzfs_guest.py) where the VM disk is a zvol.
The session keeps its guests running between tests (each test gets its guest's
pool emptied), since a guest boots in a minute or more under TCG.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from esbackup.drivers import transport
from lab.nodes import Lab, LabError, LabNode

_names = itertools.count(1)


@dataclass
class TwoNodes:
    """A compute node holding one VM disk with data, and an empty backup node."""

    compute: LabNode  # "c1"
    backup: LabNode  # "b1"
    dataset: str  # "<c1 pool>/vm1-disk1"
    mountpoint: Path | None  # where the dataset is mounted (zfs-fuse)
    files: dict[str, str]  # relative path -> sha256 hex of the data written there
    device: str | None = None  # the zvol's device on the compute node (OpenZFS)

    @property
    def flavour(self) -> str:
        return self.compute.flavour


# Which tests are `both_flavours` is a budget. Every backup, restore, fault, sync and
# rebuild test body runs on either flavour (site.py's helpers): all 44 took 41 min on
# OpenZFS guests (a loaded 2-core machine), against the ~12 min the test command leaves
# them. So the tests of what differs on OpenZFS run on both: zvol data and restores,
# holds (retention, delete, rename aside), bookmarks and resume tokens (killed and
# failed runs), -L -e -c sends, direct mode between guests, sync and rebuild, verify,
# and OpenZFS's own error texts. Tests of what ZFS does not touch (confirmation, locks
# and slots, schedules, compressors, ssh trust, JSON fields) run on zfs-fuse only.
FLAVOURS = ("zfs-fuse", "openzfs")
both_flavours = pytest.mark.parametrize("flavour", FLAVOURS, indirect=True)
ZVOL_SIZE = "32M"  # TCG guests are slow: small disks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need OpenZFS guests `guests`: scripts/test.sh runs them in a
    process of their own beside the others. The `mixed` ones go last: they also want
    zfs-fuse, and wait until the other process's lab lets go of it (ZFS_FUSE_LOCK)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("flavour") == "openzfs":
            item.add_marker(pytest.mark.guests)
    items.sort(key=lambda item: item.get_closest_marker("mixed") is not None)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The session's lab (empty at first); everything it made is removed at the end."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (zfs-fuse, sshd on 127.0.0.x)", pytrace=False)
    try:
        lab = Lab(tmp_path_factory.mktemp("lab"), reuse_guests=True)
    except LabError as exc:
        pytest.fail(f"cannot build the lab: {exc}", pytrace=False)
    with lab:
        yield lab


@pytest.fixture
def new_node(lab: Lab) -> Iterator[Callable[..., LabNode]]:
    """Factory: new_node(name=None, pool_size="512M", sshd_options=None) -> a fresh LabNode.

    pool_size=None makes an SSH-only node (quicker); names default to n1, n2, ...
    The nodes are removed after the test.
    """
    made: list[LabNode] = []

    def make(name: str | None = None, **options: Any) -> LabNode:
        made.append(lab.add_node(name or f"n{next(_names)}", **options))
        return made[-1]

    yield make
    lab.remove_nodes(made)


@pytest.fixture
def flavour(request: pytest.FixtureRequest) -> str:
    """The ZFS of the nodes `two_nodes` makes: zfs-fuse unless a test is `both_flavours`."""
    return getattr(request, "param", "zfs-fuse")


@pytest.fixture
def two_nodes(lab: Lab, new_node: Callable[..., LabNode], flavour: str) -> TwoNodes:
    """Compute node c1 with disk <pool>/vm1-disk1 holding data; backup node b1; both pooled.

    On zfs-fuse the disk is a filesystem dataset holding files; on OpenZFS a
    zvol whose first 4 MiB are random data.
    """
    openzfs = flavour == "openzfs"
    if openzfs:
        lab.boot_guests(2)  # side by side, the first time
    compute, backup = new_node("c1", openzfs=openzfs), new_node("b1", openzfs=openzfs)
    if openzfs:
        data = os.urandom(4 << 20)
        dataset, device = lab.create_zvol(compute, "vm1-disk1", ZVOL_SIZE, data)
        return TwoNodes(compute, backup, dataset, None,
                        {"zvol": hashlib.sha256(data).hexdigest()}, device)
    data = {"disk.img": os.urandom(4 << 20), "etc/hostname": b"vm1\n"}
    dataset, mountpoint = lab.create_dataset(compute, "vm1-disk1", data)
    files = {path: hashlib.sha256(content).hexdigest() for path, content in data.items()}
    return TwoNodes(compute, backup, dataset, mountpoint, files)


@pytest.fixture(autouse=True)
def _fresh_transports() -> Iterator[None]:
    """Each test starts without cached connections (nodes come and go between tests)."""
    yield
    transport.close_all()
