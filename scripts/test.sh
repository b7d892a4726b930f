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
# The unit tests on two xdist workers; then the integration tests in one process, in
# order, with one lab (zfs-fuse copes badly with concurrent pool operations, and each
# kind of guest boots once). Arguments go to both runs; a run left with no test is fine.
status=0
.venv/bin/python -m pytest -n 2 tests/unit "$@" || status=$?
[ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
status=0
.venv/bin/python -m pytest tests/integration "$@" || status=$?
[ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
