"""Records of the domain (placeholder: Node only; the rest follows)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    name: str
    address: str  # host name or IP; "local" runs commands with subprocess
    port: int = 22
    user: str = "root"
    key_path: str | None = None
    host_key: str | None = None  # pinned fingerprint, "SHA256:..." (OpenSSH style, no padding)
    compute: bool = True
    backup: bool = False
    max_backups: int = 2
    transfer: str = "relay"  # relay | direct
    hypervisor: str = "none"  # smartos | libvirt | qemu | none
    capabilities: dict = field(default_factory=dict)
    id: int | None = None
