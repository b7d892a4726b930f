"""A REAL libvirt compute node for the lab: libvirtd running a TCG domain whose
disk image lives in a VM's ZFS dataset and whose guest runs the real qemu-ga.

The guest is lab/qga_guest.py's (cached kernel + initramfs: /init formats the
virtio disk as ext4 on first boot, mounts it on /data, runs qemu-ga on the
virtio-serial port that libvirt connects). A lab compute node is sshd on
127.0.0.x of this same host, so `virsh` run through the node's SSH reaches
the same libvirtd: esbackup's hypervisor `libvirt` code is exercised as on a
real node, with virsh's default connection (qemu:///system as root).

There is no systemd here: virtlogd and libvirtd are started by hand unless
they run, and stopped again by the `Libvirt` that started them when no other
lab run has domains on them (then they stay, like the shared zfs-fuse).
QEMU runs as root without a security driver or cgroups (`QEMU_SETTINGS`),
always TCG (this machine's /dev/kvm hangs guests), without a network device.

    with Libvirt() as libvirt:
        domain = libvirt.domain("esb-web01", VM_UUID, disk)   # defined, not started
        domain.start()                                          # agent answers
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lab.qga_guest import (
    AGENT_PORT,
    CACHE_DIR,
    GuestError,
    GuestExec,
    build_guest,
    ensure_qemu,
)

PACKAGES = ("libvirt-daemon-system", "libvirt-daemon-driver-qemu", "libvirt-clients")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
QEMU_SETTINGS = {"user": '"root"', "group": '"root"', "security_driver": '"none"',
                 "cgroup_controllers": "[ ]"}
SOCKET = Path("/run/libvirt/libvirt-sock")
DISK_SIZE = 64 * 2**20
START_TIMEOUT = 30.0


class Libvirt:
    """The host's libvirtd (started here unless it runs) and the domains made through it."""

    def __init__(self, *, cache_dir: Path = CACHE_DIR) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="esb-libvirt-"))
        self.cache_dir = cache_dir
        self.started: list[int] = []  # pids of the daemons started here
        self.domains: list[LibvirtDomain] = []

    def __enter__(self) -> Libvirt:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        ensure_libvirt()
        ensure_qemu()
        self.kernel, self.initrd = build_guest(self.cache_dir)
        for daemon in ("virtlogd", "libvirtd"):  # the qemu driver needs virtlogd's socket
            if _pgrep(daemon) is None:
                pidfile = self.run_dir / f"{daemon}.pid"
                _run(_tool(daemon), "-d", "-p", str(pidfile))
                self.started.append(_wait_pid(pidfile))
        deadline = time.monotonic() + START_TIMEOUT
        while virsh("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise GuestError(f"libvirtd does not answer on {SOCKET}")
            time.sleep(0.2)

    def domain(self, name: str, uuid: str, disk: Path) -> LibvirtDomain:
        """Define a domain (not started) whose disk is `disk`, a sparse 64 MiB file if new."""
        if not disk.exists():
            with open(disk, "wb") as f:
                f.truncate(DISK_SIZE)
        domain = LibvirtDomain(name, uuid, disk, self.run_dir / f"{name}.console.log")
        xml = self.run_dir / f"{name}.xml"
        xml.write_text(domain.xml(self.kernel, self.initrd))
        self.domains.append(domain)
        virsh("define", str(xml))
        return domain

    def remove(self, domain: LibvirtDomain) -> None:
        """Power the domain off and undefine it (its disk stays where it is)."""
        domain.destroy()
        virsh("undefine", domain.name, check=False)
        self.domains.remove(domain)

    def close(self) -> None:
        """Remove the domains made here; stop the daemons started here unless another
        lab run has domains on them by now."""
        for domain in list(self.domains):
            self.remove(domain)
        if self.started and not virsh("list", "--all", "--name", check=False).stdout.strip():
            for pid in reversed(self.started):
                _stop(pid)
        self.started.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)


