"""Default tables fit 100 columns with realistic long-ish data (names of 40
characters, sizes of terabytes, long notes and errors); `--full` shows each
cell whole. The `schedule load` heatmap fits 80."""
from __future__ import annotations

import io

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain.models import Backup, Run

HOST = "web01-production-frontend-eu-central-1a"  # 39 characters
NODE = "backup-node-frankfurt-datacenter-rack-07"  # 40
COMPUTE = "compute-node-frankfurt-datacenter-rack-12"  # 41
UUID = "3f2a5a4e-0000-4000-8000-0000000000aa"
NOTE = "kept for the audit of the quarterly accounts, do not remove before 2027-03-31"
ERROR = ("cannot receive incremental stream: most recent snapshot of "
         "tank/esbackup/3f2a5a4e/disk1 does not match incremental source")
WIDTH = 100


@pytest.fixture
def site(esb):
    esb.ok("dc", "create", "customers-frankfurt-enterprise-tier", "--desc", NOTE)
    esb.ok("node", "create", COMPUTE, "--address", "compute12.fra.example.net:2222",
           "--no-connect")
    esb.ok("node", "create", NODE, "--address", "backup07.fra.example.net", "--backup",
           "--no-compute", "--no-connect")
    esb.ok("storage", "create", NODE, "archive-tank-encrypted", "--zpool", "archive/esbackup")
    esb.ok("vm", "create", HOST, "--node", COMPUTE, "--dc", "customers-frankfurt-enterprise-tier",
           "--uuid", UUID, "--disk", f"1=zones/{UUID}-disk0", "--disk", f"2=zones/{UUID}-disk1")
    for name, schedule in (("nightly-full-retention", "30 1 * * *"),
                           ("hourly-during-business", "15 8-18 * * 1-5")):
        esb.ok("definition", "create", f"{HOST}/{name}", "--disk-id", "1", "--type", "dataset",
               "--node", NODE, "--storage", "archive-tank-encrypted", "--schedule", schedule,
               "--timezone", "America/Argentina/Buenos_Aires", "--keep-daily", "14",
               "--keep-weekly", "8", "--keep-monthly", "12", "--desc", NOTE)
    cat = Catalog.open(esb.catalog)
    d = cat.definition(HOST, "nightly-full-retention")
    for day in range(10, 13):
        name = f"nightly-full-retention-202611{day}_013000"
        cat.add_backup(Backup(name=name, vm=HOST, vm_uuid=UUID, disk_id=1, type="dataset",
                              created=f"2026-11-{day}T01:30:00+00:00", status="ok", node=NODE,
                              storage="archive-tank-encrypted", duration=37_000.0,
                              size=987 * 2**40, note=NOTE, definition=d.name,
                              location=f"archive/esbackup/{UUID}/disk1@esb-{name}"), d.id)
        cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="tick", outcome="failed",
                        started=f"2026-11-{day}T01:30:00+00:00", error=ERROR,
                        host="admin-host-frankfurt-primary.example.net", duration=37_000.0,
                        size=987 * 2**40, resumed=123 * 2**30))
    cat.close()
    return esb


TABLES = [
    ["backup", "list"], ["definition", "list"], ["history"], ["vm", "list"], ["node", "list"],
    ["dc", "list"], ["storage", "list"], ["schedule", "overview"], ["schedule", "load"],
    ["schedule", "next", f"{HOST}/nightly-full-retention"],
    ["schedule", "balance"],
    ["retention", "preview", f"{HOST}/nightly-full-retention", "--keep-last", "1"],
    ["backup", "prune", f"{HOST}/nightly-full-retention", "--dry-run"],
    ["user", "list"],
]


@pytest.mark.parametrize("command", TABLES, ids=" ".join)
def test_every_default_table_fits_100_columns(site, command):
    out = site.ok(*command).stdout
    assert len(out.splitlines()) >= 2
    wide = [line for line in out.splitlines() if len(line) > WIDTH]
    assert not wide, "\n".join(wide)


def test_full_shows_every_cell_whole(site):
    assert NOTE in site.ok("backup", "list", "--full").stdout
    assert ERROR in site.ok("history", "--full").stdout
    cut = site.ok("backup", "list").stdout
    assert NOTE not in cut and "…" in cut


def test_the_load_heatmap_fits_80_columns_and_reads_without_colour(monkeypatch):
    from rich.console import Console

    from esbackup.commands.schedule import HOURS, show_heatmap

    records = [{"node": NODE, "slots": 2, **{h: 0 for h in HOURS}, "peak": 13}
               | {"01": 2, "02": 13, "05": 1},
               {"node": COMPUTE, "slots": 1000, **{h: 999 for h in HOURS}, "peak": 999}]
    buffer = io.StringIO()
    show_heatmap(records, Console(file=buffer, width=200, no_color=True))
    text = buffer.getvalue()
    assert max(map(len, text.splitlines())) <= 80, text
    legend = " ".join(text.split())
    assert "n= all slots in use" in legend and "n! more backups than slots" in legend
    rows = {line.split()[0][:12]: line.split()[1:] for line in text.splitlines()
            if line.startswith(("backup-", "compute-"))}
    # slots, 00-01 (2 at 01: all in use), 02-03 (13 at 02: over) ... and the peak
    assert rows["backup-node-"][:4] == ["2", "2=", "13!", "1"] and rows["backup-node-"][-1] == "13!"
    assert rows["compute-node"][-1] == "999" and len(rows["compute-node"]) == 14
