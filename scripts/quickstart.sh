#!/usr/bin/env bash
# README's quick start: a throwaway lab of two real nodes on this machine
# (zfs-fuse pools on files, one sshd each on 127.0.0.x), registered with
# esbackup on a throwaway catalog; then a full and an incremental backup,
# listed, and a restore. Everything is removed at the end (--keep keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0; [ "${1:-}" = "--keep" ] && keep=1

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (zfs-fuse, sshd)" >&2; exit 2; }
scripts/install-deps.sh >/dev/null

work=$(mktemp -d /tmp/esbackup-quickstart.XXXXXX)
export ESBACKUP_CATALOG="$work/catalog.db"
py=.venv/bin/python
esb() { echo "\$ esbackup $*"; .venv/bin/esbackup "$@"; echo; }
down() { $py -m lab.nodes down --dir "$work/lab" >/dev/null 2>&1 || true; rm -rf "$work"; }
[ $keep = 1 ] || trap down EXIT

$py -m lab.nodes up --dir "$work/lab" c1 b1 > "$work/lab.json"
field() { $py -c "import json,sys; n={x['name']: x for x in json.load(open('$work/lab.json'))['nodes']}; print(n['$1']['$2'])"; }
c1_pool=$(field c1 pool); b1_pool=$(field b1 pool)
zfs create "$c1_pool/web01-disk0"
disk=$(zfs get -H -o value mountpoint "$c1_pool/web01-disk0")
head -c 8M /dev/urandom > "$disk/data.img"; echo "hello" > "$disk/hello.txt"

esb catalog init
esb node create c1 --address "$(field c1 address)" --key "$(field c1 key_path)" --accept-host-key
esb node create b1 --address "$(field b1 address)" --key "$(field b1 key_path)" \
    --backup --no-compute --accept-host-key
esb node check c1
esb node check b1
esb storage create b1 tank --zpool "$b1_pool"
esb vm create web01 --node c1 --disk "1=$c1_pool/web01-disk0"
esb definition create web01/daily --disk-id 1 --type dataset --node b1 --storage tank \
    --schedule "00 01 * * *" --retention 7 --desc "nightly, incremental"
esb definition create web01/weekly-file --disk-id 1 --type file --compression gzip \
    --node b1 --storage tank --schedule "30 02 * * 0" --retention 4
esb run web01/daily
echo "changed" >> "$disk/hello.txt"; head -c 1M /dev/urandom > "$disk/new.bin"
esb backup now web01/daily
esb backup now web01/weekly-file
esb backup list
esb history
esb schedule overview
first=$(.venv/bin/esbackup backup list -f json | $py -c "import json,sys; print(json.load(sys.stdin)[0]['name'])")
esb backup restore "web01/$first" --yes --force
echo "hello.txt after restoring $first: $(cat "$disk/hello.txt")"
[ $keep = 0 ] || echo "lab kept in $work (ESBACKUP_CATALOG=$ESBACKUP_CATALOG); remove: $py -m lab.nodes down --dir $work/lab"
