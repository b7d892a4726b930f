"""Between zfs-fuse and OpenZFS guest nodes: file backups work both ways; a
dataset stream the receiver cannot take is refused before any data moves."""
import os

import pytest

from tests.integration.conftest import ZVOL_SIZE, TwoNodes
from tests.integration.site import register
from tests.integration.test_restore import restore

pytestmark = [pytest.mark.guests, pytest.mark.mixed]
REFUSED = "zfs-fuse (pool version 23) cannot receive a dataset stream from openzfs"


def mixed_site(esb, lab, new_node, *, openzfs_compute: bool):
    compute = new_node("c1", openzfs=openzfs_compute)
    backup = new_node("b1", openzfs=not openzfs_compute)
    if openzfs_compute:
        dataset, device = lab.create_zvol(compute, "vm1-disk1", ZVOL_SIZE, os.urandom(4 << 20))
        return register(esb, TwoNodes(compute, backup, dataset, None, {}, device), lab)
    dataset, mount = lab.create_dataset(compute, "vm1-disk1", {"disk.img": os.urandom(4 << 20)})
    return register(esb, TwoNodes(compute, backup, dataset, mount, {}), lab)


def test_zvol_onto_zfs_fuse_file_backup_and_restore_dataset_refused(esb, lab, new_node):
    site = mixed_site(esb, lab, new_node, openzfs_compute=True)
    site.esb.ok("node", "check", "c1")
    site.esb.ok("node", "check", "b1")
    files = site.define("files", "--type", "file", "--compression", "gzip", "--retention", "2")
    site.esb.ok("run", files)
    backed_up = site.source_digest()
    site.write("later.bin", os.urandom(64 << 10))
    assert site.source_digest() != backed_up
    (b,) = site.backups()
    restore(site, b["name"])  # a file backup (on zfs-fuse) onto a zvol (on OpenZFS)
    assert site.source_digest() == backed_up
    assert site.snapshots(site.source) == []

    daily = site.define("daily", "--type", "dataset", "--retention", "2")
    err = site.esb.fails(2, "run", daily)
    assert REFUSED in err and len(err.strip().splitlines()) == 1
    assert [x["definition"] for x in site.backups()] == ["files"]  # no pending row left
    assert site.snapshots(site.source) == []  # no snapshot left on the source
    assert site.target not in site.zfs("list", "-H", "-o", "name", "-r", site.nodes.backup.pool)
    assert [r["outcome"] for r in site.esb.json("history", daily)] == ["failed"]


def test_zfs_fuse_onto_openzfs_file_and_dataset_backups(esb, lab, new_node):
    site = mixed_site(esb, lab, new_node, openzfs_compute=False)
    site.esb.ok("node", "check", "c1")
    site.esb.ok("node", "check", "b1")
    files = site.define("files", "--type", "file", "--compression", "bzip2", "--retention", "2")
    daily = site.define("daily", "--type", "dataset", "--retention", "2")
    site.esb.ok("run", files)
    site.esb.ok("run", daily)
    first = site.source_digest()
    site.write("later.bin", os.urandom(64 << 10))
    site.esb.ok("run", daily)  # incremental onto OpenZFS
    file_backup, full, incremental = site.backups()
    assert incremental["size"] < full["size"]
    assert site.snapshots(site.target) == [full["location"], incremental["location"]]
    restore(site, file_backup["name"])  # a file backup on OpenZFS onto a zfs-fuse dataset
    assert site.source_digest() == first
