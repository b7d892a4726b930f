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


# Which tests are `both_flavours` is a budget: every backup, restore, fault, sync
# and rebuild test body runs on either flavour (site.py's helpers), but all 38 took
# 26.8 min on OpenZFS (a shared 2-core machine, load 6-8), against the ~10 min the
# test command leaves. The core cases plus direct mode, a fault after the receive,
# sync (twice) and rebuild run on both; add a mark when a guest test gets cheaper.
FLAVOURS = ("zfs-fuse", "openzfs")
both_flavours = pytest.mark.parametrize("flavour", FLAVOURS, indirect=True)
ZVOL_SIZE = "32M"  # TCG guests are slow: small disks


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
    for node in made:
        lab.remove_node(node)


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
