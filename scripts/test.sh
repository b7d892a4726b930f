#!/usr/bin/env bash
# README's test command: installs what the tests need (Debian and PyPI packages),
# starts zfs-fuse (the lab starts one sshd per node itself), lints, and runs the
# whole suite against real ZFS pools and real sshd on loopback. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: run as root (real zfs-fuse pools and sshd on loopback)" >&2
  exit 2
fi
scripts/install-deps.sh
.venv/bin/ruff check esbackup lab tests bench
exec .venv/bin/python -m pytest "$@"
