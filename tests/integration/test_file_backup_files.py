"""Files back from file backups (zfs-fuse nodes): the stream is received into a
temporary dataset on the backup node first, read as a clone is, then destroyed."""
import glob
import hashlib
import os
import signal
import subprocess

from tests.integration.site import wait_for


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def file_backup(site, compression: str = "gzip") -> str:
    name = f"files{len(site.backups())}"
    site.esb.ok("run", site.define(name, "--type", "file", "--compression", compression,
                                   "--retention", "0"))
    return f"web01/{site.backups()[-1]['name']}"


def leftovers(site) -> list[str]:
    """Temporary datasets and mount folders of ls/get calls on the backup node."""
    names = site.zfs("list", "-H", "-o", "name", "-r", site.nodes.backup.pool)
    return [n for n in names.split() if "esbfiles" in n] + glob.glob("/tmp/esbfiles.*")


def test_ls_and_get_of_a_first_and_a_later_file_backup_are_byte_identical(site, tmp_path):
    site.write("etc/hostname", b"web01\n")
    site.write("data.bin", os.urandom(3 << 20))
    first = {p: sha(site.source_dir / p) for p in ("etc/hostname", "data.bin")}
    one = file_backup(site)
    site.write("data.bin", os.urandom(1 << 20))
    (site.source_dir / "etc/hostname").unlink()
    later = sha(site.source_dir / "data.bin")
    two = file_backup(site)
    (site.source_dir / "data.bin").unlink()

    result = site.esb.ok("backup", "ls", one, "/etc", "-f", "json")
    assert "is a file backup: its stream (" in result.stderr
    assert "received into a temporary dataset on b1 first" in result.stderr
    assert [e["name"] for e in site.esb.json("backup", "ls", one, "/etc")] == ["hostname"]
    assert site.esb.json("backup", "ls", two, "/etc") == []
    plan = site.esb.ok("backup", "get", one, "/etc", "--to", str(tmp_path), "--dry-run")
    assert "etc/hostname" in plan.stdout and "is a file backup" in plan.stderr
    assert leftovers(site) == []

    site.esb.ok("backup", "get", one, "/etc/hostname", "/data.bin", "--to", str(tmp_path))
    assert sha(tmp_path / "hostname") == first["etc/hostname"]
    assert sha(tmp_path / "data.bin") == first["data.bin"]
    (tmp_path / "two").mkdir()
    site.esb.ok("backup", "get", two, "/data.bin", "--to", str(tmp_path / "two"))
    assert sha(tmp_path / "two/data.bin") == later
    assert leftovers(site) == []

    plain = file_backup(site, "off")  # an uncompressed stream: read with cat
    assert "data.bin" not in [e["name"] for e in site.esb.json("backup", "ls", plain)]
    assert "no such path" in site.esb.fails(4, "backup", "get", two, "/nope", "--to",
                                            str(tmp_path))
    assert leftovers(site) == []  # gone after a failure too


