"""`backup ls` and `backup get`: files back from a backup, without restoring the disk."""
import click

from esbackup.commands.common import WholeNumber, app
from esbackup.commands.output import Column, echo_records, output_options
from esbackup.domain.models import escape_controls
from esbackup.services import backup_access as backups

TYPES = {"f": "file", "d": "dir", "l": "link", "b": "block", "c": "char", "p": "fifo",
         "s": "socket", "D": "door"}
LS_COLUMNS = [Column("name", "Name"), Column("type", "Type"),
              Column("size", "Size", "size", full_only=True),
              Column("mode", "Mode", full_only=True),
              Column("mtime", "Modified", "time", full_only=True),
              Column("link", "Link target", full_only=True)]
PARTITION_COLUMNS = [Column("partition", "Partition"), Column("size", "Size", "size"),
                     Column("filesystem", "File system")]
PLAN_COLUMNS = [Column("path", "Path"), Column("type", "Type"), Column("size", "Size", "size"),
                Column("skipped", "Skipped")]


def _typed(entry: dict) -> dict:
    return {**entry, "type": TYPES.get(entry["type"], entry["type"])}


def _tell_cost(a, b) -> None:
    """A file backup is received on its node before it is read: say so first."""
    from esbackup.actions import get_files

    line = get_files.cost(a.catalog, b)
    if line and a.verbosity >= 0:
        click.echo(f"note: {line}", err=True)


def partition_option(func):
    return click.option(
        "--partition", type=WholeNumber(0, 128), metavar="N",
        help="Zvol backups: the partition to read (0: a file system on the whole disk; "
             "default: the only or largest ext2/3/4 or XFS one).")(func)


@click.command("ls")
@click.argument("ref", metavar="VM/BACKUP")
@click.argument("path", required=False)
@click.option("-l", "long", is_flag=True, help="Size, mode, time and link target too.")
@partition_option
@output_options
def ls(ref, path, long, partition, fmt, full) -> None:
    """List a folder inside a backup (PATH: from the disk's root). A zvol backup
    without PATH or --partition: its partitions and their file systems. A file
    backup is received into a temporary dataset on its node first (said, with its size)."""
    from esbackup.actions import get_files

    a = app()
    b = backups.lookup(a.catalog, a.identity, ref, write=False)
    _tell_cost(a, b)
    found, partitions = get_files.entries(a.catalog, b, path, sessions=a.sessions,
                                          partition=partition)
    if partitions is not None:
        echo_records(partitions, PARTITION_COLUMNS, fmt, full)
        return
    echo_records([_typed(e) for e in found], LS_COLUMNS, fmt, full or long)


@click.command("get")
@click.argument("ref", metavar="VM/BACKUP")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="Folder of this host to copy into (each PATH lands under its last name).")
@click.option("--dry-run", is_flag=True, help="Only list what would be copied.")
@partition_option
@output_options
def get(ref, paths, to, dry_run, partition, fmt, full) -> None:
    """Copy files or folders out of a backup (a file backup: received on its
    node first, as for ls). The content is the VM's:
    device nodes, links out of the target and absolute links are skipped (and
    listed), setuid/setgid bits dropped; nothing already in --to is replaced."""
    from esbackup.actions import get_files
    from esbackup.domain import auth

    a = app()
    b = backups.lookup(a.catalog, a.identity, ref, write=False)
    _tell_cost(a, b)
    if dry_run:
        found = get_files.planned(a.catalog, b, list(paths), sessions=a.sessions,
                                  partition=partition)
        echo_records([_typed(e) for e in found], PLAN_COLUMNS, fmt, full)
        return
    skipped = get_files.get(a.catalog, b, list(paths), to, sessions=a.sessions,
                            as_user=auth.sudo_caller(), partition=partition, reporter=a)
    for line in skipped:
        a.warn(f"skipped {escape_controls(line)}")
    click.echo(f"copied {len(paths)} path(s) of {b.ref} into {escape_controls(to)}"
               + (f", {len(skipped)} skipped" if skipped else ""))
