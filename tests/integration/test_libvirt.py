"""Hypervisor `libvirt` against a REAL libvirtd (lab/libvirt_domain.py).

Compute node c1 (sshd on 127.0.0.x of this host) is registered with
`--hypervisor libvirt`; its VM's disk image lives in the VM's dataset and is
the disk of a TCG domain whose guest runs the real qemu-ga. esbackup reaches
libvirt as on a real node: `virsh domstate` and the freeze step's
`virsh domfsfreeze`/`domfsthaw`, run over c1's SSH. One libvirtd serves the
session; each test boots its own domain (a few seconds in TCG).
"""
from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path

import pytest

from lab.libvirt_domain import Libvirt, LibvirtDomain, unique_name
from tests.integration.site import destroy, snapshots, zfs
from tests.integration.test_backup_faults import wait_for
from tests.integration.test_freeze import needs_recovery

DISK = "lv01-disk1"  # the dataset of lv01's disk 1 on c1's pool
WRITER = ("i=0; while true; do echo $i >> /data/log; "
          "dd if=/dev/urandom of=/data/f$((i % 4)) bs=64k count=4 2>/dev/null; i=$((i+1)); done")


@pytest.fixture(scope="session")
def libvirt():
    with Libvirt() as libvirt:
        yield libvirt


def register_vm(site, lab) -> tuple[str, Path, str]:
    """VM lv01 on c1, now of hypervisor libvirt, with a fresh uuid (libvirt needs it
    unique among all lab runs) and an empty dataset: (dataset, mountpoint, uuid)."""
    site.esb.ok("node", "update", "c1", "--hypervisor", "libvirt")
    dataset, mountpoint = lab.create_dataset(site.nodes.compute, DISK, {})
    vm_uuid = str(uuid.uuid4())
    site.esb.ok("vm", "create", "lv01", "--node", "c1", "--uuid", vm_uuid,
                "--disk", f"1={dataset}")
    return dataset, mountpoint, vm_uuid


@pytest.fixture
def vm(site, lab, libvirt):
    """lv01 as a defined, shut off domain whose disk image, disk.raw, is in its dataset."""
    _, mountpoint, vm_uuid = register_vm(site, lab)
    domain = libvirt.domain(unique_name(), vm_uuid, mountpoint / "disk.raw")
    yield domain
    libvirt.remove(domain)


def define(site, name: str, *args: str) -> str:
    site.esb.ok("definition", "create", f"lv01/{name}", "--disk-id", "1", "--node", "b1",
                "--storage", "tank", "--schedule", "0 1 * * *", "--timezone", "UTC",
                "--type", "dataset", "--retention", "3", *args)
    return f"lv01/{name}"


def backed_up_disk(snapshot: str, clone: str) -> Path:
    """disk.raw as the backup snapshot holds it, through a clone (zfs-fuse has no .zfs)."""
    zfs("clone", snapshot, clone)
    return Path(zfs("get", "-H", "-o", "value", "mountpoint", clone).strip()) / "disk.raw"


def guest_file(domain: LibvirtDomain, path: str) -> str:
    result = domain.run_in_guest(f"cat {path} 2>/dev/null || echo missing")
    return result.stdout.strip()


def test_restore_needs_the_domain_shut_off(site, vm):
    vm.start()
    assert vm.state() == "running"
    assert vm.run_in_guest("echo one > /data/kept && sync").exitcode == 0
    ref = define(site, "daily", "--freeze")
    site.esb.ok("run", ref)
    (backup,) = site.backups(vm="lv01")
    assert vm.run_in_guest("echo two > /data/later && sync").exitcode == 0
    dataset = f"{site.nodes.compute.pool}/{DISK}"
    before = snapshots(dataset)

    err = site.esb.fails(2, "backup", "restore", f"lv01/{backup['name']}", "--yes")
    assert err.strip().splitlines()[-1] == "Error: virtual server lv01 is running: stop it first"
    assert snapshots(dataset) == before  # nothing touched
    assert "esbrestore" not in zfs("list", "-H", "-o", "name", "-r", site.nodes.compute.pool)
    assert [b["status"] for b in site.backups(vm="lv01")] == ["ok"]

    vm.destroy()
    assert vm.state() == "shut off"
    site.esb.ok("backup", "restore", f"lv01/{backup['name']}", "--yes")
    vm.start()
    assert guest_file(vm, "/data/kept") == "one"
    assert guest_file(vm, "/data/later") == "missing"


def test_frozen_backup_of_a_writing_guest_is_clean(site, vm):
    vm.start()
    vm.exec_start(WRITER)  # keeps writing through the whole backup
    ref = define(site, "frozen", "--freeze")
    result = site.esb.ok("run", ref)
    assert "warning" not in result.stderr
    (backup,) = site.backups(vm="lv01")
    assert backup["fsfreeze"] is True and backup["note"] == ""
    assert vm.call("guest-fsfreeze-status") == "thawed"
    lines = int(guest_file(vm, "/data/log | wc -l"))
    wait_for(lambda: int(guest_file(vm, "/data/log | wc -l")) > lines, timeout=20,
             what="the guest writing after the thaw")

    assert needs_recovery(vm.disk)  # the live file system is mounted: the check can tell
    clone = f"{site.nodes.backup.pool}/esbtest-lv-clone"
    try:
        disk = backed_up_disk(backup["location"], clone)
        assert not needs_recovery(disk), "backup taken while not frozen"
        fsck = subprocess.run(["e2fsck", "-f", "-n", str(disk)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        destroy(clone)


def test_freeze_of_a_shut_off_domain_still_backs_up(site, vm):
    """A fault real libvirt gives on demand: domfsfreeze on a domain that is not running."""
    assert vm.state() == "shut off"
    ref = define(site, "off", "--freeze")
    result = site.esb.ok("run", ref)
    assert "warning" in result.stderr and "without freeze" in result.stderr
    (backup,) = site.backups(vm="lv01")
    assert backup["status"] == "ok" and backup["fsfreeze"] is False
    assert backup["note"].startswith("not frozen") and "not running" in backup["note"]
    assert site.snapshot_digest(backup["location"]) == {"disk.raw": _digest(vm.disk)}


def test_restore_of_an_unknown_domain_is_refused(site, lab, libvirt):
    """libvirt knows no domain of the VM's uuid: refused in one line, nothing moves."""
    dataset, mountpoint, vm_uuid = register_vm(site, lab)
    (mountpoint / "disk.raw").write_bytes(b"data")
    site.esb.ok("run", define(site, "daily"))
    (backup,) = site.backups(vm="lv01")
    before = snapshots(dataset)
    err = site.esb.fails(4, "backup", "restore", f"lv01/{backup['name']}", "--yes")
    assert err.strip().splitlines()[-1] == (
        f"Error: virtual server lv01 ({vm_uuid}) is not a domain of libvirt on node c1: "
        f"error: failed to get domain '{vm_uuid}'")
    assert snapshots(dataset) == before
    assert [b["status"] for b in site.backups(vm="lv01")] == ["ok"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
