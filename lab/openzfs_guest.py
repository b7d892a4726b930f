"""Real OpenZFS 2.x nodes: throwaway QEMU TCG guests built from Debian packages only.

The image is Debian 12 (debootstrap, with zfsutils-linux from contrib) booted
on Debian's own kernel, whose zfs.ko the host's zfs-dkms built (see
scripts/install-deps.sh). It is built once and cached under CACHE_DIR, keyed
by the versions of the kernel, zfs-dkms and this recipe; every guest boots a
copy-on-write overlay of it plus a fresh pool disk, so nothing a test does
survives the guest.

Networking is QEMU user mode with `restrict=on`: the guest reaches nothing
outside; its sshd is forwarded to a 127.0.0.x address of the host only. The
apt mirror is the one the host's apt sources name; it is never written here.

KVM hangs guests on this machine kind: always `-accel tcg`.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(os.environ.get("ESBACKUP_LAB_CACHE", "/var/cache/esbackup-lab"))
BASE_RECIPE = "openzfs-guest 1"  # bump when ensure_base_root changes: its cache key does
RECIPE = "openzfs-guest 2"  # bump when _build changes: the image's cache key changes with it
GUEST_PACKAGES = ("systemd-sysv", "udev", "kmod", "openssh-server", "zfsutils-linux", "python3",
                  "ifupdown", "iproute2", "gzip", "bzip2", "pv", "mbuffer")
HOST_PACKAGES = ("zfs-dkms", "debootstrap", "qemu-utils", "qemu-system-x86")
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
ROOT_SIZE = "2G"  # sparse; the root file system uses about 600 MiB
BOOT_TIMEOUT = float(os.environ.get("ESBACKUP_GUEST_BOOT_TIMEOUT", "600"))
# Units a test guest never needs; TCG makes each cost seconds of boot (systemd-analyze
# blame in a guest: udev-settle and ifupdown-pre waited 37 s each, the gettys, timers
# and pseudo-file-system mounts a few seconds each). Pools are made after boot, so
# none of zfs's own import/mount units is needed either; zfs.ko is loaded by
# modules-load.d.
MASKED_UNITS = (
    "systemd-udev-settle.service", "ifupdown-pre.service", "systemd-journal-flush.service",
    "getty@tty1.service", "serial-getty@ttyS0.service", "getty-static.service",
    "e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer", "apt-daily.timer",
    "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "systemd-pstore.service",
    "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "dev-hugepages.mount", "dev-mqueue.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "sys-kernel-config.mount", "sys-fs-fuse-connections.mount",
    "modprobe@loop.service", "modprobe@dm_mod.service", "modprobe@fuse.service",
    "modprobe@efi_pstore.service", "modprobe@configfs.service", "modprobe@drm.service",
    "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
    "zfs-load-module.service", "zfs-import-cache.service", "zfs-import-scan.service",
    "zfs-mount.service", "zfs-share.service", "zfs-volume-wait.service", "zfs-zed.service",
)
# Every ssh session into a guest costs its sshd a fork under TCG; PAM's session
# modules (loginuid, motd, env, limits) added 0.1-0.2 s to each.
SSHD_CONFIG = """PermitRootLogin prohibit-password
UseDNS no
UsePAM no
PrintMotd no
PrintLastLog no
"""
PEER_ADDRESS = "10.0.2.100"  # in a guest: the other guest's sshd (guestfwd)
# The TSC as clocksource: with two vCPUs the kernel calls their TSCs unsynchronized and
# falls back to the HPET, whose every read is an emulated MMIO access (and no vDSO);
# measured in a guest: b2sum of a 32 MiB zvol 2.97 -> 1.19 s, a 4 MiB zvol send|recv
# 1.0 -> 0.68 s. A test guest's clock drifting a little is harmless.
KERNEL_ARGS = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet mitigations=off "
               "tsc=reliable clocksource=tsc")
# eth0 comes up when udev sees it (ifup@eth0), not after a whole `udevadm settle`
INTERFACES = """auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet static
  address 10.0.2.15/24
  gateway 10.0.2.2
