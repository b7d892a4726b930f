"""A retention policy over simulated days, on real nodes (zfs-fuse, sshd): runs
named by a test clock through the runs' own code path (actions/backup.py's
`now`), each followed by its retention; what stays on the node and in the
catalog is exactly what the rule keeps (domain/prune.py, pinned by hand here)."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

from esbackup.actions import backup as backup_action

START = datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc)
# Ten days of nightly backups, two on day 4 (01:00 and 13:00), one protected.
TIMES = [START + timedelta(days=d) for d in range(10)] + [START + timedelta(days=3, hours=12)]


def stamp(when: datetime) -> str:
    return f"daily-{when:%Y%m%d_%H%M%S}"


def test_keep_last_and_daily_over_ten_days_leave_exactly_what_the_rule_keeps(
        site, monkeypatch):
    ref = site.define("daily", "--type", "dataset", "--keep-last", "2", "--keep-daily", "3")
    for when in sorted(TIMES):
        monkeypatch.setattr(backup_action, "now", lambda when=when: when)
        site.write(f"f{when:%d%H}", when.isoformat().encode())
        site.esb.ok("run", ref)
        if when == START + timedelta(days=1):
            site.esb.ok("backup", "protect", f"web01/{stamp(when)}")
    # last 2: days 10, 9; daily 3 more days: 8, 7, 6; protected: day 2; the rest removed
    kept = [START + timedelta(days=d) for d in (1, 5, 6, 7, 8, 9)]
    names = [b["name"] for b in site.backups()]
    assert names == [stamp(t) for t in kept]
    assert site.snapshots(site.target) == [f"{site.target}@esb-{n}" for n in names]
    folder = str(Path(site.backups()[0]["manifest"]).parent)
    listing = site.lab.run(site.node_of(folder), "ls", folder).stdout.decode().split()
    assert sorted(Path(p).stem for p in listing) == sorted(names)
    assert [b["protected"] for b in site.backups()] == [True] + [False] * 5
    marks = site.esb.json("retention", "preview", ref)
    assert [(m["mark"], m["rule"]) for m in marks] == [
        ("protected", None), *[("keep", "daily")] * 3, *[("keep", "last")] * 2]
