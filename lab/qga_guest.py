"""A REAL qemu-ga inside a throwaway TCG guest, driven over its unix socket.

The guest is built from Debian packages only: a cloud kernel and an initramfs
holding busybox, qemu-ga, mke2fs and their libraries. Its /init formats the
virtio disk as ext4, mounts it on /data (the file system qemu-ga freezes)
and runs qemu-ga on the virtio-serial port. The build is cached (see
CACHE_DIR); boot to a guest-sync answer takes a few seconds.

qemu-ga never runs on the host (its freeze would freeze the host), and the
guest always runs with ``-accel tcg``: this machine's /dev/kvm hangs guests.

    with QgaGuest() as guest:
        QgaClient(guest.socket_path).status()

Only one client can talk to the agent at a time (QEMU's chardev serves one
connection): the helpers here connect per call and close again.
"""
from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from esbackup.drivers.freeze_snapshot import AgentError, QgaClient

CACHE_DIR = Path(os.environ.get("ESBACKUP_QGA_CACHE", "/var/cache/esbackup-lab/qga-guest"))
QEMU = "qemu-system-x86_64"
KERNEL_META = "linux-image-cloud-amd64"
PACKAGES = ("qemu-guest-agent", "busybox-static", "e2fsprogs", "libext2fs2", "libcom-err2",
            "libblkid1", "libuuid1", "libc6", "libglib2.0-0", "libpcre2-8-0", "libnuma1",
            "libudev1", "liburing2")
# the run-time closure of qemu-ga and mke2fs (found with `readelf -d`, never by running them)
LIBS = tuple(f"lib/x86_64-linux-gnu/{name}" for name in (
    "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libext2fs.so.2", "libcom_err.so.2",
    "libe2p.so.2")) + tuple(f"usr/lib/x86_64-linux-gnu/{name}" for name in (
        "libglib-2.0.so.0", "libgmodule-2.0.so.0", "libpcre2-8.so.0", "libudev.so.1",
        "libnuma.so.1", "liburing.so.2", "libblkid.so.1", "libuuid.so.1"))
# the cloud kernel has ext4 built in but virtio as modules, loaded in this order
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "virtio_blk", "virtio_console")
AGENT_PORT = "org.qemu.guest_agent.0"

INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin /run /var/run /data /tmp
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in {" ".join(MODULES)}; do
  insmod /lib/modules/$m.ko || echo "qga-guest: insmod $m failed"
done
ports() {{ ls /sys/class/virtio-ports/vport* >/dev/null 2>&1; }}
i=0; while [ $i -lt 100 ] && {{ [ ! -b /dev/vda ] || ! ports; }}; do sleep 0.1; i=$((i+1)); done
mkdir -p /dev/virtio-ports   # no udev: name the ports ourselves
for p in /sys/class/virtio-ports/vport*; do
  ln -sf ../$(basename $p) /dev/virtio-ports/$(cat $p/name)
done
if ! mount -t ext4 /dev/vda /data 2>/dev/null; then
  mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 /dev/vda && mount -t ext4 /dev/vda /data
fi
echo "hello from guest" > /data/hello.txt; sync
echo "qga-guest: starting qemu-ga, uptime $(cut -d' ' -f1 /proc/uptime)"
while true; do   # PID 1 must never exit
  qemu-ga -m virtio-serial -p /dev/virtio-ports/{AGENT_PORT} -t /run
  echo "qga-guest: qemu-ga exited rc=$?, restarting"; sleep 1
done
"""
BUILD_KEY = hashlib.sha256("\n".join((INIT, *PACKAGES, *LIBS, *MODULES)).encode()).hexdigest()[:16]


class GuestError(RuntimeError):
    """The lab guest could not be built, booted or reached."""


@dataclass
class ExecResult:
    exitcode: int
    stdout: str
    stderr: str


def ensure_qemu() -> str:
    """Path of qemu-system-x86_64, installing Debian's package when it is missing."""
    if not shutil.which(QEMU):
        argv = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y",
                "--no-install-recommends", "qemu-system-x86"]
        _apt(argv)
    path = shutil.which(QEMU)
    if path is None:
        raise GuestError(f"{QEMU} is not installed and could not be installed")
    return path


