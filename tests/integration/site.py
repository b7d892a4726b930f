"""A registered site: the lab's two nodes known to esbackup, one VM, definitions.

Everything goes through the CLI (CliRunner, in-process): the same code path
as production, against real zfs-fuse pools and real sshd on loopback, or
against OpenZFS guest nodes whose VM disk is a zvol. The Site's helpers
(`zfs`, `snapshots`, `read`, `write`, digests) reach whichever node holds the
dataset or file, so one test body checks both flavours.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Esbackup

VM_UUID = "3f2a5a4e-0000-4000-8000-0000000000a1"


def catalog_bytes(path: Path) -> bytes:
    """A SQLite catalog as one file (its write-ahead log folded in), e.g. to copy it."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.read_bytes()


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` every 0.1 s until it holds; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def zfs(*args: str, check: bool = True) -> str:
    result = subprocess.run(["zfs", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"zfs {' '.join(args)}: {result.stderr}")
    return result.stdout


def destroy(dataset: str, attempts: int = 20) -> None:
    """zfs-fuse may call a just-read filesystem busy for a moment: unmount, retry."""
    for _ in range(attempts):
        zfs("unmount", dataset, check=False)
        if subprocess.run(["zfs", "destroy", "-r", dataset], capture_output=True).returncode == 0:
            return
        time.sleep(0.25)
    zfs("destroy", "-r", "-f", dataset)


def snapshots(dataset: str) -> list[str]:
    out = zfs("list", "-H", "-t", "snapshot", "-o", "name", "-r", "-d", "1", dataset, check=False)
    return [line for line in out.splitlines() if line.startswith(dataset + "@")]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# One ssh call: a snapshot's zvol bytes through a clone (destroyed again even
# when the digest failed; udev may hold the new device a moment).
CLONE_DIGEST = """zfs clone "$1" "$2" && udevadm settle && b2sum "/dev/zvol/$2"; status=$?
for attempt in 1 2 3 4 5; do zfs destroy "$2" 2>/dev/null && exit $status; sleep 1; done
exit 1
"""
ZVOL_WRITES_START = 8 << 20  # `write` puts data on a zvol from here, past the first 4 MiB
MiB = 1 << 20


@dataclass
class Site:
    esb: Esbackup
    lab: object
    nodes: object  # TwoNodes
    definitions: list[str] = field(default_factory=list)
    zvol_regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: offset, size

    @property
    def zvol(self) -> bool:
        return self.nodes.device is not None

    def node_of(self, *names: str):
        """The lab node whose pool holds the first of `names` that is a dataset,
        snapshot or file path on one."""
        for name in names:
            for node in (self.nodes.compute, self.nodes.backup):
                pool = node.pool or ""
                if name == pool or name.startswith((f"{pool}/", f"{pool}@")) or (
                        node.mountpoint and (name == node.mountpoint
                                             or name.startswith(f"{node.mountpoint}/"))):
                    return node
        raise AssertionError(f"none of {names} is on a node of the site")

    def zfs(self, *args: str, check: bool = True) -> str:
        """`zfs ARGS` on the node holding the first dataset named in ARGS."""
        node = self.node_of(*args)
        proc = self.lab.run(node, "zfs", *args, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"zfs {' '.join(args)}: {proc.stderr.decode()}")
        return proc.stdout.decode()

    def snapshots(self, dataset: str) -> list[str]:
        out = self.zfs("list", "-H", "-t", "snapshot", "-o", "name", "-r", "-d", "1", dataset,
                       check=False)
        return [line for line in out.splitlines() if line.startswith(dataset + "@")]

    def bookmarks(self, dataset: str) -> list[str]:
        out = self.zfs("list", "-H", "-t", "bookmark", "-o", "name", "-r", "-d", "1", dataset,
                       check=False)
        return [line for line in out.splitlines() if line.startswith(dataset + "#")]

    def read(self, path: str) -> bytes:
        """A file on the node that holds it (a backup node's file backup, a manifest)."""
        return self.lab.run(self.node_of(path), "cat", path).stdout

    def exists(self, path: str) -> bool:
        return self.lab.run(self.node_of(path), "test", "-e", path, check=False).returncode == 0

    def sh(self, node, script: str, *args: str, input: bytes | None = None) -> str:
        """`sh -c SCRIPT sh ARGS` on `node` (one ssh call into a guest); its stdout."""
        return self.lab.run(node, "sh", "-c", script, "sh", *args, input=input).stdout.decode()

    def device_digest(self, node, device: str) -> dict[str, str]:
        # b2sum: 2.3x quicker than sha256sum over a 32 MiB zvol in a TCG guest
        out = self.sh(node, 'udevadm settle && b2sum "$1"', device)
        return {"zvol": out.split()[0]}

    def find(self, root: str, name: str) -> list[str]:
        """Files under `root` (on the node holding it) whose name matches the glob `name`."""
        out = self.sh(self.node_of(root), 'find "$1" -name "$2"', root, name)
        return out.splitlines()

    def put(self, node, path: str, data: bytes) -> None:
        """Write a file on a node that is not a dataset's file (an ssh config, say)."""
        self.sh(node, 'cat > "$1"', path, input=data)

    def add_disk(self, name: str, data: bytes, size: str = "16M") -> str:
        """Another disk on the compute node holding `data`: a zvol of `size` on OpenZFS
        (data at its start), a dataset with one file `d` on zfs-fuse. Returns the dataset."""
        if self.zvol:
            return self.lab.create_zvol(self.nodes.compute, name, size, data)[0]
        return self.lab.create_dataset(self.nodes.compute, name, {"d": data})[0]

    def disk_digest(self, dataset: str) -> dict[str, str]:
        """What `source_digest` says of the source, of another disk of the compute node."""
        if self.zvol:
            return self.device_digest(self.nodes.compute, f"/dev/zvol/{dataset}")
        return tree_digest(Path(zfs("get", "-H", "-o", "value", "mountpoint", dataset).strip()))

    @property
    def source(self) -> str:
        return self.nodes.dataset

    @property
    def source_dir(self) -> Path:
        return self.nodes.mountpoint

    @property
    def target(self) -> str:
        return f"{self.nodes.backup.pool}/backups/ds/{VM_UUID}-disk1"

    def define(self, name: str, *args: str) -> str:
        self.esb.ok("definition", "create", f"web01/{name}", "--disk-id", "1", "--node", "b1",
                    "--storage", "tank", "--schedule", "0 1 * * *", "--timezone", "UTC", *args)
        return f"web01/{name}"

    def backups(self, **filters) -> list[dict]:
        args = [f"--{k}={v}" for k, v in filters.items()]
        return self.esb.json("backup", "list", *args)

    def write(self, relative: str, data: bytes) -> None:
        """Write a file of the disk; on a zvol, a region of the device kept per name."""
        if self.zvol:
            ends = (o + MiB * -(-size // MiB) for o, size in self.zvol_regions.values())
            offset = self.zvol_regions.get(relative, (max(ends, default=ZVOL_WRITES_START),))[0]
            self.zvol_regions[relative] = (offset, len(data))
            self.lab.run(self.nodes.compute, "dd", f"of={self.nodes.device}", "bs=4k",
                         f"seek={offset // 4096}", "conv=notrunc,fsync", "status=none",
                         input=data)
            return
        path = self.source_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def source_digest(self) -> dict[str, str]:
        if self.zvol:
            return self.device_digest(self.nodes.compute, self.nodes.device)
        return tree_digest(self.source_dir)

    def snapshot_digest(self, snapshot: str) -> dict[str, str]:
        """Files (or a zvol's bytes) of a snapshot on any lab pool, read through a clone."""
        clone = f"{snapshot.split('/')[0]}/esbtest-clone-{os.getpid()}"
        if self.zvol:
            out = self.sh(self.node_of(snapshot), CLONE_DIGEST, snapshot, clone)
            return {"zvol": out.split()[0]}
        zfs("clone", snapshot, clone)
        try:
            mount = Path(zfs("get", "-H", "-o", "value", "mountpoint", clone).strip())
            return tree_digest(mount)
        finally:
            destroy(clone)

    def spawn(self, *args: str) -> subprocess.Popen:
        """esbackup in its own process (for concurrency and kill tests)."""
        return subprocess.Popen(
            [sys.executable, "-m", "esbackup", "--catalog", str(self.esb.catalog), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


# SQLite catalogs just after `node create` of two guest nodes, by where the guests are:
# a session's guests live on, so their host keys and capabilities stay as they were.
_guest_nodes_created: dict[tuple, bytes] = {}


def register(esb: Esbackup, two_nodes, lab) -> Site:
    """The site's nodes, storage and VM, created through the CLI. Two OpenZFS guests that
    an earlier test of the session registered in the same roles start from a copy of
    that catalog instead: `node create` logs in twice per node (host key, then one
    batch of questions), seconds of TCG per test, and what it would store is the same."""
    c1, b1 = two_nodes.compute, two_nodes.backup
    where = None
    if c1.guest and b1.guest and isinstance(esb.catalog, Path):
        where = tuple((n.address, n.port, n.pool, n.host_key) for n in (c1, b1))
    if where in _guest_nodes_created:
        esb.catalog.write_bytes(_guest_nodes_created[where])
    else:
        esb.ok("node", "create", "c1", "--address", f"{c1.address}:{c1.port}", "--key",
               c1.key_path, "--host-key", c1.host_key)
        esb.ok("node", "create", "b1", "--address", f"{b1.address}:{b1.port}", "--key",
               b1.key_path, "--host-key", b1.host_key, "--backup", "--no-compute")
        if where is not None:
            _guest_nodes_created[where] = catalog_bytes(esb.catalog)
    esb.ok("storage", "create", "b1", "tank", "--zpool", b1.pool)
    esb.ok("vm", "create", "web01", "--node", "c1", "--uuid", VM_UUID,
           "--disk", f"1={two_nodes.dataset}")
    return Site(esb, lab, two_nodes)


@pytest.fixture
def site(esb, two_nodes, lab) -> Site:
    return register(esb, two_nodes, lab)
