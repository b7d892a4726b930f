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
.venv/bin/mypy
# The unit tests on two xdist workers; then the integration tests in two processes side
# by side, each with its own lab: the OpenZFS guest tests (marked `guests`; TCG keeps
# about one core busy) and the rest (zfs-fuse, sshd, libvirt: about one core). Only one
# lab at a time uses zfs-fuse (lab/nodes.py, ZFS_FUSE_LOCK): the guests process runs its
# two mixed tests last, once the other has finished. The guests process's output is
# shown when both are done. Arguments go to every run; a run left with no test is fine.
run() {
  local status=0
  .venv/bin/python -m pytest "$@" || status=$?
  [ "$status" = 0 ] || [ "$status" = 5 ] || return "$status"
}
run -n 2 tests/unit "$@"
guests_log=$(mktemp /tmp/esbackup-guests-tests.XXXXXX)
run tests/integration -m guests "$@" >"$guests_log" 2>&1 &
guests=$!
status=0
run tests/integration -m "not guests" "$@" || status=$?
guests_status=0
wait "$guests" || guests_status=$?
echo "=== integration tests on OpenZFS guests (run beside the ones above) ==="
cat "$guests_log"
rm -f "$guests_log"
[ "$status" = 0 ] || exit "$status"
exit "$guests_status"
