#!/usr/bin/env bash
# Installs what esbackup's tests and quick start need: Debian packages (zfs-fuse,
# OpenSSH server, pv, mbuffer, qemu for the guest-agent lab, libvirt for the
# libvirt compute node of the lab, prometheus for promtool, which checks the
# metrics textfile, PostgreSQL for the catalog tests, sudo and useradd for the
# sudo tests, e2fsprogs and xfsprogs for the fsck checks on image files), what the OpenZFS guest lab builds its image from (Debian's kernel
# and headers, zfs-dkms from contrib, debootstrap, qemu-utils) and a venv with
# esbackup and its test extras (psycopg); starts zfs-fuse. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in zfs-fuse:zfs-fuse sshd:openssh-server pv:pv mbuffer:mbuffer \
            qemu-system-x86_64:qemu-system-x86 virsh:libvirt-clients \
            libvirtd:libvirt-daemon-system promtool:prometheus sudo:sudo useradd:passwd \
            mkfs.ext4:e2fsprogs xfs_repair:xfsprogs; do
  command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${need[@]}"
fi

# OpenZFS guests (lab/openzfs_guest.py): zfs-dkms builds zfs.ko for Debian's kernel on the
# host; the guest image takes that module tree. The contrib component is added with the
# mirror the host already uses (read from its apt sources, never named here).
contrib=/etc/apt/sources.list.d/esbackup-contrib.sources
if [ ! -f "$contrib" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  awk '/^$/{exit} /^Components:/{print "Components: contrib"; next} {print}' \
    /etc/apt/sources.list.d/debian.sources > "$contrib"
fi
guest_need=()
for pkg in linux-image-amd64 linux-headers-amd64 zfs-dkms debootstrap qemu-utils; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || guest_need+=("$pkg")
done
if [ ${#guest_need[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${guest_need[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# the editable install takes ~18 s: done again only when the package metadata changed
stamp=$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat .venv/.esbackup-deps 2>/dev/null)" != "$stamp" ] \
   || [ ! -x .venv/bin/esbackup ] || ! .venv/bin/python -c 'import hypothesis, psycopg' 2>/dev/null; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  echo "$stamp" > .venv/.esbackup-deps
fi

pgrep -x zfs-fuse >/dev/null || zfs-fuse
for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
zpool list >/dev/null || { echo "zfs-fuse did not start" >&2; exit 1; }
