"""A stream never chooses where a backup mounts on the backup node (issue 18, item 19).

The compute node here is a compromised sender, made so on demand: a `zfs`
wrapper ahead of the real one on the PATH of its SSH sessions adds `-p` to
every `zfs send`, so the stream carries the disk's mountpoint and
canmount=on. A backup node that honoured them would mount the backup there at
its next `zfs mount -a`. In an OpenZFS guest the wrapper lies in the guest's
/usr/local/sbin; for a zfs-fuse node, in a folder of this test that the
node's own sshd puts first on PATH (SetEnv), so no other user of this
machine's zfs sees it. Either goes away when the test ends.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FLAVOURS
from tests.integration.site import VM_UUID, Site

pytestmark = pytest.mark.parametrize("flavour", FLAVOURS, indirect=True)

PLANTED = "/var/tmp/esbtest-planted"
HOSTILE_ZFS = """#!/bin/sh
# test double: a compromised compute node whose streams carry properties
if [ "$1" = send ]; then shift; exec /usr/sbin/zfs send -p "$@"; fi
exec /usr/sbin/zfs "$@"
"""
GUEST_WRAPPER = "/usr/local/sbin/zfs"
SSHD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@contextlib.contextmanager
def hostile_sender(site: Site, folder: Path) -> Iterator[None]:
    c1 = site.nodes.compute
    if c1.guest:
        site.sh(c1, 'cat > "$1" && chmod 755 "$1"', GUEST_WRAPPER, input=HOSTILE_ZFS.encode())
        try:
            yield
        finally:
            site.sh(c1, 'rm -f "$1"', GUEST_WRAPPER)
        return
    (folder / "zfs").write_text(HOSTILE_ZFS)
    (folder / "zfs").chmod(0o755)
    # sshd takes a keyword's first value: the lab's own SetEnv SHLVL=1 goes here too
    c1.sshd_options["SetEnv"] = f"PATH={folder}:{SSHD_PATH} SHLVL=1"
    site.lab.stop_sshd(c1)
    site.lab.start_sshd(c1)
    try:
        yield
    finally:
        del c1.sshd_options["SetEnv"]
        site.lab.stop_sshd(c1)
        site.lab.start_sshd(c1)


def mount_state(site: Site, dataset: str) -> dict[str, tuple[str, str]]:
    out = site.zfs("get", "-H", "-o", "property,value,source", "mountpoint,canmount,mounted",
                   dataset)
    return {prop: (value, source) for prop, value, source in
            (line.split("\t") for line in out.splitlines())}


def test_a_stream_carrying_a_mountpoint_never_mounts_there_on_the_backup_node(site, tmp_path):
    c1, b1 = site.nodes.compute, site.nodes.backup
    disk = f"{c1.pool}/vm1-disk2"
    planted = PLANTED if c1.guest else str(tmp_path / "planted")
    site.sh(c1, 'zfs create -o mountpoint="$2" -o canmount=on "$1" && echo data > "$2/f"',
            disk, planted)
    site.esb.ok("vm", "update", "web01", "--disk", f"1={site.source}", "--disk", f"2={disk}")
    ref = site.define("fs", "--type", "dataset", "--disk-id", "2", "--retention", "5")
    target = f"{b1.pool}/backups/ds/{VM_UUID}-disk2"
    with hostile_sender(site, tmp_path):
        for _ in range(2):  # the full backup, then an incremental one
            site.esb.ok("run", ref)
            if b1.guest:  # never on zfs-fuse: it would mount every pool on this machine
                site.sh(b1, "zfs mount -a")
                assert site.sh(b1, 'ls -A "$1" 2>/dev/null; true', planted) == ""
            assert mount_state(site, target) == {
                "mountpoint": (f"{b1.mountpoint}/backups/ds/{VM_UUID}-disk2",
                               f"inherited from {b1.pool}"),
                "canmount": ("noauto", "local"),
                "mounted": ("no", "-")}
            site.sh(c1, 'echo more >> "$1/f"', planted)
    # a restore keeps the disk's own mount properties
    name = site.backups(definition="fs")[0]["name"]
    site.esb.ok("backup", "restore", f"web01/{name}", "--yes", "--force")
    restored = mount_state(site, disk)
    assert (restored["mountpoint"], restored["mounted"]) == ((planted, "local"), ("yes", "-"))
    assert restored["canmount"][0] == "on"
    assert site.sh(c1, 'cat "$1/f"', planted) == "data\n"
