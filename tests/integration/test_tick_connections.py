"""One tick with many due definitions: connections per node, and node slots.

40 small dataset definitions on two real nodes (zfs-fuse, sshd on loopback)
are all due in one `run --due`. While it runs, a sampler counts the open TCP
connections to each node's sshd (from /proc/net/tcp): all of them, and those of
this process (the tick runs in-process), which are paramiko's; the others are
the `ssh` data legs of full sends (drivers/openssh.py). It also counts the
slot locks each node holds (from the catalog, as another process would see them).
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

from esbackup.catalog.core import Catalog
from tests.integration.site import register

DEFINITIONS = 40
SLOTS = {"c1": 3, "b1": 2}


def established_inodes(address: str, port: int) -> set[str]:
    """Socket inodes of the open TCP connections to address:port on this host
    (IPv4 loopback nodes). A set: /proc/net/tcp is read a page at a time while
    connections come and go, so one socket can be listed twice in one read."""
    want = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {row[9] for row in rows if row[2] == want and row[3] == "01"}  # 01: ESTABLISHED


def established(address: str, port: int, sockets: set[str] | None = None) -> int:
    """How many of those; with `sockets`, only those whose socket inode is in it."""
    return sum(1 for inode in established_inodes(address, port)
               if sockets is None or inode in sockets)


def readlink(path: str) -> str:
    """Where a /proc fd points; "" for one closed meanwhile."""
    try:
        return os.readlink(path)
    except OSError:
        return ""


def owners(inodes: set[str]) -> list[str]:
    """Each process holding some of these sockets, with how many, and the
    sockets no process held any more when looked for (for a failure's message:
    whose connections went over the limit)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found, seen = [], set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            held = {readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            if held & wanted:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().split(b"\0")
                with open(f"/proc/{pid}/stat") as stat:
                    ppid = stat.read().rsplit(")", 1)[1].split()[1]
                what = b" ".join([*argv[:2], b"...", *argv[-2:]]).decode(errors="replace")
                found.append(f"{pid} (parent {ppid}) holds {len(held & wanted)}: {what}")
                seen |= held & wanted
        except OSError:  # the process is gone
            continue
    return [*found, f"gone before the look: {len(wanted - seen)}"]


def own_sockets() -> set[str]:
    """Inodes of this process's sockets."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    return inodes


def sshd_log(node) -> list[str]:
    try:
        return (Path(node.dir) / "sshd.log").read_text(errors="replace").splitlines()
    except OSError as error:
        return [str(error)]


class Sampler(threading.Thread):
    """Highest connection count and slot-lock count per node while the tick runs."""

    def __init__(self, catalog, nodes) -> None:
        super().__init__(daemon=True)
        self.catalog, self.nodes = catalog, nodes
        self.connections = {name: 0 for name in nodes}
        self.shared = {name: 0 for name in nodes}  # this process's: paramiko's
        self.slots = {name: 0 for name in nodes}
        self.samples = 0
        self.over: dict[str, list[str]] = {}  # node -> who held its connections over the limit
        self.stop = threading.Event()

    def run(self) -> None:
        cat = Catalog.open(self.catalog)
        try:
            while not self.stop.wait(0.05):
                for name, node in self.nodes.items():
                    held = len(cat.locks(f"slot:{name}:"))
                    self.slots[name] = max(self.slots[name], held)
                    inodes = established_inodes(node.address, node.port)
                    if len(inodes) > max(self.connections[name], SLOTS[name] + 1):
                        self.over[name] = [f"slots held: {held}", *owners(inodes),
                                           *(f"{lock['resource']}: {lock['owner']}"
                                             for lock in cat.locks(f"slot:{name}:"))]
                    self.connections[name] = max(self.connections[name], len(inodes))
                    self.shared[name] = max(self.shared[name], established(
                        node.address, node.port, own_sockets()))
                self.samples += 1
        finally:
            cat.close()


def test_a_tick_of_40_definitions_shares_a_connection_per_node_and_slots_hold(
        esb, two_nodes, lab):
    register(esb, two_nodes, lab)
    for name, slots in SLOTS.items():
        esb.ok("node", "update", name, "--max-backups", str(slots))
    for i in range(DEFINITIONS):
        dataset, _ = lab.create_dataset(two_nodes.compute, f"tick{i}-disk1",
                                        {"data": bytes([i]) * 4096})
        esb.ok("vm", "create", f"tick{i}", "--node", "c1", "--uuid", str(uuid.uuid4()),
               "--disk", f"1={dataset}")
        esb.ok("definition", "create", f"tick{i}/often", "--disk-id", "1", "--type", "dataset",
               "--node", "b1", "--storage", "tank", "--schedule", "* * * * *",
               "--timezone", "UTC", "--retention", "1")
    esb.backdate_schedules()  # made before this minute's firing
    sampler = Sampler(esb.catalog, {"c1": two_nodes.compute, "b1": two_nodes.backup})
    sampler.start()
    try:
        tick = esb("run", "--due")
    finally:
        sampler.stop.set()
        sampler.join()

    for name, seen in sampler.over.items():  # shown whole with a failure's captured output
        print(f"over the limit on {name}:", *seen, sep="\n  ")
    for node in (two_nodes.compute, two_nodes.backup):  # why a connection was lost, if one was
        print(f"{node.name}'s sshd said:", *sshd_log(node)[-40:], sep="\n  ")
    runs = esb.json("history")
    assert len(runs) == DEFINITIONS
    # runs that made <pool>/backups/ds at the same moment all went on (actions/backup.py)
    assert [r["error"] for r in runs if r["outcome"] != "ok"] == []
    assert tick.exit_code == 0, tick.stderr
    assert len(esb.json("backup", "list", "--status", "ok")) == DEFINITIONS
    assert sampler.samples > 10
    for name, slots in SLOTS.items():
        assert sampler.slots[name] <= slots, (name, sampler.slots)
        assert sampler.connections[name] <= slots + 1, (name, sampler.connections,
                                                        sampler.over)
    # the runs did overlap up to the limits, and still shared one paramiko connection
    # per node; the others were the `ssh` data legs of the full sends, one per slot
    assert sampler.slots == SLOTS, sampler.slots
    assert sampler.shared == {"c1": 1, "b1": 1}, sampler.shared
    assert sampler.connections != sampler.shared, sampler.connections
