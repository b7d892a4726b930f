"""esbackup: scheduled, incremental backups of ZFS virtual server disks."""

__version__ = "0.1.0"
