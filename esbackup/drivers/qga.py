"""Guest freeze/thaw around a snapshot: the admin host's side.

The work happens on the compute node, as one step, in the stdlib-only script
``freeze_snapshot.py`` beside this module: it is sent as the ``-c`` argument
of ``python3`` so that a lost admin host never leaves a guest frozen. This
module builds that argv and parses the script's one-line JSON result. The
script's QEMU guest agent client is re-exported for lab and test use.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from esbackup.drivers import freeze_snapshot
from esbackup.drivers.freeze_snapshot import AgentError, QgaClient, valid_snapshot
from esbackup.errors import InvalidInput, OperationFailed

__all__ = ["AgentError", "FreezeResult", "QgaClient", "parse_result", "remote_argv",
           "script_source", "smartos_socket_path", "virsh_remote_argv"]

DEFAULT_TIMEOUT = 120


@dataclass(frozen=True)
class FreezeResult:
    frozen: bool  # the snapshot was taken while the guest's file systems were frozen
    thawed: bool  # false only when a freeze may still hold: warn loudly
    note: str  # why not frozen / not thawed, empty when all went well
    frozen_filesystems: int = 0
    snapshot: str | None = None  # the snapshot taken, None when it was not


@cache
def script_source() -> str:
    return Path(freeze_snapshot.__file__).read_text()


def remote_argv(socket_path: str, snapshot: str, *, timeout: float = DEFAULT_TIMEOUT,
                python: str = "python3") -> list[str]:
    """argv for the compute node: freeze through the guest agent's unix socket.

    SmartOS: see smartos_socket_path; plain qemu: the VM's configured socket."""
    if not socket_path.startswith("/") or any(c in socket_path for c in "\0\n"):
        raise InvalidInput(f"guest agent socket must be an absolute path: {socket_path!r}")
    return _argv(python, "qga", socket_path, snapshot, timeout)


def virsh_remote_argv(domain: str, snapshot: str, *, timeout: float = DEFAULT_TIMEOUT,
                      python: str = "python3") -> list[str]:
    """argv for a libvirt compute node: virsh domfsfreeze/domfsthaw around the snapshot."""
    if not domain or domain.startswith("-") or not domain.isprintable():
        raise InvalidInput(f"invalid libvirt domain: {domain!r}")
    return _argv(python, "virsh", domain, snapshot, timeout)


def _argv(python: str, mode: str, target: str, snapshot: str, timeout: float) -> list[str]:
    if not valid_snapshot(snapshot):
        raise InvalidInput(f"invalid snapshot name: {snapshot!r}")
    if timeout <= 0:
        raise InvalidInput(f"freeze timeout must be positive: {timeout}")
    return [python, "-c", script_source(), "--timeout", f"{timeout:g}", "--", mode, target,
            snapshot]


def smartos_socket_path(vm_uuid: str, zone_root: str = "/zones") -> str:
    """Where SmartOS puts a KVM/bhyve zone's agent socket: <zone dataset>/root/tmp/vm.qga."""
    return f"{zone_root.rstrip('/')}/{vm_uuid}/root/tmp/vm.qga"


def parse_result(stdout: str) -> FreezeResult:
    """The script's JSON line (the last line of stdout) as a FreezeResult."""
    lines = stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
        result = FreezeResult(frozen=data["frozen"], thawed=data["thawed"], note=data["note"],
                              frozen_filesystems=data["frozen_filesystems"],
                              snapshot=data["snapshot"])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise OperationFailed(f"freeze step printed no result: {stdout.strip()[-300:]!r}") from exc
    if not (isinstance(result.frozen, bool) and isinstance(result.thawed, bool)
            and isinstance(result.note, str) and isinstance(result.frozen_filesystems, int)):
        raise OperationFailed(f"freeze step printed a malformed result: {lines[-1]!r}")
    return result
