import click

from esbackup.commands import complete
from esbackup.commands.common import app, confirm_destructive, known
from esbackup.commands.output import Column, echo_record, echo_records, output_options
from esbackup.domain import auth
from esbackup.domain.models import BRANDS
from esbackup.services import inventory

COLUMNS = [
    Column("hostname", "Hostname"), Column("uuid", "UUID", full_only=True), Column("dc", "DC"),
    Column("node", "Node"), Column("owner", "Owner"), Column("brand", "Brand"),
    Column("disks", "Disks"), Column("qga_socket", "Guest agent", full_only=True),
    Column("created", "Created", "time", full_only=True),
]


def vm_record(vm) -> dict:
    record = vm.to_dict()
    record.pop("id")
    record["disks"] = {str(k): v for k, v in vm.disks.items()}
    return record


def vm_options(func):
    for option in reversed([
        click.option("--dc", help="Virtual data center (default: admin)."),
        click.option("--owner", help="User who owns the virtual server (read-only access)."),
        click.option("--disk", "disks", multiple=True, metavar="ID=DATASET",
                     help="Disk ID and its ZFS dataset or zvol on the node (repeatable)."),
        click.option("--qga-socket", help="Guest agent socket on the node (hypervisor qemu)."),
    ]):
        func = option(func)
    return func


@click.group("vm")
def cli() -> None:
    """Virtual servers and their disks."""


@cli.command("create")
@click.argument("hostname")
@click.option("--node", required=True, help="Compute node that hosts the disks.",
              shell_complete=complete.nodes)
@click.option("--uuid", help="The hypervisor's uuid (default: a new one).")
@click.option("--brand", type=click.Choice(BRANDS), default="kvm", show_default=True)
@vm_options
def create(hostname, node, uuid, brand, dc, owner, disks, qga_socket) -> None:
    """Register a virtual server."""
    a = app()
    vm = inventory.create_vm(a.catalog, a.identity, hostname, node=node, dc=dc, uuid=uuid,
                             owner=owner, brand=brand, disks=disks, qga_socket=qga_socket)
    click.echo(f"created virtual server {vm.hostname} ({vm.uuid})")


@cli.command("list")
@click.option("--dc", help="Only this DC.")
@click.option("--node", help="Only this compute node.", shell_complete=complete.nodes)
@output_options
def list_(dc, node, fmt, full) -> None:
    """List virtual servers."""
    a = app()
    known(a.catalog, dc=dc, node=node)
    vms = [v for v in a.catalog.vms(dc=dc, node=node) if auth.can_read_vm(a.identity, v)]
    echo_records([vm_record(v) for v in vms], COLUMNS, fmt, full)


@cli.command("show")
@click.argument("vm", shell_complete=complete.vms)
@output_options
def show(vm, fmt, full) -> None:
    """Show one virtual server."""
    a = app()
    record = a.catalog.vm(vm)
    auth.require_vm(a.identity, record, write=False)
    echo_record(vm_record(record), COLUMNS, fmt)


@cli.command("update")
@click.argument("vm", shell_complete=complete.vms)
@click.option("--hostname", help="New hostname.")
@click.option("--node", help="Compute node.", shell_complete=complete.nodes)
@click.option("--brand", type=click.Choice(BRANDS))
@vm_options
def update(vm, hostname, node, brand, dc, owner, disks, qga_socket) -> None:
    """Change a virtual server; --disk replaces the whole disk list."""
    a = app()
    record = inventory.update_vm(a.catalog, a.identity, a.catalog.vm(vm), hostname=hostname,
                                 node=node, dc=dc, owner=owner, brand=brand, disks=disks,
                                 qga_socket=qga_socket)
    click.echo(f"updated virtual server {record.hostname}")


@cli.command("delete")
@click.argument("vm", shell_complete=complete.vms)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(vm, yes) -> None:
    """Remove a virtual server and its definitions. Its backups are kept."""
    a = app()
    record = a.catalog.vm(vm)
    auth.require_vm(a.identity, record, write=True)
    count = len(a.catalog.backups(vm=record.uuid))
    defined = len(a.catalog.definitions(vm=record.uuid))
    if count or defined:
        confirm_destructive(f"virtual server {record.hostname} has {count} backups (they are "
                            f"kept) and its {defined} definitions will be deleted", yes)
    a.catalog.delete_vm(record.hostname)
    click.echo(f"deleted virtual server {record.hostname}")
