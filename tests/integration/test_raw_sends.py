"""Raw sends of encrypted disks (issue 20, OpenZFS native encryption) on OpenZFS guests:
the backup node stores ciphertext and never holds the key."""
from __future__ import annotations

import os

import pytest

KEY = "/root/esbackup-test.key"
# an encrypted zvol whose key is a passphrase in a file of the compute guest, then the
# marker written over its first MiB; one ssh call
MAKE_ENCRYPTED = """printf '%s' "$3" > "$4" && chmod 600 "$4" &&
zfs create -V 16M -o encryption=on -o keyformat=passphrase -o keylocation="file://$4" "$1" &&
udevadm settle && dd of="/dev/zvol/$1" bs=64k conv=notrunc,fsync status=none && echo "$2"
"""
# Does any device of the pool hold the marker? (zpool sync first: nothing left in memory)
POOL_HOLDS = """zpool sync "$1" &&
for d in $(zpool list -v -H -P "$1" | awk '$1 ~ /^\\// {print $1}'); do
grep -q -a -F "$2" "$d" && echo found; done; true
"""


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_an_encrypted_zvol_is_backed_up_raw_and_restored_raw_without_its_key_leaving(site):
    c1, b1 = site.nodes.compute, site.nodes.backup
    marker = f"ESBACKUP-PLAINTEXT-{os.urandom(8).hex()}"
    data = (marker.encode() + b"\n") * ((1 << 20) // (len(marker) + 1))
    dataset = f"{c1.pool}/enc-disk1"
    site.sh(c1, MAKE_ENCRYPTED, dataset, "made", "correct horse battery", KEY, input=data)
    site.esb.ok("vm", "create", "sealed", "--node", "c1", "--disk", f"1={dataset}")
    site.esb.ok("definition", "create", "sealed/daily", "--disk-id", "1", "--node", "b1",
                "--storage", "tank", "--schedule", "0 1 * * *", "--type", "dataset")
    before = site.device_digest(c1, f"/dev/zvol/{dataset}")
    site.esb.ok("run", "sealed/daily")
    backup = site.esb.json("backup", "list", "--vm", "sealed")[0]
    target = backup["location"].split("@")[0]
    keystatus = site.sh(b1, 'zfs get -H -o value keystatus,encryption "$1"', target).split()
    assert keystatus[0] == "unavailable" and keystatus[1] != "off"
    assert site.sh(b1, POOL_HOLDS, b1.pool, marker) == ""
    assert "found" in site.sh(c1, 'grep -q -a -F "$2" "$1" && echo found; true',
                              f"/dev/zvol/{dataset}", marker)  # the grep does see plaintext
    # a second, incremental backup goes raw too
    site.sh(c1, 'printf more | dd of="$1" bs=4k seek=1024 conv=notrunc,fsync status=none',
            f"/dev/zvol/{dataset}")
    site.esb.ok("run", "sealed/daily")
    changed = site.device_digest(c1, f"/dev/zvol/{dataset}")
    assert site.sh(b1, POOL_HOLDS, b1.pool, marker) == ""
    site.esb.ok("backup", "verify", f"sealed/{backup['name']}")  # raw into nothing: no key
    site.esb.ok("backup", "restore", f"sealed/{backup['name']}", "--yes", "--force")
    assert site.device_digest(c1, f"/dev/zvol/{dataset}") == before != changed
    assert site.sh(c1, 'zfs get -H -o value keystatus "$1"', dataset).split() == ["available"]


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_an_encrypted_backup_is_copied_raw_and_restored_from_the_copy(site, lab, new_node):
    c1 = site.nodes.compute
    lab.boot_guests(1)
    b2 = new_node("b2", openzfs=True)
    site.esb.ok("node", "create", "b2", "--address", f"{b2.address}:{b2.port}", "--key",
                b2.key_path, "--host-key", b2.host_key, "--backup", "--no-compute")
    site.esb.ok("storage", "create", "b2", "vault", "--zpool", b2.pool)
    marker = f"ESBACKUP-PLAINTEXT-{os.urandom(8).hex()}"
    data = (marker.encode() + b"\n") * ((1 << 20) // (len(marker) + 1))
    dataset = f"{c1.pool}/enc-disk1"
    site.sh(c1, MAKE_ENCRYPTED, dataset, "made", "correct horse battery", KEY, input=data)
    site.esb.ok("vm", "create", "sealed", "--node", "c1", "--disk", f"1={dataset}")
    site.esb.ok("definition", "create", "sealed/daily", "--disk-id", "1", "--node", "b1",
                "--storage", "tank", "--schedule", "0 1 * * *", "--type", "dataset")
    site.esb.ok("copy", "create", "sealed/daily", "--node", "b2", "--storage", "vault",
                "--after-backup")
    before = site.device_digest(c1, f"/dev/zvol/{dataset}")
    site.esb.ok("run", "sealed/daily")
    backup = site.esb.json("backup", "list", "--vm", "sealed")[0]
    copy = backup["locations"][1]
    assert (copy["node"], copy["status"]) == ("b2", "ok")
    target = copy["location"].split("@")[0]
    assert site.sh(b2, 'zfs get -H -o value keystatus "$1"', target).split() == ["unavailable"]
    assert site.sh(b2, POOL_HOLDS, b2.pool, marker) == ""
    site.sh(c1, 'printf more | dd of="$1" bs=4k seek=1024 conv=notrunc,fsync status=none',
            f"/dev/zvol/{dataset}")
    site.esb.ok("backup", "restore", f"sealed/{backup['name']}", "--yes", "--force",
                "--from", "b2")
    assert site.device_digest(c1, f"/dev/zvol/{dataset}") == before
    assert site.sh(c1, 'zfs get -H -o value keystatus "$1"', dataset).split() == ["available"]
