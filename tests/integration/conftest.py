"""Fixtures of the integration tests: a lab of real nodes on this machine.

Nodes are OpenSSH servers on 127.0.0.x with zfs-fuse pools on files (see
lab/nodes.py). The tests need root; the lab installs zfs-fuse and
openssh-server when they are missing. When the lab cannot be built the tests
fail loudly: they never skip.
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
    mountpoint: Path  # where the dataset is mounted
    files: dict[str, str]  # relative path -> sha256 hex of the data written there


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The session's lab (empty at first); everything it made is removed at the end."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (zfs-fuse, sshd on 127.0.0.x)", pytrace=False)
    try:
        lab = Lab(tmp_path_factory.mktemp("lab"))
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
def two_nodes(lab: Lab, new_node: Callable[..., LabNode]) -> TwoNodes:
    """Compute node c1 with dataset <pool>/vm1-disk1 holding data; backup node b1; both pooled."""
    compute, backup = new_node("c1"), new_node("b1")
    data = {"disk.img": os.urandom(4 << 20), "etc/hostname": b"vm1\n"}
    dataset, mountpoint = lab.create_dataset(compute, "vm1-disk1", data)
    files = {path: hashlib.sha256(content).hexdigest() for path, content in data.items()}
    return TwoNodes(compute, backup, dataset, mountpoint, files)


@pytest.fixture(autouse=True)
def _fresh_transports() -> Iterator[None]:
    """Each test starts without cached connections (nodes come and go between tests)."""
    yield
    transport.close_all()
