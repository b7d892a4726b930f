"""The snapshot of a definition with freeze on: guest agent freeze, snapshot, thaw,
as one step on the compute node (see drivers/freeze_snapshot.py)."""
from __future__ import annotations

from esbackup.domain.models import VM, Node
from esbackup.drivers import qga, zfs
from esbackup.drivers.session import NodeSession
from esbackup.errors import RemoteCommandError

COMMAND_NOT_FOUND = 127


def step_argv(compute: Node, vm: VM, snapshot: str) -> list[str] | None:
    """The freeze step for this hypervisor; None when the VM has no agent to ask."""
    if compute.hypervisor == "libvirt":
        return qga.virsh_remote_argv(vm.uuid, snapshot)
    if compute.hypervisor == "smartos":
        return qga.remote_argv(qga.smartos_socket_path(vm.uuid), snapshot)
    if vm.qga_socket:
        return qga.remote_argv(vm.qga_socket, snapshot)
    return None


def snapshot(t: NodeSession, compute: Node, vm: VM, snapshot: str) -> qga.FreezeResult:
    """Take `snapshot`, frozen if the guest agent allows; the snapshot is taken either way."""
    argv = step_argv(compute, vm, snapshot)
    if argv is not None:
        result = t.run(argv, check=False)
        if result.status == 0:
            return qga.parse_result(result.stdout)
        if result.status != COMMAND_NOT_FOUND:
            raise RemoteCommandError(compute.name, argv[:1] + ["freeze step"], result.status,
                                     result.stderr)
        why = f"python3 is missing on node {compute.name}"
    else:
        why = f"no guest agent socket known for {vm.hostname} (vm update --qga-socket)"
    t.run(zfs.snapshot(snapshot))
    return qga.FreezeResult(frozen=False, thawed=True, note=why, snapshot=snapshot)