"""


class GuestError(RuntimeError):
    """The guest image could not be built or a guest did not boot."""


def _run(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    if proc.returncode != 0:
        raise GuestError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()[-400:]}")
    return proc


def host_mirror() -> str:
    """The Debian mirror the host's own apt sources use (deb822 or one-line format)."""
    for source in APT_SOURCES:
        if not source.is_file():
            continue
        text = source.read_text()
        found = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
        if found:
            return found.group(1)
    raise GuestError("no Debian mirror in the host's apt sources")


def kernel_release() -> str:
    """The newest Debian kernel for which the host's zfs-dkms built zfs.ko."""
    built = sorted(Path("/lib/modules").glob("*-amd64/updates/dkms/zfs.ko*"),
                   key=lambda p: [int(x) if x.isdigit() else x
                                  for x in re.split(r"(\d+)", p.parts[3])])
    if not built:
        raise GuestError("no zfs.ko built for a Debian kernel: run scripts/install-deps.sh")
    return built[-1].parts[3]


def package_version(name: str) -> str:
    return _run("dpkg-query", "-W", "-f", "${Version}", name).stdout


def image_key(release: str) -> str:
    """Cache key: the recipe, the guest package list, the kernel and zfs-dkms versions."""
    parts = [RECIPE, ",".join(GUEST_PACKAGES), release,
             package_version(f"linux-image-{release}"), package_version("zfs-dkms")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class GuestImage:
    """A built image: kernel, initrd, root file system, the key that logs in as root."""

    dir: Path

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def root(self) -> Path:
        return self.dir / "root.img"

    @property
    def client_key(self) -> Path:
        return self.dir / "client_ed25519"

    @property
    def host_key_pub(self) -> Path:
        return self.dir / "ssh_host_ed25519_key.pub"

    @property
    def versions(self) -> dict[str, str]:
        return json.loads((self.dir / "versions.json").read_text())


def ensure_base_root() -> Path:
    """debootstrap's Debian 12 root with the guest packages, cached as a tar.

    It does not depend on the kernel, so it can be made while dkms builds.
    """
    key = hashlib.sha256(f"{BASE_RECIPE}\n{','.join(GUEST_PACKAGES)}".encode()).hexdigest()[:12]
    tar = CACHE_DIR / f"bookworm-root-{key}.tar"
    if tar.is_file():
        return tar
    CACHE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(CACHE_DIR / ".root-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tar.is_file():
            work = Path(tempfile.mkdtemp(prefix="bookworm-root.", dir=CACHE_DIR))
            try:
                _run("debootstrap", "--variant=minbase", "--components=main,contrib",
                     "--include=" + ",".join(GUEST_PACKAGES), "bookworm", str(work / "root"),
                     host_mirror())
                _run("tar", "-C", str(work / "root"), "-cf", str(work / "root.tar"), ".")
                (work / "root.tar").rename(tar)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return tar


def ensure_image() -> GuestImage:
    """The cached image for the host's kernel and zfs-dkms; built once (under a lock)."""
    release = kernel_release()
    image = GuestImage(CACHE_DIR / f"openzfs-{image_key(release)}")
    if (image.dir / "versions.json").is_file():
        return image
    CACHE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(CACHE_DIR / ".openzfs-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building the same image
        if not (image.dir / "versions.json").is_file():
            _build(image, release)
    return image


def _build(image: GuestImage, release: str) -> None:
    """The base root plus the host's module tree for `release`, packed as ext4."""
    base = ensure_base_root()
    work = Path(tempfile.mkdtemp(prefix=f"{image.dir.name}.", dir=CACHE_DIR))
    try:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        _run("tar", "-C", str(rootfs), "-xf", str(base))
        modules = rootfs / "lib/modules" / release
        shutil.rmtree(modules, ignore_errors=True)  # debootstrap's may be another ABI
        shutil.copytree(f"/lib/modules/{release}", modules, symlinks=True)
        _run("chroot", str(rootfs), "depmod", "-a", release)
        (rootfs / "etc/modules-load.d/zfs.conf").write_text("zfs\n")
        (rootfs / "etc/network/interfaces").write_text(INTERFACES)
        (rootfs / "etc/hostname").write_text("esblab-openzfs\n")
        (rootfs / "etc/ssh/sshd_config.d/esblab.conf").write_text(SSHD_CONFIG)
        for unit in MASKED_UNITS:
            masked = rootfs / "etc/systemd/system" / unit
            masked.unlink(missing_ok=True)
            masked.symlink_to("/dev/null")
        (rootfs / "etc/systemd/journald.conf.d").mkdir(exist_ok=True)
        (rootfs / "etc/systemd/journald.conf.d/esblab.conf").write_text(
            "[Journal]\nStorage=volatile\n")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "esblab-openzfs",
             "-f", str(work / "client_ed25519"))
        ssh_dir = rootfs / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copy(work / "client_ed25519.pub", ssh_dir / "authorized_keys")
        shutil.copy(rootfs / "etc/ssh/ssh_host_ed25519_key.pub", work / "ssh_host_ed25519_key.pub")
        shutil.copy(f"/boot/vmlinuz-{release}", work / "vmlinuz")
        shutil.copy(f"/boot/initrd.img-{release}", work / "initrd.img")
        _run("truncate", "-s", ROOT_SIZE, str(work / "root.img"))
        _run("mkfs.ext4", "-q", "-F", "-d", str(rootfs), str(work / "root.img"))
        zfsutils = _run("chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Version}",
                        "zfsutils-linux").stdout
        shutil.rmtree(rootfs)
        (work / "versions.json").write_text(json.dumps({
            "kernel": release, "zfs-dkms": package_version("zfs-dkms"),
            "zfsutils-linux": zfsutils, "recipe": RECIPE}, indent=2) + "\n")
        work.rename(image.dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def owns(pid: int, overlay: str) -> bool:
    """True if pid is the QEMU that boots `overlay` (a pid from a state file may be reused)."""
    try:
        return overlay.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def boot(image: GuestImage, guest_dir: Path, address: str, port: int, *,
         pool_size: str, peer_file: Path | None = None, memory: str = "1024",
         cpus: int = 2) -> subprocess.Popen[bytes]:
    """Start QEMU on an overlay of `image` and a fresh pool disk (/dev/vdb) in `guest_dir`.

    The guest's sshd is forwarded from address:port on the host; the guest
    reaches nothing (restrict=on) but, with `peer_file`, PEER_ADDRESS:22, which
    lab/guest_link.py joins to the loopback address and port that file names
    (another guest's sshd). Returns at once: see `wait_for_ssh`.
    """
    overlay, pool_disk = guest_dir / "root.qcow2", guest_dir / "pool.img"
    overlay.unlink(missing_ok=True)
    pool_disk.unlink(missing_ok=True)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.root),
         str(overlay))
    _run("truncate", "-s", pool_size, str(pool_disk))
    netdev = f"user,id=n0,restrict=on,hostfwd=tcp:{address}:{port}-:22"
    if peer_file is not None:
        link = shlex.join([sys.executable, str(Path(__file__).with_name("guest_link.py")),
                           str(peer_file)])
        netdev += f",guestfwd=tcp:{PEER_ADDRESS}:22-cmd:{link.replace(',', ',,')}"
    argv = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
            "-m", memory, "-smp", str(cpus), "-nodefaults", "-display", "none",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", KERNEL_ARGS,
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-drive", f"file={pool_disk},if=virtio,format=raw",
            "-netdev", netdev,
            "-device", "virtio-net-pci,netdev=n0",
            "-serial", f"file:{guest_dir / 'console.log'}"]
    with open(guest_dir / "qemu.log", "wb") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)


def wait_for_ssh(proc: subprocess.Popen[bytes], ssh_argv: list[str], guest_dir: Path) -> float:
    """Wait until `ssh_argv true` works; return the seconds it took. GuestError if QEMU dies."""
    start = time.monotonic()
    while time.monotonic() - start < BOOT_TIMEOUT:
        if proc.poll() is not None:
            log = (guest_dir / "qemu.log").read_text(errors="replace").strip()
            raise GuestError(f"qemu exited with {proc.returncode}: {log[-400:]}")
        probe = subprocess.run([*ssh_argv[:1], "-o", "ConnectTimeout=5", *ssh_argv[1:], "true"],
                               capture_output=True, stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            return time.monotonic() - start
        time.sleep(1)
    console = (guest_dir / "console.log").read_text(errors="replace").strip()
    raise GuestError(f"no ssh after {BOOT_TIMEOUT:.0f} s; console ends: {console[-400:]}")