def _apt(argv: list[str], cwd: Path | None = None) -> None:
    """Run an apt-get command, refreshing the package lists once if it fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(2):
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode == 0:
            return
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
    raise GuestError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-2000:]}")


def kernel_package() -> str:
    """The versioned kernel package the cloud kernel metapackage points at now."""
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "depends", KERNEL_META],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.strip().startswith("Depends: linux-image-"):
                return line.split(":", 1)[1].strip()
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
    raise GuestError(f"apt-cache found no kernel behind {KERNEL_META}")


def build_guest(cache_dir: Path = CACHE_DIR) -> tuple[Path, Path]:
    """(kernel, initramfs), built once per BUILD_KEY and then reused.

    A lock file keeps concurrent builders (two test runs) from racing; a new
    build removes the builds of older keys."""
    target = cache_dir / BUILD_KEY
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "initramfs.gz").exists():
            work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir))
            try:
                _build(work)
                for old in cache_dir.iterdir():
                    if old.is_dir() and old != work:
                        shutil.rmtree(old)
                (work / "out").rename(target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return target / "vmlinuz", target / "initramfs.gz"


def _build(work: Path) -> None:
    """Download and unpack the guest packages (never install them), pack the initramfs."""
    debs, x, root, out = (work / d for d in ("debs", "x", "root", "out"))
    for d in (debs, x, out):
        d.mkdir()
    _apt(["apt-get", "download", "-q", kernel_package(), *PACKAGES], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(x)], check=True)
    kernels = sorted((x / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise GuestError("no kernel in the downloaded packages")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    _fill_root(x, root, x / "lib/modules" / version)
    _pack(x / "bin/busybox", root, out / "initramfs.gz")
    shutil.copy(kernels[-1], out / "vmlinuz")


def _fill_root(x: Path, root: Path, modules: Path) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "lib/modules", "lib64", "etc"):
        (root / d).mkdir(parents=True)
    for rel in ("bin/busybox", "usr/sbin/qemu-ga", "sbin/mke2fs", "etc/mke2fs.conf", *LIBS):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(x / rel, root / rel)  # follows the packages' soname symlinks
    (root / "sbin/mkfs.ext4").symlink_to("mke2fs")
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    for name in MODULES:
        found = next(modules.rglob(f"{name}.ko"), None)
        if found is None:
            raise GuestError(f"kernel module {name}.ko not found under {modules}")
        shutil.copy(found, root / "lib/modules")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)


def _pack(busybox: Path, root: Path, dest: Path) -> None:
    """newc cpio of root, written by the (static) busybox from the guest packages."""
    listing = subprocess.run([str(busybox), "find", "."], cwd=root, check=True,
                             capture_output=True).stdout
    archive = subprocess.run([str(busybox), "cpio", "-o", "-H", "newc"], cwd=root, check=True,
                             input=listing, capture_output=True).stdout
    dest.write_bytes(gzip.compress(archive, compresslevel=6))


class GuestExec:
    """Shell commands in a lab guest through its agent's guest-exec; subclasses
    provide `call(command, arguments)`, one agent command returning its "return"."""

    def call(self, command: str, arguments: dict | None = None, timeout: float = 30.0):
        raise NotImplementedError

    def exec_start(self, script: str) -> int:
        """Start `sh -c script` in the guest (guest-exec); returns its guest pid."""
        args = {"path": "/bin/sh", "arg": ["-c", script], "capture-output": True}
        return self.call("guest-exec", args)["pid"]

    def exec_wait(self, pid: int, timeout: float = 30.0) -> ExecResult:
        deadline = time.monotonic() + timeout
        while not (status := self.call("guest-exec-status", {"pid": pid}))["exited"]:
            if time.monotonic() > deadline:
                raise GuestError(f"guest command {pid} still running after {timeout}s")
            time.sleep(0.1)
        return ExecResult(status.get("exitcode", -1), _b64(status.get("out-data")),
                          _b64(status.get("err-data")))

    def run_in_guest(self, script: str, timeout: float = 30.0) -> ExecResult:
        return self.exec_wait(self.exec_start(script), timeout)


class QgaGuest(GuestExec):
    """A throwaway TCG guest running the real qemu-ga; a context manager.

    `disk` is the guest's ext4 disk image (created sparse when missing): put it
    on a ZFS dataset and a snapshot of that dataset captures the guest's disk."""

    def __init__(self, disk: str | Path | None = None, *, boot_timeout: float = 90.0,
                 cache_dir: Path = CACHE_DIR):
        self.run_dir = Path(tempfile.mkdtemp(prefix="qga-guest-"))
        self.disk = Path(disk) if disk else self.run_dir / "disk.raw"
        self.socket_path = str(self.run_dir / "qga.sock")
        self.console_log = self.run_dir / "console.log"
        self.boot_timeout = boot_timeout
        self.cache_dir = cache_dir
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> QgaGuest:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Boot and wait until the agent answers guest-sync."""
        qemu = ensure_qemu()
        kernel, initrd = build_guest(self.cache_dir)
        if not self.disk.exists():
            with open(self.disk, "wb") as f:
                f.truncate(64 * 2**20)
        log = open(self.run_dir / "qemu.log", "wb")
        self._proc = subprocess.Popen(self._qemu_argv(qemu, kernel, initrd), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            self._wait_for_agent()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill qemu and remove the run directory (not a disk given by the caller)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def call(self, command: str, arguments: dict | None = None, timeout: float = 30.0):
        """One agent command on a fresh connection."""
        with QgaClient(self.socket_path, timeout) as client:
            return client.call(command, arguments)

    def _qemu_argv(self, qemu: str, kernel: Path, initrd: Path) -> list[str]:
        # +rdrand: the guest CRNG is ready at once (else mke2fs waits seconds for entropy)
        return [qemu, "-accel", "tcg", "-cpu", "qemu64,+rdrand", "-m", "256", "-smp", "1",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", "console=ttyS0 quiet panic=-1",
                "-serial", f"file:{self.console_log}",
                "-drive", f"file={self.disk},format=raw,if=virtio",
                "-chardev", f"socket,path={self.socket_path},server=on,wait=off,id=qga0",
                "-device", "virtio-serial",
                "-device", f"virtserialport,chardev=qga0,name={AGENT_PORT}"]

    def _wait_for_agent(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while True:
            if self._proc.poll() is not None:
                raise GuestError(f"qemu exited with {self._proc.returncode}: {self._tail()}")
            try:
                with QgaClient(self.socket_path) as client:
                    client.sync(min(5.0, max(0.1, deadline - time.monotonic())))
                return
            except AgentError as exc:
                if time.monotonic() > deadline:
                    raise GuestError(f"agent silent after {self.boot_timeout}s ({exc}): "
                                     f"{self._tail()}") from exc
                time.sleep(0.1)

    def _tail(self) -> str:
        logs = [self.run_dir / "qemu.log", self.console_log]
        return " | ".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())


def _b64(data: str | None) -> str:
    return base64.b64decode(data).decode(errors="replace") if data else ""
