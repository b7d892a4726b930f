"""The guest freeze step's argv per hypervisor (engine/freeze.py)."""
from __future__ import annotations

import pytest

from esbackup.domain.models import VM, Node
from esbackup.drivers import qga
from esbackup.engine.freeze import step_argv
from esbackup.errors import InvalidInput
from tests.unit.shared import UUID

SNAP = "zones/web01-disk0@esb-daily-20261126_010000"


def vm_record(**extra) -> VM:
    return VM("web01", UUID, "admin", "c1", disks={1: "zones/web01-disk0"}, **extra)


def test_freeze_step_argv():
    def node(hypervisor):
        return Node("c1", "h", hypervisor=hypervisor)

    libvirt = step_argv(node("libvirt"), vm_record(), SNAP)
    assert libvirt == qga.virsh_remote_argv(UUID, SNAP)
    assert libvirt[:2] == ["python3", "-c"] and libvirt[-3:] == ["virsh", UUID, SNAP]

    smartos = step_argv(node("smartos"), vm_record(), SNAP)
    assert smartos[-3:] == ["qga", f"/zones/{UUID}/root/tmp/vm.qga", SNAP]

    socket_vm = vm_record(qga_socket="/run/qemu/web01.qga")
    qemu = step_argv(node("qemu"), socket_vm, SNAP)
    assert qemu == qga.remote_argv("/run/qemu/web01.qga", SNAP)
    assert qemu[-3:] == ["qga", "/run/qemu/web01.qga", SNAP]

    assert step_argv(node("qemu"), vm_record(), SNAP) is None
    assert step_argv(node("none"), vm_record(), SNAP) is None


def test_freeze_step_argv_refuses_bad_snapshot():
    with pytest.raises(InvalidInput):
        step_argv(Node("c1", "h", hypervisor="libvirt"), vm_record(), "zones/a@x;id")
