"""Resumable transfers and bookmarks on OpenZFS guests (issue 9, item 4).

One test, to spend the guests' time once: a full backup of a zvol killed at
about half resumes from the target's receive_resume_token, and the source then
keeps only a bookmark of the backup's snapshot; an incremental of compressible
data then sends its blocks compressed (-L -e -c). (The next incremental, sent
from such a bookmark: test_backup.py's OpenZFS case. A token whose snapshot is
gone is discarded: tests/unit/test_resume_rules.py, on recorded outputs.)
"""
import os
import re
import shlex
import signal
import subprocess

import pytest

from tests.integration.site import wait_for

MiB = 1 << 20
KILL_AT = 8 * MiB  # of a stream of about 16.6 MiB: the fixture's 4 MiB and 12 more
# On the backup node, every 0.1 s: how many bytes `zfs receive` has read of the
# stream (/proc/PID/io counts what the kernel reads from the pipe for it).
WATCH = ("while :; do n=0; for p in $(pgrep -f '^zfs receive'); do "
         "r=$(sed -n 's/^rchar: //p' /proc/$p/io 2>/dev/null); n=$((n + ${r:-0})); done; "
         "echo $n; sleep 0.1; done")


def kill_at_half(site, proc) -> int:
    """SIGKILL `proc` (esbackup) once the backup node has received KILL_AT bytes;
    returns how many it had seen then."""
    watch = subprocess.Popen([*site.lab.ssh_argv(site.nodes.backup),
                              shlex.join(["sh", "-c", WATCH])], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
    try:
        while (line := watch.stdout.readline()) and proc.poll() is None:
            if int(line) >= KILL_AT:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return int(line)
        raise AssertionError(f"the run ended before half its stream: {proc.communicate()}")
    finally:
        watch.kill()
        watch.wait()


def receiving(site) -> bool:
    return site.lab.run(site.nodes.backup, "pgrep", "-f", "^zfs receive",
                        check=False).returncode == 0


def token(site) -> str:
    return site.zfs("get", "-H", "-p", "-o", "value", "receive_resume_token", site.target,
                    check=False).strip()


def bookmarks(site) -> list[str]:
    out = site.zfs("list", "-H", "-p", "-o", "name,guid", "-t", "bookmark", "-r", "-d", "1",
                   site.source)
    return out.splitlines()


def guid(site, snapshot: str) -> str:
    return site.zfs("get", "-H", "-p", "-o", "value", "guid", snapshot).strip()


@pytest.mark.parametrize("flavour", ["openzfs"], indirect=True)
def test_killed_backup_resumes_and_leaves_a_bookmark(site):
    site.write("bulk.bin", os.urandom(12 * MiB))
    ref = site.define("daily", "--type", "dataset", "--retention", "3", "--bwlimit", "2M")
    kill_at_half(site, site.spawn("run", ref))
    # the receive ends with its stream, keeping what it got and a token
    wait_for(lambda: not receiving(site) and token(site) != "-", timeout=30,
             what="the partial receive saved")
    (killed,) = site.snapshots(site.source)
    estimate = site.zfs("send", "-n", "-v", "-P", "-L", "-e", "-c", killed)
    stream = int(re.search(r"^size\t(\d+)", estimate, re.M).group(1))

    result = site.esb.ok("-v", "run", ref)
    assert f"resuming the interrupted transfer of {killed}" in result.stderr
    run = site.esb.json("history", ref)[0]
    assert run["outcome"] == "ok"
    assert run["resumed"] >= 0.4 * stream, (run, stream)
    assert run["sent"] < 0.6 * stream, (run, stream)
    assert "Resumed" in site.esb.ok("history", ref).stdout
    (b,) = site.backups()
    assert f"{site.source}@esb-{b['name']}" == killed  # the backup of the killed run's snapshot
    assert site.snapshot_digest(b["location"]) == site.source_digest()
    # the source holds no snapshot, only the bookmark of the target's newest one
    assert site.snapshots(site.source) == []
    assert bookmarks(site) == [f"{site.source}#esb-{b['name']}\t{guid(site, b['location'])}"]

    # Compressed sends (-L -e -c, both ends OpenZFS): blocks cross the wire as
    # the source stores them. 8 MiB of text, lz4-compressed on the source, sent
    # from the bookmark: the plain stream of the same change would carry it all.
    site.zfs("set", "compression=lz4", site.source)
    site.write("text.txt", b"esbackup sends compressed blocks as they are\n" * (8 * MiB // 45))
    probe = f"{site.source}@probe"  # not esbackup's: only to size the plain stream
    site.zfs("snapshot", probe)
    plain = site.zfs("send", "-n", "-v", "-P", "-i", f"{site.source}#esb-{b['name']}", probe)
    plain_size = int(re.search(r"^size\t(\d+)", plain, re.M).group(1))
    site.esb.ok("backup", "now", ref)
    run = site.esb.json("history", ref)[0]
    assert run["outcome"] == "ok" and plain_size > 8 * MiB, (run, plain_size)
    assert run["sent"] < 0.5 * plain_size, (run, plain_size)
    newest = site.backups()[-1]
    assert site.snapshot_digest(newest["location"]) == site.source_digest()
