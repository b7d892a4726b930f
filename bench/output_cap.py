"""Peak memory of the admin host when a node answers one call with a flood.

Runs each case in a fresh interpreter (ru_maxrss is a high-water mark) on the
local transport, the same read path as SSH's, and prints the peak against the
interpreter's own size before the call:

    .venv/bin/python bench/output_cap.py --mib 200
"""
from __future__ import annotations

import argparse
import subprocess
import sys

CASE = """
import resource, sys
from esbackup.domain.models import Node
from esbackup.drivers import batch, transport
t = transport.connect(Node(name="here", address="local"))
cmd = ["sh", "-c", "yes 0123456789abcdef | head -c %dM"]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    t.run(cmd) if sys.argv[1] == "run" else batch.run(t, [batch.Step("flood", cmd)])
    outcome = "returned"
except Exception as error:
    outcome = str(error)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before // 1024, peak // 1024, outcome)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    for how in ("run", "batch"):
        out = subprocess.run([sys.executable, "-c", CASE % args.mib, how], check=True,
                             capture_output=True, text=True).stdout.split(maxsplit=2)
        before, peak = int(out[0]), int(out[1])
        print(f"{how:5} {args.mib} MiB answer: peak {peak} MiB, {peak / before:.1f}x the "
              f"{before} MiB before the call ({peak - before} MiB for the answer): {out[2]}",
              end="")


if __name__ == "__main__":
    main()
