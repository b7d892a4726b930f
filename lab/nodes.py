"""A lab of real nodes on this machine: zfs-fuse pools on files, one sshd per node.

Each node is an OpenSSH server on its own loopback address (127.0.0.x, x >= 2)
with its own host key and config, plus (optionally) a ZFS pool made from a
file. The integration tests use it in-process (`Lab`); README's quick start
uses the CLI, which keeps the lab's state in a JSON file:

    python -m lab.nodes up --dir /tmp/esb-lab c1 b1   # prints the state
    python -m lab.nodes up --openzfs --dir /tmp/esb-lab c1 b1   # OpenZFS guests
    python -m lab.nodes down --dir /tmp/esb-lab

With `openzfs=True` a node is a QEMU TCG guest running Debian's OpenZFS 2.x
instead (lab/openzfs_guest.py): its pool lives inside the guest on the guest's
own disk, and `run` reaches it over ssh. A guest keeps its pool while it runs;
a lab made with `reuse_guests` keeps a removed node's guest running (its pool
emptied) for the next node, since a guest takes a minute or more to boot.
`link_guests` lets one guest's ssh reach another's (direct mode) through QEMU's
`guestfwd` (lab/guest_link.py); nothing else leaves a guest.

Other labs (other test runs, other engineers) share zfs-fuse: pool names are
unique, and teardown touches only this lab's own pools, files and processes.
zfs-fuse itself is left running. It wedges (requests stuck, `zfs create` in D
state) when two processes create and destroy pools at once, so a lab holds
ZFS_FUSE_LOCK (an flock) from its first zfs-fuse pool until it closes: another
lab that wants a zfs-fuse pool meanwhile waits. OpenZFS guests need no lock.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import openzfs_guest

if TYPE_CHECKING:
    from esbackup.domain.models import Node

STATE_FILE = "lab.json"
ZFS_FUSE_LOCK = Path(os.environ.get("ESBACKUP_LAB_LOCK", "/run/esbackup-lab-zfs-fuse.lock"))
SSHD = "/usr/sbin/sshd"
PACKAGES = ("zfs-fuse", "openssh-server")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
START_TIMEOUT = 10.0
PEER_FILE = "peer"  # in a guest's dir: "address port" its guestfwd dials (link_guests)
# Writes a guest's ssh client side of direct mode: the key (stdin), known_hosts
# and the config that `link_guests` returns. Args: source address, peer address,
# host key line.
GUEST_LINK_SETUP = """set -eu
umask 077
cat > /root/.ssh/esblab_peer
echo "esblab-peer $3" > /root/.ssh/esblab_known_hosts
printf '%s\\n' "Host $1" "  HostName $2" "  HostKeyAlias esblab-peer" \\
  "  IdentityFile /root/.ssh/esblab_peer" "  IdentitiesOnly yes" \\
  "  UserKnownHostsFile /root/.ssh/esblab_known_hosts" > /root/.ssh/esblab_direct.conf
"""
# Stops a guest's sshd and kills every sshd process but this script's own
# ancestors (the lab's shared connection): esbackup's sessions die as in a crash.
GUEST_SSHD_STOP = """systemctl stop ssh.service
mine=" $$ " pid=$$
while [ "$pid" -gt 1 ]; do read -r _ _ _ pid _ < "/proc/$pid/stat"; mine="$mine$pid "; done
for dir in /proc/[0-9]*; do
  read -r comm < "$dir/comm" 2>/dev/null && [ "$comm" = sshd ] || continue
  pid=${dir#/proc/}
  case "$mine" in *" $pid "*) ;; *) kill -9 "$pid" ;; esac
done
"""
# Empties a guest's pool between tests, in one ssh call: holds released, every
# dataset below the pool destroyed (a zvol udev still holds may be busy for a
# moment), the files in the pool's own file system removed, sshd running (a
# test that stopped it may have failed before it started it again).
GUEST_POOL_RESET = """set -u
pool=$1
zfs list -H -o name -t snapshot -r "$pool" | xargs -r zfs holds -H |
  while IFS='	' read -r snap tag _; do zfs release "$tag" "$snap"; done
