"""The JSON written beside every backup: enough to rebuild the catalog."""
from __future__ import annotations

import json

from esbackup import __version__
from esbackup.domain.models import VM, Backup, Definition, Node

FORMAT = 1


def build(backup: Backup, definition: Definition | None, vm: VM, compute: Node) -> bytes:
    record = backup.to_dict()
    record.pop("id")
    data = {
        "format": FORMAT,
        "tool": "esbackup",
        "version": __version__,
        "backup": record,
        "checksum": backup.checksum,
        "definition": _strip(definition.to_dict()) if definition else None,
        "vm": {**_strip(vm.to_dict()), "disks": {str(k): v for k, v in vm.disks.items()}},
        "compute_node": {"name": compute.name, "address": compute.address,
                         "port": compute.port, "user": compute.user,
                         "hypervisor": compute.hypervisor},
    }
    return dump(data)


def dump(data: dict) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "id"}


def parse(data: str | bytes) -> dict:
    manifest = json.loads(data)
    if manifest.get("tool") != "esbackup" or "backup" not in manifest:
        raise ValueError("not an esbackup manifest")
    return manifest
