"""Asking a compute node's hypervisor whether a virtual server runs.

Pure functions: the argv to ask, and the reading of the answer, which comes
from the node and is validated like any other node output.
"""
from __future__ import annotations

import re

from esbackup.errors import NotFound, OperationFailed

STOPPED = {"smartos": "stopped", "libvirt": "shut off"}
_STATE = re.compile(r"[a-z][a-z -]{0,30}")
_NO_DOMAIN = re.compile(r"failed to get domain|[Dd]omain not found")


def state_argv(hypervisor: str, uuid: str) -> list[str] | None:
    """How to ask the hypervisor for the VM's state; None if it cannot be asked."""
    if hypervisor == "smartos":
        return ["vmadm", "list", "-H", "-o", "state", f"uuid={uuid}"]
    if hypervisor == "libvirt":
        return ["virsh", "domstate", uuid]
    return None


def parse_state(hypervisor: str, node: str, what: str, status: int, stdout: str,
                stderr: str) -> str:
    """The state in node `node`'s answer to `state_argv`; `what` names the VM in errors.

    An unknown VM is NotFound (exit 4): `vmadm list` prints nothing for it,
    `virsh domstate` fails with "failed to get domain". Any other failure or
    an answer that is not a plain state word is OperationFailed.
    """
    detail = (stderr.strip().splitlines() or [f"exit status {status}"])[-1]
    if status and hypervisor == "libvirt" and _NO_DOMAIN.search(stderr):
        raise NotFound(f"{what} is not a domain of libvirt on node {node}: {detail[:200]}")
    if status:
        argv = state_argv(hypervisor, "")
        program = argv[0] if argv else hypervisor  # asked only where there is an argv
        raise OperationFailed(f"{node}: {program} failed: {detail[:200]}")
    state = stdout.strip()
    if not state and hypervisor == "smartos":
        raise NotFound(f"{what} is not a VM of vmadm on node {node}")
    if not _STATE.fullmatch(state):
        raise OperationFailed(f"{node}: unexpected state of {what}: {state[:60]!r}")
    return state
