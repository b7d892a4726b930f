"""Shell completion of catalog names (README "Shell completion"): the
`shell_complete=` hooks of the arguments and options that name VMs,
definitions, backups and nodes.

Candidates come from the catalog the command would open (`--catalog` given
before, or ESBACKUP_CATALOG, or the default), opened read-only and only if it
exists; no node is touched, and the caller gets only what listing would show
it. Any trouble (no catalog, a refused one, an unregistered caller) means no
candidates: completion never fails loudly. This runs on every TAB, so the
catalog modules are imported only when a hook runs, and each hook is one
indexed prefix query with a LIMIT.
"""
from __future__ import annotations

import click

LIMIT = 100  # candidates per TAB: more is a wall of text, not a choice


def scope_of(who) -> dict:
    """The catalog methods' visibility arguments for `who`, as domain/auth.py's
    can_read_vm decides: all for a superadmin, a vmowner's own VMs, else the
    VMs of its DCs."""
    if who.is_superadmin:
        return {}
    if who.role == "vmowner":
        return {"owner": who.name}
    return {"dcs": who.dcs}


def _candidates(ctx: click.Context, incomplete: str, query: str,
                superadmin_only: bool = False) -> list[str]:
    """The names the catalog method `query(prefix, limit, **scope)` gives for
    what the caller may see, or none on any trouble."""
    try:
        from esbackup.catalog.location import default_path
        from esbackup.catalog.readonly import open_existing
        from esbackup.domain.auth import identify, via_sudo

        location = ctx.find_root().params.get("catalog_path") or default_path()
        cat = open_existing(location, system_only=via_sudo())
        if cat is None:
            return []
        try:
            who = identify(cat)
            if superadmin_only and not who.is_superadmin:
                return []
            return getattr(cat, query)(incomplete, LIMIT, **scope_of(who))
        finally:
            cat.close()
    except Exception:  # noqa: BLE001 - a completion offers nothing rather than fail
        return []


def vms(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Hostnames of the VMs the caller may see."""
    return _candidates(ctx, incomplete, "hostnames_from")


def definitions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """VM/NAME of the definitions the caller may see."""
    return _candidates(ctx, incomplete, "definition_refs_from")


def backups(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """VM/NAME of the backups the caller may see."""
    return _candidates(ctx, incomplete, "backup_refs_from")


def nodes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Node names, for superadmins only (which nodes another role sees takes the
    whole inventory to decide: services/inventory.py's used_by)."""
    return _candidates(ctx, incomplete, "node_names_from", superadmin_only=True)
