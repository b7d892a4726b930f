#!/usr/bin/env bash
# README's test command: installs what the tests need (Debian and PyPI packages),
# starts the services they use (zfs-fuse; the lab starts its own sshd per node),
# and runs the whole suite. Needs root: real ZFS pools and sshd on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: run as root (real zfs-fuse pools and sshd on loopback)" >&2
  exit 2
fi

need=()
for pair in zfs-fuse:zfs-fuse sshd:openssh-server pv:pv mbuffer:mbuffer \
            qemu-system-x86_64:qemu-system-x86 sqlite3:sqlite3; do
  command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'

pgrep -x zfs-fuse >/dev/null || zfs-fuse
for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
zpool list >/dev/null || { echo "zfs-fuse did not start" >&2; exit 1; }

.venv/bin/ruff check esbackup lab tests bench
exec .venv/bin/python -m pytest "$@"