class LibvirtDomain(GuestExec):
    """A TCG domain with a virtio disk and the guest agent's channel (libvirt owns its socket)."""

    def __init__(self, name: str, uuid: str, disk: Path, console_log: Path) -> None:
        self.name, self.uuid, self.disk, self.console_log = name, uuid, disk, console_log

    def xml(self, kernel: Path, initrd: Path) -> str:
        # +rdrand: the guest CRNG is ready at once (else mke2fs waits seconds for entropy)
        return f"""<domain type='qemu'>
  <name>{escape(self.name)}</name>
  <uuid>{escape(self.uuid)}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(kernel))}</kernel><initrd>{escape(str(initrd))}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model>
    <feature policy='require' name='rdrand'/></cpu>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file={quoteattr(str(self.disk))}/><target dev='vda' bus='virtio'/></disk>
    <channel type='unix'><target type='virtio' name='{AGENT_PORT}'/></channel>
    <serial type='file'><source path={quoteattr(str(self.console_log))}/></serial>
  </devices>
</domain>
"""

    def state(self) -> str:
        return virsh("domstate", self.name).stdout.strip()

    def start(self, timeout: float = 90.0) -> None:
        """Boot and wait until the guest agent answers."""
        virsh("start", self.name)
        deadline = time.monotonic() + timeout
        while True:
            proc = virsh("qemu-agent-command", self.name, '{"execute":"guest-ping"}',
                         check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                tail = self.console_log.read_text(errors="replace")[-1500:] \
                    if self.console_log.exists() else ""
                raise GuestError(f"agent of {self.name} silent after {timeout}s: "
                                 f"{proc.stderr.strip()} | {tail}")
            time.sleep(0.5)

    def destroy(self) -> None:
        """Power off at once (the lab guest has no ACPI shutdown); no-op when shut off."""
        if self.state() != "shut off":
            virsh("destroy", self.name)

    def call(self, command: str, arguments: dict | None = None, timeout: float = 30.0):
        """One guest agent command through libvirt; its "return" value."""
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        out = virsh("qemu-agent-command", self.name, "--timeout", str(round(timeout)),
                    json.dumps(request)).stdout
        return json.loads(out)["return"]


def unique_name(prefix: str = "esb") -> str:
    """A domain name no other lab run uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """virsh on the host's system connection (the one esbackup's plain `virsh` gets as root)."""
    proc = subprocess.run([_tool("virsh"), "-c", "qemu:///system", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    if check and proc.returncode != 0:
        raise GuestError(f"virsh {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def ensure_libvirt() -> None:
    """Install libvirt's packages when missing; let its qemu driver run QEMU as root
    without a security driver or cgroups (settings appended to qemu.conf once)."""
    if not (all(shutil.which(p, path=_SBIN) for p in ("virsh", "libvirtd", "virtlogd"))
            and QEMU_CONF.exists()):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        argv = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-o", "Dpkg::Options::=--force-confold",
                "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise GuestError(f"apt-get install {' '.join(PACKAGES)}: {proc.stderr.strip()}")
    text = QEMU_CONF.read_text() if QEMU_CONF.exists() else ""
    missing = [f"{key} = {value}" for key, value in QEMU_SETTINGS.items()
               if f"\n{key} = {value}\n" not in f"\n{text}"]
    if missing:
        if _pgrep("libvirtd") is not None:
            raise GuestError(f"libvirtd runs without the lab's settings in {QEMU_CONF}")
        QEMU_CONF.parent.mkdir(parents=True, exist_ok=True)
        with QEMU_CONF.open("a") as f:
            f.write("\n# esbackup lab: QEMU as root, no security driver, no cgroups\n")
            f.write("".join(line + "\n" for line in missing))


_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _tool(name: str) -> str:
    path = shutil.which(name, path=_SBIN)
    if path is None:
        raise GuestError(f"{name} not found")
    return path


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise GuestError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")


def _pgrep(name: str) -> int | None:
    proc = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return int(proc.stdout.split()[0]) if proc.returncode == 0 else None


def _wait_pid(pidfile: Path, timeout: float = 10.0) -> int:
    """The pid a daemon wrote once it is up."""
    deadline = time.monotonic() + timeout
    while not (pidfile.exists() and pidfile.read_text().strip()):
        if time.monotonic() > deadline:
            raise GuestError(f"no pid in {pidfile}")
        time.sleep(0.05)
    return int(pidfile.read_text())


def _stop(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a daemon started here, SIGKILL it if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)

