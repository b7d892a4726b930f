"""Who is calling, and what that role may do.

Identity is the OS user running the command, or SUDO_USER when root runs it
through sudo. Root and the owner of the catalog file are superadmin; anyone
else must be registered with `esbackup user create` (see `identify` for sudo).

Roles (from the product spec): superadmin read-write everywhere; dcadmin
read-write on the virtual servers, definitions and backups of its DCs and
read-only on nodes and storages; vmowner read-only on its own virtual servers.
"""
from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field

from esbackup.domain.models import VM
from esbackup.errors import NotFound, PermissionDenied


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    dcs: tuple[str, ...] = field(default=())

    @property
    def is_superadmin(self) -> bool:
        return self.role == "superadmin"


def os_user() -> tuple[str, int]:
    uid = os.geteuid()
    sudo_user = os.environ.get("SUDO_USER")
    if uid == 0 and sudo_user:
        try:
            return sudo_user, pwd.getpwnam(sudo_user).pw_uid
        except KeyError:
            return sudo_user, -1
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        return str(uid), uid


def via_sudo() -> bool:
    return os.geteuid() == 0 and bool(os.environ.get("SUDO_USER"))


def sudo_caller() -> tuple[int, int, list[int]] | None:
    """Under sudo, the caller's uid, gid and groups: files esbackup writes on
    their behalf are written as them. None otherwise."""
    if not via_sudo():
        return None
    try:
        user = pwd.getpwnam(os.environ["SUDO_USER"])
    except KeyError:
        raise PermissionDenied(f"sudo user {os.environ['SUDO_USER']} is not an OS user") from None
    return user.pw_uid, user.pw_gid, os.getgrouplist(user.pw_name, user.pw_gid)


def identify(catalog) -> Identity:
    """Root and the catalog's owner are superadmin. Under sudo the catalog is
    root's system catalog (checked when it opens) and the sudo user is only
    what root registered: a catalog without users makes nobody superadmin
    through sudo, so root itself does the first registration."""
    name, uid = os_user()
    sudo = via_sudo()
    owner = catalog.owner_uid()
    if sudo and owner != 0:
        raise PermissionDenied(f"through sudo, esbackup opens only a catalog owned by root; "
                               f"{catalog.path} is not")
    # a PostgreSQL catalog has no owning OS user: root and registered superadmins
    # hold it, and whoever may log in to the database until users are registered
    if uid == 0 or (not sudo and (uid == owner or (owner is None and not catalog.users()))):
        return Identity(name, "superadmin")
    try:
        user = catalog.user(name)
    except NotFound:
        hint = " (root registers the first users)" if sudo else ""
        raise PermissionDenied(f"user {name} is not registered with esbackup{hint}") from None
    return Identity(user.name, user.role, tuple(user.dcs))


def require_superadmin(who: Identity, action: str) -> None:
    if not who.is_superadmin:
        raise PermissionDenied(f"permission denied: {action} needs the superadmin role")


def can_read_vm(who: Identity, vm: VM) -> bool:
    if who.role == "vmowner":
        return vm.owner == who.name
    return who.is_superadmin or vm.dc in who.dcs


def require_vm(who: Identity, vm: VM, write: bool) -> None:
    allowed = can_write_vm(who, vm) if write else can_read_vm(who, vm)
    if not allowed:
        mode = "change" if write else "see"
        raise PermissionDenied(f"permission denied: {who.name} ({who.role}) may not {mode} "
                               f"virtual server {vm.hostname}")


def can_write_vm(who: Identity, vm: VM) -> bool:
    return who.is_superadmin or (who.role == "dcadmin" and vm.dc in who.dcs)


def require_dc(who: Identity, dc: str) -> None:
    """Creating something in a DC: superadmin, or a dcadmin of that DC."""
    if not (who.is_superadmin or (who.role == "dcadmin" and dc in who.dcs)):
        raise PermissionDenied(f"permission denied: {who.name} ({who.role}) may not change dc {dc}")