def test_the_stream_cannot_mount_share_or_run_anything_of_its_own(site, tmp_path):
    """A stream carrying its dataset's properties (`zfs send -p`: mountpoint in the
    backup node's /tmp, canmount, devices, setuid, exec on) put where a file backup
    is: the received dataset is read-only, noauto, no devices/setuid/exec, not
    shared, on the private folder, and nothing mounts where the stream said."""
    ref = file_backup(site, "off")
    location = site.backups()[-1]["location"]
    evil_mount = tmp_path / "where-the-stream-says"
    hostile = f"{site.nodes.compute.pool}/hostile"
    site.zfs("create", "-o", f"mountpoint={evil_mount}", "-o", "devices=on", "-o",
             "setuid=on", "-o", "exec=on", "-o", "canmount=on", hostile)
    os.makedirs(evil_mount / "bin", exist_ok=True)
    (evil_mount / "bin/tool").write_bytes(b"#!/bin/sh\nid\n")
    os.chmod(evil_mount / "bin/tool", 0o6755)
    (evil_mount / "bin/big").write_bytes(os.urandom(48 << 20))  # time to look meanwhile
    site.zfs("snapshot", f"{hostile}@s")
    with open(location, "wb") as f:
        subprocess.run(["zfs", "send", "-p", f"{hostile}@s"], check=True, stdout=f)
    # zfs-fuse holds a just-written dataset busy for a while
    wait_for(lambda: site.lab.run(site.nodes.compute, "zfs", "destroy", "-r", hostile,
                                  check=False).returncode == 0, what="the source gone")
    probe = tmp_path / "probe"
    probe.mkdir()
    proc = site.spawn("backup", "get", ref, "/bin", "--to", str(probe))
    props, writable = None, "not tried"
    while proc.poll() is None and props is None:
        temp = [n for n in leftovers(site) if "/" in n and not n.startswith("/tmp")]
        if temp:
            out = site.zfs("get", "-H", "-o", "property,value", "readonly,canmount,devices,"
                           "setuid,exec,sharenfs,mountpoint,mounted", temp[0], check=False)
            found = dict(line.split("\t") for line in out.splitlines())
            if found.get("mounted") == "yes":
                props = found
                try:  # zfs-fuse says "readonly off temporary" of a read-only mount
                    open(os.path.join(found["mountpoint"], "written"), "wb").close()
                    writable = "yes"
                except OSError as error:
                    writable = error.strerror
                assert not os.path.ismount(evil_mount)
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    assert props is not None, "the temporary dataset was never seen mounted"
    assert {k: props.get(k) for k in ("canmount", "devices", "setuid", "exec",
                                      "sharenfs")} == {
        "canmount": "noauto", "devices": "off", "setuid": "off", "exec": "off",
        "sharenfs": "off"}
    assert props["mountpoint"].startswith("/tmp/esbfiles.")
    assert writable == "Read-only file system"
    assert (probe / "bin/tool").read_bytes() == b"#!/bin/sh\nid\n"
    assert not os.stat(probe / "bin/tool").st_mode & 0o6000
    assert not os.path.ismount(evil_mount) and leftovers(site) == []


def test_an_incremental_stream_in_a_file_backup_is_refused_in_one_line(site):
    """esbackup's file backups are whole streams; one that is not (a stream file put
    there by hand) is refused before anything is read, and leaves nothing behind."""
    ref = file_backup(site, "off")
    location = site.backups()[-1]["location"]
    source = site.source
    site.zfs("snapshot", f"{source}@hand-a")
    site.write("x", b"x")
    site.zfs("snapshot", f"{source}@hand-b")
    stream = subprocess.run(["zfs", "send", "-i", f"{source}@hand-a", f"{source}@hand-b"],
                            check=True, capture_output=True).stdout
    with open(location, "wb") as f:
        f.write(stream)
    err = site.esb.fails(2, "backup", "ls", ref)
    assert "is an incremental stream: it needs its base chain received first" in err
    assert len(err.strip().splitlines()) == 2  # the cost note, then the one-line refusal
    assert leftovers(site) == []


def test_a_killed_get_leaves_nothing_once_the_next_call_or_sync_ran(site, tmp_path):
    site.write("big.bin", os.urandom(64 << 20))
    ref = file_backup(site, "off")
    out = tmp_path / "out"
    out.mkdir()
    proc = site.spawn("backup", "get", ref, "/big.bin", "--to", str(out))
    wait_for(lambda: glob.glob(f"{out}/.esbackup-get-*/big.bin"), what="a get under way")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    dead = subprocess.Popen(["true"])  # a dataset a killed call left (its PID is gone)
    dead.wait()
    temp = f"{site.nodes.backup.pool}/backups/esbfiles-{dead.pid}"
    site.zfs("create", "-o", "canmount=noauto", temp)
    site.zfs("snapshot", f"{temp}@received")  # as a received stream leaves it
    site.esb.ok("backup", "ls", ref)
    wait_for(lambda: leftovers(site) == [], what="no temporary dataset left")
    site.esb.ok("backup", "get", ref, "/big.bin", "--to", str(out))
    assert sha(out / "big.bin") == sha(site.source_dir / "big.bin")

    site.zfs("create", "-o", "canmount=noauto", temp)
    site.zfs("snapshot", f"{temp}@received")
    site.esb.ok("backup", "sync")
    assert leftovers(site) == []
