import click

from esbackup.commands import complete
from esbackup.commands.common import Seconds, WholeNumber, app, confirm_destructive, known
from esbackup.commands.output import Column, echo_record, echo_records, output_options
from esbackup.commands.run import dry_run_option
from esbackup.domain.models import MAX_DISK_ID, STATUSES, parse_ref, validate_text
from esbackup.errors import InvalidInput, OperationFailed
from esbackup.services import backup_access as backups

COLUMNS = [
    Column("vm", "VM"), Column("name", "Name"), Column("disk_id", "Disk ID", wide=True),
    Column("type", "Type"), Column("created", "Created", "time"), Column("status", "Status"),
    Column("duration", "Duration", "duration", wide=True), Column("size", "Size", "size"),
    Column("note", "Note"), Column("fsfreeze", "Freeze", "bool", full_only=True),
    Column("definition", "Definition", full_only=True),
    Column("node", "Backup node", full_only=True), Column("storage", "Storage", full_only=True),
    Column("where", "Where"), Column("locations", "Locations", full_only=True),
    Column("vm_uuid", "VM UUID", full_only=True), Column("location", "Location", full_only=True),
    Column("checksum", "SHA-256", full_only=True), Column("manifest", "Manifest", full_only=True),
    Column("verified", "Verified", "time", full_only=True),
    Column("verify_result", "Verify", full_only=True),
    Column("verify_error", "Verify error", full_only=True),
    Column("protected", "Protected", "bool"),
]


@click.group("backup")
def cli() -> None:
    """Backups: snapshots of virtual server disks kept on backup nodes."""


@cli.command("list")
@click.option("--vm", help="Only this virtual server (hostname or uuid).",
              shell_complete=complete.vms)
@click.option("--definition", help="Only this definition (NAME, or VM/NAME).",
              shell_complete=complete.definitions)
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--node", help="Only this backup node.", shell_complete=complete.nodes)
@click.option("--dc", help="Only this DC.")
@output_options
def list_(vm, definition, status, node, dc, fmt, full) -> None:
    """List backups, oldest first."""
    a = app()
    known(a.catalog, dc=dc, node=node)
    if definition and "/" in definition:  # VM/NAME, as definitions are named elsewhere
        vm, definition = parse_ref(definition, "definition")
    found = backups.visible(a.catalog, a.identity, vm=vm, definition=definition,
                            status=status, node=node, dc=dc)
    copies = backups.copies_of(a.catalog, found)
    echo_records((backups.shaped(b, fmt, copies.get(b.id or 0, [])) for b in found), COLUMNS,
                 fmt, full)


@cli.command("show")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
@output_options
def show(ref, fmt, full) -> None:
    """Show one backup."""
    a = app()
    b = backups.lookup(a.catalog, a.identity, ref, write=False)
    copies = backups.copies_of(a.catalog, [b])
    echo_record(backups.shaped(b, fmt, copies.get(b.id or 0, [])), COLUMNS, fmt)


@cli.command("note")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
@click.argument("text")
def note(ref, text) -> None:
    """Set a backup's note."""
    a = app()
    b = backups.lookup(a.catalog, a.identity, ref, write=True)
    a.catalog.update_backup(b, note=validate_text(text, "note"))
    click.echo(f"noted backup {b.ref}")


@cli.command("now")
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@click.option("--wait", type=Seconds(), default=0,
              help="Seconds to wait for a busy disk or node.")
@dry_run_option
@output_options
def now(ref, wait, dry_run, fmt, full) -> None:
    """Back up now, based on a backup definition (inactive ones too: being
    inactive only keeps a definition off the schedule). Off a terminal it prints
    the new backup's VM/NAME; -f json the run's record."""
    from esbackup.commands.run import run_one

    run_one(ref, wait=wait, force=True, trigger="manual", print_ref=True, fmt=fmt,
            dry_run=dry_run)


