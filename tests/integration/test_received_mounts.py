"""A stream never chooses where a backup mounts on the backup node (issue 18, item 19).

The compute node here is a compromised sender, made so on demand: a `zfs`
wrapper ahead of the real one on its PATH (inside its own OpenZFS guest,
removed afterwards) adds `-p` to every `zfs send`, so the stream carries the
disk's mountpoint and canmount=on. A backup node that honoured them would
mount the backup there at its next `zfs mount -a`.
"""
from __future__ import annotations

import pytest

from tests.integration.site import VM_UUID

pytestmark = pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)

PLANTED = "/var/tmp/esbtest-planted"
HOSTILE_ZFS = """#!/bin/sh
# test double: a compromised compute node whose streams carry properties
if [ "$1" = send ]; then shift; exec /usr/sbin/zfs send -p "$@"; fi
exec /usr/sbin/zfs "$@"
"""
WRAPPER = "/usr/local/sbin/zfs"


def mount_state(site, dataset: str) -> dict[str, tuple[str, str]]:
    out = site.zfs("get", "-H", "-o", "property,value,source", "mountpoint,canmount,mounted",
                   dataset)
    return {prop: (value, source) for prop, value, source in
            (line.split("\t") for line in out.splitlines())}


def test_a_stream_carrying_a_mountpoint_never_mounts_there_on_the_backup_node(site):
    c1, b1 = site.nodes.compute, site.nodes.backup
    disk = f"{c1.pool}/vm1-disk2"
    site.sh(c1, 'zfs create -o mountpoint="$2" -o canmount=on "$1" && echo data > "$2/f"',
            disk, PLANTED)
    site.esb.ok("vm", "update", "web01", "--disk", f"1={site.source}", "--disk", f"2={disk}")
    ref = site.define("fs", "--type", "dataset", "--disk-id", "2", "--retention", "5")
    target = f"{b1.pool}/backups/ds/{VM_UUID}-disk2"
    site.sh(c1, 'cat > "$1" && chmod 755 "$1"', WRAPPER, input=HOSTILE_ZFS.encode())
    try:
        for _ in range(2):  # the full backup, then an incremental one
            site.esb.ok("run", ref)
            site.sh(b1, "zfs mount -a")
            assert mount_state(site, target) == {
                "mountpoint": (f"{b1.mountpoint}/backups/ds/{VM_UUID}-disk2",
                               f"inherited from {b1.pool}"),
                "canmount": ("noauto", "local"),
                "mounted": ("no", "-")}
            assert site.sh(b1, 'ls -A "$1" 2>/dev/null; true', PLANTED) == ""
            site.sh(c1, 'echo more >> "$1/f"', PLANTED)
    finally:
        site.sh(c1, 'rm -f "$1"', WRAPPER)
    # a restore keeps the disk's own mount properties
    name = site.backups(definition="fs")[0]["name"]
    site.esb.ok("backup", "restore", f"web01/{name}", "--yes", "--force")
    restored = mount_state(site, disk)
    assert (restored["mountpoint"], restored["mounted"]) == ((PLANTED, "local"), ("yes", "-"))
    assert restored["canmount"][0] == "on"
    assert site.sh(c1, 'cat "$1/f"', PLANTED) == "data\n"
