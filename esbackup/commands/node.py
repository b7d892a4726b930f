import click

from esbackup.commands import complete
from esbackup.commands.common import WholeNumber, app
from esbackup.commands.output import Column, echo_record, echo_records, output_options
from esbackup.domain import auth
from esbackup.domain.models import HYPERVISORS, MAX_BACKUPS_PER_NODE, TRANSFERS
from esbackup.errors import PermissionDenied
from esbackup.services import inventory

COLUMNS = [
    Column("name", "Name"), Column("address", "Address"), Column("port", "Port", full_only=True),
    Column("user", "User", full_only=True), Column("compute", "Compute", "bool"),
    Column("backup", "Backup", "bool"), Column("max_backups", "Slots"),
    Column("transfer", "Transfer"), Column("hypervisor", "Hypervisor"),
    Column("host_key", "Host key", full_only=True), Column("key_path", "Key", full_only=True),
    Column("ssh_config", "SSH config", full_only=True), Column("zfs", "ZFS", full_only=True),
    Column("tools", "Tools", "list", full_only=True),
    Column("definitions", "Definitions"), Column("backups", "Backups"),
    Column("created", "Created", "time", full_only=True),
]
CHECK_COLUMNS = [Column("storage", "Storage"), Column("zpool", "Zpool"),
                 Column("available", "Free", "size"), Column("used", "Used", "size")]


def node_options(func):
    for option in reversed([
        click.option("--user", help="SSH user (default root)."),
        click.option("--key", type=click.Path(dir_okay=False), help="SSH private key file."),
        click.option("--compute/--no-compute", default=None, help="Hosts VM disks."),
        click.option("--backup/--no-backup", default=None, help="Has backup storages."),
        click.option("--max-backups", type=WholeNumber(1, MAX_BACKUPS_PER_NODE),
                     help="Concurrent backups (default 2)."),
        click.option("--transfer", type=click.Choice(TRANSFERS), help="Data path (relay)."),
        click.option("--hypervisor", type=click.Choice(HYPERVISORS), help="Hypervisor (none)."),
        click.option("--ssh-config", metavar="PATH",
                     help="On this backup node: OpenSSH client config (ssh -F) for direct "
                     "pulls from compute nodes ('' to unset)."),
    ]):
        func = option(func)
    return func


def host_key_options(func):
    func = click.option("--host-key", metavar="SHA256:...",
                        help="Expected host key fingerprint; must match.")(func)
    return click.option("--accept-host-key", is_flag=True,
                        help="Pin the key the node offers without asking.")(func)


def node_record(cat, node, private: bool = True) -> dict:
    record = node.to_dict()
    record.pop("id")
    if not private:
        for key in inventory.PRIVATE_NODE_FIELDS:
            record.pop(key)
    caps = node.capabilities
    record["zfs"] = f"{caps['flavour']} {caps.get('version') or ''}".strip() if caps else None
    record["tools"] = [t for t, present in caps.get("tools", {}).items() if present]
    record["definitions"] = len(cat.definitions(node=node.name))
    record["backups"] = len(cat.backups(node=node.name))
    return record


@click.group("node")
def cli() -> None:
    """Compute nodes (host VM disks) and backup nodes (have storages)."""


@cli.command("create")
@click.argument("name")
@click.option("--address", required=True, help="HOST[:PORT], or 'local' for this host.")
@node_options
@host_key_options
@click.option("--no-connect", is_flag=True, help="Register without connecting.")
def create(name, address, no_connect, accept_host_key, host_key, **options) -> None:
    """Register a node: connect, pin its host key, detect its capabilities."""
    a = app()
    auth.require_superadmin(a.identity, "node create")
    options["compute"] = True if options["compute"] is None else options["compute"]
    node = inventory.build_node(name, address, **options)
    if no_connect:
        node.host_key = inventory.validate_fingerprint(host_key) if host_key else None
    else:
        from esbackup.services import nodes

        nodes.pin_host_key(node, accept=accept_host_key, expected=host_key)
        nodes.detect(node, sessions=a.sessions)
    node = a.catalog.add_node(node)
    pinned = f", host key {node.host_key}" if node.host_key else " (not connected)"
    click.echo(f"created node {node.name}{pinned}")


@cli.command("list")
@output_options
def list_(fmt: str, full: bool) -> None:
    """List nodes with their roles and load."""
    a = app()
    a.require_registered()
    used = inventory.used_by(a.catalog, a.identity)
    shown = [n for n in a.catalog.nodes() if used is None or n.name in used[0]]
    echo_records([node_record(a.catalog, n, used is None) for n in shown], COLUMNS, fmt, full)


@cli.command("show")
@click.argument("name", shell_complete=complete.nodes)
@output_options
def show(name: str, fmt: str, full: bool) -> None:
    """Show one node."""
    a = app()
    a.require_registered()
    node = a.catalog.node(name)
    used = inventory.used_by(a.catalog, a.identity)
    if used is not None and name not in used[0]:
        raise PermissionDenied(f"permission denied: {a.identity.name} ({a.identity.role}) "
                               f"may not see node {name}: none of their servers use it")
    echo_record(node_record(a.catalog, node, used is None), COLUMNS, fmt)


@cli.command("update")
@click.argument("name", shell_complete=complete.nodes)
@click.option("--address", help="HOST[:PORT].")
@node_options
def update(name: str, **options) -> None:
    """Change a node's attributes (a new address keeps the pinned key)."""
    a = app()
    auth.require_superadmin(a.identity, "node update")
    node = inventory.apply_node_options(a.catalog.node(name), **options)
    inventory.check_roles_in_use(a.catalog, node)
    a.catalog.update_node(node)
    click.echo(f"updated node {name}")


@cli.command("check")
@click.argument("name", shell_complete=complete.nodes)
@host_key_options
@output_options
def check(name, accept_host_key, host_key, fmt, full) -> None:
    """Connect, verify the host key, report ZFS, tools and free space."""
    from esbackup.services import nodes

    a = app()
    auth.require_superadmin(a.identity, "node check")
    node = a.catalog.node(name)
    if node.host_key is None or host_key:
        nodes.pin_host_key(node, accept=accept_host_key, expected=host_key)
    report = nodes.check(node, a.catalog.storages(name), sessions=a.sessions)
    node.capabilities = report["capabilities"]
    a.catalog.update_node(node)
    if fmt == "json":
        echo_record(report, [], fmt)
        return
    caps = report["capabilities"]
    tools = " ".join(t for t, found in caps.get("tools", {}).items() if found) or "none"
    click.echo(f"node {name}: {node.user}@{node.address}:{node.port}, host key {node.host_key}")
    click.echo(f"zfs: {caps.get('flavour')} {caps.get('version') or ''}".rstrip())
    features = " ".join(k for k, v in caps.items() if v is True and k != "tools") or "none"
    click.echo(f"zfs features: {features}")
    click.echo(f"pools: {', '.join(report['pools']) or 'none'}")
    click.echo(f"tools: {tools}")
    if report["storages"]:
        echo_records(report["storages"], CHECK_COLUMNS, fmt, full)


@cli.command("delete")
@click.argument("name", shell_complete=complete.nodes)
def delete(name: str) -> None:
    """Remove a node that nothing refers to."""
    a = app()
    auth.require_superadmin(a.identity, "node delete")
    a.catalog.delete_node(name)
    click.echo(f"deleted node {name}")