for attempt in 1 2 3 4 5; do
  children=$(zfs list -H -o name -d 1 "$pool" | tail -n +2)
  [ -z "$children" ] && break
  [ "$attempt" = 1 ] || { udevadm settle; sleep "$attempt"; }
  for child in $children; do zfs destroy -R -f "$child" 2>/dev/null; done
done
[ -z "$(zfs list -H -o name -d 1 "$pool" | tail -n +2)" ] || exit 1
find "/$pool" -mindepth 1 -delete
systemctl is-active -q ssh.service || systemctl start ssh.service
"""


class LabError(RuntimeError):
    """The lab could not be built or torn down."""


@dataclass
class LabNode:
    """One node of the lab; `node()` turns it into an esbackup `Node` record."""

    name: str
    dir: str  # private directory: sshd config, host key, pid file, log
    address: str = ""
    port: int = 22
    user: str = "root"
    key_path: str = ""
    host_key: str = ""  # "SHA256:..." like OpenSSH prints it
    pool: str | None = None
    pool_file: str | None = None
    mountpoint: str | None = None
    sshd_pid: int | None = None
    sshd_options: dict[str, str] = field(default_factory=dict)
    flavour: str = "zfs-fuse"  # or "openzfs": a guest's sshd and pool
    guest: dict[str, Any] | None = None  # an OpenZFS guest: dir, pid, address, port

    @property
    def config(self) -> Path:
        return Path(self.dir) / "sshd_config"

    @property
    def host_key_file(self) -> Path:
        return Path(self.dir) / "ssh_host_ed25519_key"

    def node(self, **overrides: Any) -> Node:
        """The esbackup record of this node, pinned to its current host key."""
        from esbackup.domain.models import Node

        fields = dict(name=self.name, address=self.address, port=self.port, user=self.user,
                      key_path=self.key_path, host_key=self.host_key)
        return Node(**{**fields, **overrides})


def tool(name: str) -> str:
    """Absolute path of a program, looking in sbin directories too."""
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise LabError(f"{name} not found")
    return path


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a local command (never through a shell) and capture its output."""
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def ensure_packages() -> None:
    """Install zfs-fuse and openssh-server when one of their programs is missing."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (zfs-fuse, sshd, 127.0.0.x:22)")
    programs = ("zfs-fuse", "zpool", "zfs", "ssh-keygen", "ssh")
    if all(shutil.which(p, path=SBIN_PATH) for p in programs) and os.access(SSHD, os.X_OK):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        proc = subprocess.run(install, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr.strip()}")


def ensure_zfs_fuse(timeout: float = 30.0) -> None:
    """Start the shared zfs-fuse daemon unless it runs, and wait until `zpool list` works."""
    started = None
    if sh("pgrep", "-x", "zfs-fuse", check=False).returncode != 0:
        started = sh(tool("zfs-fuse"), check=False)
    deadline = time.monotonic() + timeout
    while sh(tool("zpool"), "list", check=False).returncode != 0:
        if time.monotonic() > deadline:
            why = started.stderr.strip() if started else "zpool list keeps failing"
            raise LabError(f"zfs-fuse is not answering: {why}")
        time.sleep(0.2)


def fingerprint_of(pub_line: str) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key line ("type base64 [comment]")."""
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keygen(path: Path) -> str:
    """Make a fresh ed25519 key pair at `path`; return its public line."""
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    sh(tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    return Path(f"{path}.pub").read_text().strip()


def children_of(pid: int) -> list[int]:
    """All descendants of a process (sshd's sessions call setsid, so no process group)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, then wait until they are gone."""
    victims = [pid, *children_of(pid)]
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for victim in victims:
        try:
            os.waitpid(victim, 0)  # reap our own child; others are reaped by their parent
        except ChildProcessError:
            pass
    deadline = time.monotonic() + 5
    while any(alive(v) for v in victims) and time.monotonic() < deadline:
        time.sleep(0.02)


def port_free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def candidate_addresses() -> Iterator[tuple[str, int]]:
    """127.0.0.x (x >= 2) in random order, each with port 22 if free there, else a free port."""
    hosts = [f"127.0.0.{x}" for x in range(2, 255)]
    random.shuffle(hosts)
    for host in hosts:
        yield host, 22 if port_free(host, 22) else free_port(host)


def control_path(guest_dir: str | Path) -> str:
    """The socket of a guest's shared ssh connection. Not in the guest's dir: under
    pytest's deep temporary paths ssh's socket name passed the 108 bytes a Unix
    socket may have, and ssh then silently connected afresh for every command."""
    return f"/tmp/esblab-{hashlib.sha256(str(guest_dir).encode()).hexdigest()[:16]}.ssh"


def sshd_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


class Lab:
    """The nodes of one lab, all living under `workdir`; a context manager."""

    def __init__(self, workdir: Path, *, zfs: bool = True, reuse_guests: bool = False,
                 _load: bool = False) -> None:
        self.workdir = Path(workdir).resolve()
        self.nodes: dict[str, LabNode] = {}
        self.idle_guests: list[dict[str, Any]] = []
        self.reuse_guests = reuse_guests
        self.key_path = self.workdir / "client_ed25519"
        self.authorized_keys = self.workdir / "authorized_keys"
        self.known_hosts = self.workdir / "known_hosts"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._booting: list[dict[str, Any]] = []  # guests not yet answering ssh
        self._lock = threading.RLock()  # guests boot in threads
        self._zfs_fuse_lock: int | None = None  # fd holding ZFS_FUSE_LOCK
        if _load:
            return
        ensure_packages()
        if zfs:
            ensure_zfs_fuse()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.authorized_keys.write_text(keygen(self.key_path) + "\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self._save()

    @classmethod
    def load(cls, workdir: Path) -> Lab:
        """The lab whose state file is in `workdir` (made by another process)."""
        lab = cls(workdir, _load=True)
        if not (lab.workdir / STATE_FILE).is_file():
            raise LabError(f"no lab in {lab.workdir} ({STATE_FILE} is missing)")
        state = json.loads((lab.workdir / STATE_FILE).read_text())
        lab.nodes = {n["name"]: LabNode(**n) for n in state["nodes"]}
        lab.idle_guests = state.get("idle_guests", [])
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_node(self, name: str, *, pool_size: str | None = "512M",
                 sshd_options: dict[str, str] | None = None, openzfs: bool = False) -> LabNode:
        """Start a node with its own sshd; with `pool_size`, also a pool on a file.

        `sshd_options` are extra sshd_config lines ({"RekeyLimit": "8M"}).
        `openzfs` makes the node an OpenZFS guest (its pool is on the guest's disk).
        """
        if not NAME_RE.fullmatch(name) or name in self.nodes:
            raise LabError(f"bad or duplicate node name: {name!r}")
        node = LabNode(name=name, dir=str(self.workdir / "nodes" / name),
                       key_path=str(self.key_path), sshd_options=dict(sshd_options or {}))
        self.nodes[name] = node  # registered first, so close() cleans up a half-made node
        Path(node.dir).mkdir(parents=True)
        if openzfs:
            self._lease_guest(node, pool=bool(pool_size))
            return node
        node.host_key = fingerprint_of(keygen(node.host_key_file))
        if pool_size:
            self._create_pool(node, pool_size)
        self.start_sshd(node)
        return node

    def remove_node(self, node: LabNode) -> None:
        """Stop the node's sshd, destroy its pool and remove its files."""
        if node.guest:
            self._release_guest(node)
        else:
            self.stop_sshd(node)
        if node.pool:
            self._destroy_pool(node)
        shutil.rmtree(node.dir, ignore_errors=True)
        del self.nodes[node.name]
        self._save()

    def remove_nodes(self, nodes: list[LabNode]) -> None:
        """remove_node for each; the guests' pools are emptied side by side first (a
        second or more each under TCG)."""
        pooled = [node for node in nodes if node.guest and node.pool]
        if pooled:
            with ThreadPoolExecutor(len(pooled)) as pool:
                list(pool.map(self._empty_guest_pool, pooled))
        for node in nodes:
            self.remove_node(node)

    def close(self) -> None:
        """Remove every node and every file the lab made."""
        self.reuse_guests = False
        for node in list(self.nodes.values()):
            self.remove_node(node)
        for guests in (self.idle_guests, self._booting):
            while guests:
                self._stop_guest(guests.pop())
        for path in (self.key_path, self.key_path.with_suffix(".pub"), self.authorized_keys,
                     self.known_hosts, self.workdir / STATE_FILE):
            path.unlink(missing_ok=True)
        for path in (*(self.workdir / sub for sub in ("nodes", "pools", "mnt", "guests")),
                     self.workdir):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        if self._zfs_fuse_lock is not None:
            os.close(self._zfs_fuse_lock)  # releases the flock
            self._zfs_fuse_lock = None

    def _hold_zfs_fuse(self) -> None:
        """Take ZFS_FUSE_LOCK unless this lab holds it: wait while another lab uses zfs-fuse."""
        if self._zfs_fuse_lock is not None:
            return
        fd = os.open(ZFS_FUSE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"lab: waiting for another lab to finish with zfs-fuse ({ZFS_FUSE_LOCK})",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._zfs_fuse_lock = fd

    def start_sshd(self, node: LabNode) -> None:
        """Start the node's sshd; a new node gets a free 127.0.0.x address, a restart keeps it."""
        if node.guest:
            self.run(node, "systemctl", "start", "ssh.service")
            return
        if node.sshd_pid and alive(node.sshd_pid):
            return
        places = [(node.address, node.port)] if node.address else candidate_addresses()
        errors = []
        for address, port in places:
            error = self._try_sshd(node, address, port)
            if error is None:
                self._save()
                return
            errors.append(error)
            if "Address already in use" not in error or len(errors) >= 20:
                break
        raise LabError(f"sshd for node {node.name} did not start: {errors[-1]}")

    def stop_sshd(self, node: LabNode) -> None:
        """Kill the node's sshd and all its sessions (a node crash, as far as SSH sees it)."""
        if node.guest:  # all but the lab's own shared connection, which runs the script
            self.run(node, "sh", "-c", GUEST_SSHD_STOP)
            return
        if node.sshd_pid and self._owns(node, node.sshd_pid):
            kill_tree(node.sshd_pid)
        proc = self._procs.pop(node.name, None)
        if proc is not None:
            proc.wait()
        node.sshd_pid = None
        self._save()

    def regenerate_host_key(self, node: LabNode) -> str:
        """Give the node a new host key (restarting its sshd); return the new fingerprint."""
        self.stop_sshd(node)
        node.host_key = fingerprint_of(keygen(node.host_key_file))
        self.start_sshd(node)
        return node.host_key

    def create_dataset(self, node: LabNode, name: str, files: dict[str, bytes]) -> tuple[str, Path]:
        """Create `<pool>/<name>` on the node holding `files`; return (dataset, mountpoint)."""
        if not node.pool:
            raise LabError(f"node {node.name} has no pool")
        dataset = f"{node.pool}/{name}"
        sh(tool("zfs"), "create", "-p", dataset)
        found = sh(tool("zfs"), "get", "-H", "-o", "value", "mountpoint", dataset).stdout
        mountpoint = Path(found.strip())
        for relative, data in files.items():
            (mountpoint / relative).parent.mkdir(parents=True, exist_ok=True)
            (mountpoint / relative).write_bytes(data)
        return dataset, mountpoint

    def run(self, node: LabNode, *argv: str, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run a command on the node: here for zfs-fuse nodes, over ssh in an OpenZFS guest."""
        full = [*self.ssh_argv(node), shlex.join(argv)] if node.guest else list(argv)
        proc = subprocess.run(full, input=input, capture_output=True,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} on {node.name} failed: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
        return proc

    def create_zvol(self, node: LabNode, name: str, size: str, data: bytes) -> tuple[str, str]:
        """Create the zvol `<pool>/<name>` on an OpenZFS node, `data` written at its start.

        Returns (dataset, device); the device exists once `udevadm settle` returns.
        """
        if not (node.pool and node.guest):
            raise LabError(f"node {node.name} has no OpenZFS pool")
        dataset = f"{node.pool}/{name}"
        device = f"/dev/zvol/{dataset}"
        self.run(node, "sh", "-c", 'zfs create -V "$1" "$2" && udevadm settle && '
                 'dd of="$3" bs=64k conv=notrunc,fsync status=none', "sh", size, dataset,
                 device, input=data)  # one ssh call, not three
        return dataset, device

    def link_guests(self, puller: LabNode, source: LabNode) -> str:
        """Let `puller`'s guest ssh to `source`'s guest (direct mode); return the path of
        the ssh config, in `puller`, for `esbackup node update --ssh-config`.

        The puller dials the source's registered address and port (OpenSSH `-p`);
        the config sends that to PEER_ADDRESS, which the puller's guestfwd joins
        to the source's loopback forward (the peer file). Both guests are made
        from one image, so the image's client key and host key are the trust.
        """
        if not (puller.guest and source.guest):
            raise LabError("link_guests joins two OpenZFS guests")
        image = openzfs_guest.ensure_image()
        self.unlink_guests(puller)
        (Path(puller.guest["dir"]) / PEER_FILE).write_text(f"{source.address} {source.port}\n")
        config = "/root/.ssh/esblab_direct.conf"
        self.run(puller, "sh", "-c", GUEST_LINK_SETUP, "sh", source.address,
                 openzfs_guest.PEER_ADDRESS, image.host_key_pub.read_text().strip(),
                 input=image.client_key.read_bytes())
        return config

    def unlink_guests(self, node: LabNode) -> None:
        """Forget the peer of the node's guest (a later lease starts unlinked)."""
        if node.guest:
            for name in (PEER_FILE, f"{PEER_FILE}.log"):
                (Path(node.guest["dir"]) / name).unlink(missing_ok=True)

    def peer_dials(self, node: LabNode) -> int:
        """How many connections the node's guest made to its peer since link_guests."""
        log = Path(node.guest["dir"]) / f"{PEER_FILE}.log"
        return len(log.read_text().splitlines()) if log.is_file() else 0

    def ssh_argv(self, node: LabNode) -> list[str]:
        """OpenSSH client argv for the node (strict host key checking, the lab's key only)."""
        # a guest's TCG CPU makes each ssh handshake slow: share the connection that
        # _lease_guest opens (without it, ssh simply connects on its own)
        shared = ["-o", "ControlMaster=no", "-o", f"ControlPath={control_path(node.guest['dir'])}"
                  ] if node.guest else []
        return ["ssh", "-F", "/dev/null", "-i", node.key_path, "-p", str(node.port),
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", *shared,
                f"{node.user}@{node.address}"]

    def _try_sshd(self, node: LabNode, address: str, port: int) -> str | None:
        """Start sshd on address:port; None when it answers, else the reason it failed."""
        node.address, node.port = address, port
        self._write_config(node)
        log = Path(node.dir) / "sshd.log"
        with log.open("w") as err:
            proc = subprocess.Popen([SSHD, "-D", "-f", str(node.config), "-E", str(log)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if sshd_answers(address, port):
                node.sshd_pid = proc.pid
                self._procs[node.name] = proc
                self._write_known_hosts()
                return None
            time.sleep(0.02)
        if proc.poll() is None:
            kill_tree(proc.pid)
        proc.wait()
        return log.read_text().strip() or "no answer"

    def _write_config(self, node: LabNode) -> None:
        node.config.write_text("\n".join([  # sshd takes the first value of a keyword
            *(f"{key} {value}" for key, value in node.sshd_options.items()),
            f"ListenAddress {node.address}:{node.port}",
            f"HostKey {node.host_key_file}",
            f"PidFile {Path(node.dir) / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            # Debian's bash reads ~/.bashrc for ssh commands unless it is a nested shell;
            # root's here runs `pyenv init` (0.25 s a command), unlike a real node's.
            "SetEnv SHLVL=1",
            "",
        ]))

    def _write_known_hosts(self) -> None:
        lines = []
        for node in self.nodes.values():
            if node.address:
                host = node.address if node.port == 22 else f"[{node.address}]:{node.port}"
                key = " ".join(Path(f"{node.host_key_file}.pub").read_text().split()[:2])
                lines.append(f"{host} {key}\n")
        self.known_hosts.write_text("".join(lines))

    def boot_guests(self, count: int) -> None:
        """Have `count` idle guests, booting the missing ones side by side (a TCG boot
        mostly waits on one vCPU at a time, so two boots take far less than twice one)."""
        missing = count - len(self.idle_guests)
        if missing <= 0:
            return
        image = openzfs_guest.ensure_image()
        with ThreadPoolExecutor(missing) as pool:
            booted = list(pool.map(lambda _: self._boot_guest(image), range(missing)))
        with self._lock:
            self.idle_guests.extend(booted)
            self._save()

    def _lease_guest(self, node: LabNode, *, pool: bool) -> None:
        """Give the node an idle guest (or boot one) and, with `pool`, the guest's pool."""
        image = openzfs_guest.ensure_image()
        guest = self.idle_guests.pop() if self.idle_guests else self._boot_guest(image)
        node.guest, node.flavour = guest, "openzfs"
        node.address, node.port = guest["address"], guest["port"]
        node.key_path = str(image.client_key)
        shutil.copy(image.host_key_pub, f"{node.host_key_file}.pub")
        node.host_key = fingerprint_of(image.host_key_pub.read_text())
        self._write_known_hosts()
        if pool:
            node.pool, node.mountpoint = guest["pool"], f"/{guest['pool']}"
        self._save()

    def _boot_guest(self, image: openzfs_guest.GuestImage) -> dict[str, Any]:
        """Boot a new guest on a free 127.0.0.x address; wait for its sshd; make its pool.

        The pool lives as long as the guest: a node that leases the guest gets
        it, and its release empties it (GUEST_POOL_RESET) rather than making a
        new one, which took seconds of TCG each time.
        """
        with self._lock:
            (self.workdir / "guests").mkdir(exist_ok=True)
            guest_dir = Path(tempfile.mkdtemp(prefix="g", dir=self.workdir / "guests"))
        errors = []
        for address, port in itertools.islice(candidate_addresses(), 20):
            if port != 22:
                continue  # guest to guest, direct mode dials port 22 (see link_guests)
            proc = openzfs_guest.boot(image, guest_dir, address, port, pool_size="512M",
                                      peer_file=guest_dir / PEER_FILE)
            guest = {"dir": str(guest_dir), "pid": proc.pid, "address": address, "port": port,
                     "pool": f"esblab_{guest_dir.name}"}
            with self._lock:
                self._booting.append(guest)  # saved first, so close() stops a half-booted guest
                self._save()
            known_hosts = guest_dir / "known_hosts"
            known_hosts.write_text(f"{address} {image.host_key_pub.read_text().strip()}\n")
            argv = ["ssh", "-F", "/dev/null", "-i", str(image.client_key), "-p", str(port),
                    "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
                    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", f"root@{address}"]
            try:
                openzfs_guest.wait_for_ssh(proc, argv, guest_dir)
            except openzfs_guest.GuestError as exc:
                with self._lock:
                    self._booting.remove(guest)
                proc.wait()
                errors.append(str(exc))
                if "hostfwd" in str(exc) or "in use" in str(exc):
                    continue  # the address was taken: try another
                raise LabError(f"OpenZFS guest did not boot: {exc}") from exc
            # one shared connection for every later command (each handshake is slow in TCG)
            control = ["-o", "ControlMaster=yes", "-o", f"ControlPath={control_path(guest_dir)}",
                       "-o", "ControlPersist=yes", "-f", "-N"]
            subprocess.run([*argv[:-1], *control, argv[-1]], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            made = subprocess.run([*argv, shlex.join(
                ["zpool", "create", "-f", "-m", f"/{guest['pool']}", guest["pool"], "/dev/vdb"])],
                capture_output=True, stdin=subprocess.DEVNULL)
            with self._lock:
                self._booting.remove(guest)
            if made.returncode != 0:
                self._stop_guest(guest)
                raise LabError(f"zpool create in a guest failed: {made.stderr.decode().strip()}")
            return guest
        raise LabError(f"OpenZFS guest did not boot: {errors[-1] if errors else 'no address'}")

    def _empty_guest_pool(self, node: LabNode) -> bool:
        """Empty the pool of a guest node (GUEST_POOL_RESET); the node keeps no pool if it
        worked. False if it did not: the guest is then not reused."""
        reset = self.run(node, "sh", "-c", GUEST_POOL_RESET, "sh", node.pool, check=False)
        if reset.returncode == 0:
            node.pool = node.mountpoint = None
        return reset.returncode == 0

    def _release_guest(self, node: LabNode) -> None:
        """Empty the guest's pool; keep the guest for the next node, or stop it."""
        guest = node.guest
        clean = not node.pool or self._empty_guest_pool(node)
        node.pool = node.mountpoint = None
        self.unlink_guests(node)
        node.guest = None
        if clean and self.reuse_guests and alive(guest["pid"]):
            self.idle_guests.append(guest)
        else:
            self._stop_guest(guest)
        self._save()

    def _stop_guest(self, guest: dict[str, Any]) -> None:
        control = control_path(guest["dir"])  # the shared connection's master
        if os.path.exists(control):
            subprocess.run(["ssh", "-o", f"ControlPath={control}", "-O", "exit", "x"],
                           capture_output=True, stdin=subprocess.DEVNULL, check=False)
        if openzfs_guest.owns(guest["pid"], guest["dir"]):
            kill_tree(guest["pid"])
        shutil.rmtree(guest["dir"], ignore_errors=True)

    def _owns(self, node: LabNode, pid: int) -> bool:
        """True if pid is this node's sshd (a pid from a state file may have been reused)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # sshd rewrites it as one string
        except OSError:
            return False
        return str(node.config).encode() in cmdline

    def _create_pool(self, node: LabNode, size: str) -> None:
        self._hold_zfs_fuse()
        pool = f"esblab_{node.name}_{secrets.token_hex(3)}"
        image = self.workdir / "pools" / f"{pool}.img"
        mountpoint = self.workdir / "mnt" / pool
        image.parent.mkdir(exist_ok=True)
        sh("truncate", "-s", size, str(image))
        node.pool_file = str(image)
        self._save()
        sh(tool("zpool"), "create", "-m", str(mountpoint), pool, str(image))
        node.pool, node.mountpoint = pool, str(mountpoint)
        self._save()

    def _destroy_pool(self, node: LabNode) -> None:
        """`zpool destroy -f` this node's pool (retrying while zfs-fuse says busy)."""
        self._hold_zfs_fuse()
        for attempt in range(10):
            proc = sh(tool("zpool"), "destroy", "-f", node.pool, check=False)
            pools = sh(tool("zpool"), "list", "-H", "-o", "name").stdout.split()
            if proc.returncode == 0 or node.pool not in pools:
                break
            time.sleep(0.3 * (attempt + 1))
        else:
            raise LabError(f"zpool destroy {node.pool} failed: {proc.stderr.strip()}")
        Path(node.pool_file).unlink(missing_ok=True)
        if node.mountpoint and os.path.isdir(node.mountpoint):
            os.rmdir(node.mountpoint)
        node.pool = node.pool_file = node.mountpoint = None

    def _save(self) -> None:
        state = {"client_key": str(self.key_path), "known_hosts": str(self.known_hosts),
                 "nodes": [asdict(n) for n in self.nodes.values()],
                 "idle_guests": self.idle_guests + self._booting}
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`up --dir DIR NAME...` builds a lab and prints its state; `down --dir DIR` removes it."""
    parser = argparse.ArgumentParser(prog="python -m lab.nodes",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="start nodes, print the lab's JSON state")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--pool-size", default="512M",
                    help="size of each node's pool file (0: no pool)")
    up.add_argument("--openzfs", action="store_true",
                    help="make each node an OpenZFS 2.x QEMU guest (builds its image once)")
    up.add_argument("names", nargs="+", metavar="NAME")
    down = sub.add_parser("down", help="remove every node, pool and file of the lab")
    down.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.action == "down":
            Lab.load(args.dir).close()
            return 0
        if (args.dir / STATE_FILE).exists():
            raise LabError(f"a lab already lives in {args.dir}: take it down first")
        lab = Lab(args.dir, zfs=not args.openzfs)
        if args.openzfs:
            lab.boot_guests(len(args.names))
        for name in args.names:
            lab.add_node(name, pool_size=None if args.pool_size == "0" else args.pool_size,
                         openzfs=args.openzfs)
        print((lab.workdir / STATE_FILE).read_text(), end="")
    except (LabError, openzfs_guest.GuestError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