@cli.command("delete")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete a protected backup too.")
@click.option("--dry-run", is_flag=True, help="Only show what would be destroyed.")
def delete(ref, yes, force, dry_run) -> None:
    """Remove a backup's data from its node, and its record."""
    from esbackup.actions import delete as delete_job

    a = app()
    b = backups.deletable(a.catalog, a.identity, ref, force)
    if dry_run:
        click.echo(f"deleting backup {b.ref} would destroy:")
        for what in delete_job.would_remove(b):
            click.echo(f"  {what}")
        return
    others = "".join(f", {loc.node}" for loc in backups.copies_of(a.catalog, [b]).get(b.id or 0,
                                                                                    []))
    confirm_destructive(f"backup {b.ref} and its data on node {b.node}{others} will be deleted",
                        yes)
    delete_job.delete_backup(a.catalog, b, sessions=a.sessions)
    click.echo(f"deleted backup {b.ref}")


@cli.command("restore")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
@click.option("--target-vm", help="Restore to this virtual server (default: the backup's).",
              shell_complete=complete.vms)
@click.option("--target-disk-id", type=WholeNumber(1, MAX_DISK_ID),
              help="Disk ID on the target (default: the backup's).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="The operator vouches that the target is stopped (hypervisor none).")
@click.option("--wait", type=Seconds(), default=0, help="Seconds to wait for a busy disk.")
@click.option("--dry-run", is_flag=True,
              help="Only show what would be destroyed and replaced (the disk's node is "
                   "asked to list its snapshots).")
@click.option("--from", "source", metavar="NODE",
              help="Read the backup on this node (its primary's or a copy's); default: the "
                   "primary, unless lost or unreachable, then a copy.")
def restore(ref, target_vm, target_disk_id, yes, force, wait, dry_run, source) -> None:
    """Restore a disk from a backup. ALL data on the target disk is lost."""
    from esbackup.actions import restore as restore_job

    a = app()
    b, vm, disk_id = backups.restore_target(a.catalog, a.identity, ref, target_vm,
                                            target_disk_id)
    if dry_run:
        *destroyed, replacement = restore_job.would_replace(a.catalog, b, vm, disk_id,
                                                            sessions=a.sessions)
        click.echo(f"restoring {b.ref} would destroy:\n  " + "\n  ".join(destroyed)
                   + f"\n{replacement}")
        return
    warning = (f"restoring {b.ref} to disk {disk_id} of {vm.hostname} destroys ALL data on "
               "that disk, including all of its snapshots")
    if yes:
        a.warn(warning)
    confirm_destructive(warning, yes)
    if source is not None:
        a.catalog.node(source)
    restore_job.restore(a.catalog, b, vm, disk_id, sessions=a.sessions, force=force, wait=wait,
                        app=a, source=source)
    click.echo(f"restored {b.ref} to disk {disk_id} of {vm.hostname}")


@cli.command("sync")
@click.option("--node", help="Only backups on this backup node.",
              shell_complete=complete.nodes)
@output_options
def sync(node, fmt, full) -> None:
    """Compare the catalog with the nodes: mark lost backups, find returned ones."""
    from esbackup.actions import sync as sync_job
    from esbackup.domain import auth

    a = app()
    auth.require_superadmin(a.identity, "backup sync")
    known(a.catalog, node=node)
    changes, unreachable = sync_job.sync(a.catalog, node, reporter=a, sessions=a.sessions)
    columns = [Column("backup", "Backup"), Column("was", "Was"), Column("now", "Now"),
               Column("why", "Why")]
    if changes or fmt == "json":
        echo_records(changes, columns, fmt, full)
    elif not unreachable:
        click.echo("catalog and nodes agree")
    if unreachable:
        raise OperationFailed("sync incomplete, unreachable: " + "; ".join(unreachable))


@cli.command("verify")
@click.argument("ref", metavar="[VM/BACKUP]", required=False,
                shell_complete=complete.backups)
@click.option("--node", help="Only backups on this backup node.",
              shell_complete=complete.nodes)
@click.option("--older-than", type=click.FloatRange(min=0), metavar="DAYS",
              help="Only backups not verified in the last DAYS days.")
@click.option("--wait", type=Seconds(), default=0, show_default=True,
              help="Seconds to wait for a busy disk or a free slot on the node.")
@click.option("--fsck", is_flag=True,
              help="Zvol backups: also check their ext2/3/4 and XFS file systems on a "
                   "temporary clone (e2fsck -n -f, xfs_repair -n).")
@output_options
def verify(ref, node, older_than, wait, fsck, fmt, full) -> None:
    """Read stored backups back whole and record the outcome: file backups are
    hashed again against their SHA-256, dataset backups sent whole into nothing
    (ZFS checks every block) and their pool's error counters read. A damaged
    backup is left as it is, noted, and makes `check` CRITICAL."""
    from datetime import datetime, timezone

    from esbackup.actions import verify as verify_job
    from esbackup.domain import auth
    from esbackup.errors import Busy

    a = app()
    known(a.catalog, node=node)
    if ref:
        # a verify holds the disk's lock and a node slot: reading may not block backups
        b = backups.lookup(a.catalog, a.identity, ref, write=True)
        if node and b.node != node:
            raise InvalidInput(f"backup {b.ref} is on node {b.node}, not {node}")
        if b.status != "ok":
            raise InvalidInput(f"backup {b.ref} is {b.status}: only ok backups are verified")
        chosen = [b]
    else:
        auth.require_superadmin(a.identity, "backup verify of all backups")
        chosen = a.catalog.backups(status="ok", node=node)
    todo = verify_job.due(chosen, older_than, datetime.now(timezone.utc))
    outcomes = verify_job.verify(a.catalog, todo, wait=wait, reporter=a, sessions=a.sessions,
                                 fsck=fsck)
    columns = [Column("backup", "Backup"), Column("type", "Type"), Column("node", "Node"),
               Column("result", "Result"), Column("detail", "Detail")]
    echo_records([o.record() for o in outcomes], columns, fmt, full)
    failed = [o for o in outcomes if o.result == verify_job.FAILED]
    if failed:
        raise OperationFailed(f"verify found {len(failed)} damaged backup(s): "
                              + ", ".join(o.backup.ref for o in failed))
    if any(o.result == verify_job.UNREACHABLE for o in outcomes):
        raise OperationFailed("verify incomplete: backup node unreachable")
    skipped = [o for o in outcomes if o.result == verify_job.SKIPPED]
    if skipped:
        raise Busy(f"{len(skipped)} backup(s) not verified: " + "; ".join(
            f"{o.backup.ref}: {o.detail}" for o in skipped))


@cli.command("protect")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
def protect(ref) -> None:
    """Protect a backup: retention never removes it, and deleting it needs --force."""
    set_protection(ref, True)


@cli.command("unprotect")
@click.argument("ref", metavar="VM/BACKUP", shell_complete=complete.backups)
def unprotect(ref) -> None:
    """Let retention remove a backup again."""
    set_protection(ref, False)


def set_protection(ref: str, protected: bool) -> None:
    a = app()
    b = backups.protect(a.catalog, a.identity, ref, protected)
    click.echo(f"{'protected' if protected else 'unprotected'} backup {b.ref}")


@cli.command("prune")
@click.argument("ref", metavar="VM/NAME", shell_complete=complete.definitions)
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", type=Seconds(), default=0, help="Seconds to wait for a busy disk.")
@output_options
def prune(ref, dry_run, yes, wait, fmt, full) -> None:
    """Apply a definition's retention policy now (runs do it after each backup)."""
    from esbackup.actions import delete as delete_job
    from esbackup.commands.retention import PREVIEW_COLUMNS
    from esbackup.domain import auth
    from esbackup.engine import retention
    from esbackup.services import definitions, retention_view

    a = app()
    d = definitions.find(a.catalog, ref)
    auth.require_vm(a.identity, a.catalog.vm(d.vm), write=True)
    if dry_run:
        echo_records(retention_view.of_definition(a.catalog, d), PREVIEW_COLUMNS, fmt, full)
        return
    going = retention.due(a.catalog, d)
    if not going:
        click.echo(f"{d.ref}: nothing to remove ({d.policy.describe()})")
        return
    confirm_destructive(f"{len(going)} backup(s) of {d.ref} will be deleted: "
                        + ", ".join(b.name for b in going), yes)
    removed = delete_job.prune(a.catalog, d, a, wait, sessions=a.sessions)
    for b in removed:
        click.echo(f"removed backup {b.ref}")


def _register_file_commands() -> None:
    from esbackup.commands import backup_files

    cli.add_command(backup_files.ls)
    cli.add_command(backup_files.get)


_register_file_commands()
