"""Asking a hypervisor for a VM's state (drivers/hypervisor.py)."""
from __future__ import annotations

import pytest

from esbackup.drivers.hypervisor import parse_state, state_argv
from esbackup.errors import NotFound, OperationFailed
from tests.unit.shared import UUID


def test_state_argv():
    assert state_argv("smartos", UUID) == ["vmadm", "list", "-H", "-o", "state", f"uuid={UUID}"]
    assert state_argv("libvirt", UUID) == ["virsh", "domstate", UUID]
    assert state_argv("none", UUID) is None
    assert state_argv("qemu", UUID) is None


@pytest.mark.parametrize("hypervisor, answer, state", [
    ("libvirt", (0, "shut off\n", ""), "shut off"),
    ("libvirt", (0, "running\n", ""), "running"),
    ("smartos", (0, "stopped\n", ""), "stopped"),
])
def test_parse_state(hypervisor, answer, state):
    assert parse_state(hypervisor, "c1", "web01", *answer) == state


@pytest.mark.parametrize("hypervisor, answer, error, message", [
    ("libvirt", (1, "", "error: failed to get domain 'x'\n"), NotFound,
     "web01 is not a domain of libvirt on node c1: error: failed to get domain 'x'"),
    ("smartos", (0, "", ""), NotFound, "web01 is not a VM of vmadm on node c1"),
    ("libvirt", (1, "", "error: failed to connect to the hypervisor\n"), OperationFailed,
     "c1: virsh failed: error: failed to connect to the hypervisor"),
    ("smartos", (0, "stopped\nrunning\n", ""), OperationFailed,
     "c1: unexpected state of web01: 'stopped\\nrunning'"),
    ("libvirt", (0, "\x1b[2Jrunning", ""), OperationFailed,
     "c1: unexpected state of web01: '\\x1b[2Jrunning'"),
])
def test_parse_state_refuses(hypervisor, answer, error, message):
    with pytest.raises(error) as raised:
        parse_state(hypervisor, "c1", "web01", *answer)
    assert str(raised.value) == message and type(raised.value) is error
