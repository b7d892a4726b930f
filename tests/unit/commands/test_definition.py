"""Backup definitions on a real SQLite catalog: issue 2's validation rules, the
definition JSON, listings, permissions, and the catalog-only schedule/cron/history/check
commands."""
import shlex
from datetime import datetime, timezone

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import auth, schedule
from esbackup.domain.models import Backup
from tests.seed import SEED_CRONS


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Every test here runs on both catalog backends."""
    return request.param

UUID = "3f2a5a4e-0000-4000-8000-000000000001"
BASE = ["--disk-id", "1", "--type", "dataset", "--node", "b1", "--storage", "tank",
        "--retention", "3"]
JSON_FIELDS = {"name", "vm", "disk_id", "type", "node", "storage", "schedule", "timezone",
               "schedule_utc", "next_run", "retention", "policy", "keep_last", "keep_hourly",
               "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "active", "desc",
               "compression", "bwlimit", "fsfreeze", "created"}



def create(esb, ref="web01/daily", *extra, schedule="0 1 * * *", base=BASE):
    return esb.ok("definition", "create", ref, *base, "--schedule", schedule, *extra)


def define_fails(esb, code, *args, ref="web01/x", base=BASE):
    return esb.fails(code, "definition", "create", ref, *base, *args)


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0, text
    return moment


# --- cron ---------------------------------------------------------------------------


@pytest.mark.parametrize("cron", SEED_CRONS)
def test_seed_cron_examples_accepted(inventory, cron):
    assert "created definition web01/daily" in create(inventory, schedule=cron).stdout
    d = inventory.json("definition", "show", "web01/daily")
    assert d["schedule"] == cron
    assert utc(d["next_run"]) > datetime.now(timezone.utc)


@pytest.mark.parametrize("cron, field", [
    ("60 * * * *", "minute"),
    ("0 24 * * *", "hour"),
    ("* * *", "5 fields"),
    ("* * * * * *", "5 fields"),
    ("* * * * 7", "day-of-week"),
    ("a b c d e", "minute"),
    ("0 0 32 * *", "day-of-month"),
])
def test_bad_cron_rejected_naming_the_field(inventory, cron, field):
    stderr = define_fails(inventory, 2, "--schedule", cron)
    assert field in stderr and "cron" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert inventory.json("definition", "list") == []


def test_cron_rejected_on_update_too(inventory):
    create(inventory)
    assert "hour" in inventory.fails(2, "definition", "update", "web01/daily",
                                     "--schedule", "0 24 * * *")
    assert inventory.json("definition", "show", "web01/daily")["schedule"] == "0 1 * * *"


# --- time zone ----------------------------------------------------------------------


def test_iana_timezone_stored_by_name(inventory):
    create(inventory, "web01/daily", "--timezone", "Europe/Prague", schedule="0 2 * * *")
    d = inventory.json("definition", "show", "web01/daily")
    assert d["timezone"] == "Europe/Prague"
    now = datetime.now(timezone.utc)
    assert d["schedule_utc"] == schedule.schedule_utc("0 2 * * *", "Europe/Prague", now.date())
    expected = schedule.next_runs("0 2 * * *", "Europe/Prague", now, 1)[0]
    assert utc(d["next_run"]) == expected


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe/Nowhere", "localtime", "../etc"])
def test_unknown_timezone_rejected(inventory, zone):
    assert "time zone" in define_fails(inventory, 2, "--schedule", "0 1 * * *",
                                       "--timezone", zone)


def test_default_timezone_is_the_admin_hosts(inventory, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    assert schedule.local_timezone() == "America/New_York"
    create(inventory)
    assert inventory.json("definition", "show", "web01/daily")["timezone"] == "America/New_York"


def test_default_timezone_matches_local_timezone(inventory):
    create(inventory)
    assert (inventory.json("definition", "show", "web01/daily")["timezone"]
            == schedule.local_timezone())


# --- retention and bandwidth limit --------------------------------------------------


def test_negative_retention_rejected(inventory):
    base = [a if a != "3" else "-1" for a in BASE]
    assert "retention" in define_fails(inventory, 2, "--schedule", "0 1 * * *", base=base)


def test_retention_zero_keeps_all(inventory):
    base = [a if a != "3" else "0" for a in BASE]
    create(inventory, base=base)
    assert inventory.json("definition", "show", "web01/daily")["retention"] == 0


@pytest.mark.parametrize("value, expected", [
    ("0", 0), ("1048576", 1048576), ("512K", 512 * 1024), ("10M", 10485760),
    ("1G", 1024**3), ("10m", 10485760),
])
def test_bwlimit_accepted(inventory, value, expected):
    create(inventory, "web01/daily", "--bwlimit", value)
    assert inventory.json("definition", "show", "web01/daily")["bwlimit"] == expected


@pytest.mark.parametrize("value", ["-1", "-10M", "abc", "10X", "1.5M", "", "10 M B x"])
def test_bwlimit_rejected(inventory, value):
    assert "bandwidth limit" in define_fails(inventory, 2, "--schedule", "0 1 * * *",
                                             "--bwlimit", value)


# --- cross-field rules ----------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
def test_compression_only_with_file_type(inventory, compression):
    stderr = define_fails(inventory, 2, "--schedule", "0 1 * * *",
                          "--compression", compression)
    assert "compression" in stderr and "file" in stderr
    base = [a if a != "dataset" else "file" for a in BASE]
    create(inventory, "web01/f", "--compression", compression, base=base)
    assert inventory.json("definition", "show", "web01/f")["compression"] == compression


def test_compression_off_fine_with_dataset(inventory):
    create(inventory, "web01/daily", "--compression", "off")


def test_unknown_compression_is_a_usage_error(inventory):
    define_fails(inventory, 2, "--schedule", "0 1 * * *", "--compression", "xz")


def test_freeze_only_for_kvm_and_bhyve(inventory):
    create(inventory, "web01/frozen", "--freeze")
    assert inventory.json("definition", "show", "web01/frozen")["fsfreeze"] is True
    inventory.ok("vm", "create", "bsd01", "--node", "c1", "--brand", "bhyve", "--disk", "1=z/b")
    create(inventory, "bsd01/frozen", "--freeze")
    inventory.ok("vm", "create", "zone01", "--node", "c1", "--brand", "os", "--disk", "1=z/zone")
    stderr = define_fails(inventory, 2, "--schedule", "0 1 * * *", "--freeze", ref="zone01/x")
    assert "freeze" in stderr and "os" in stderr
    create(inventory, "zone01/plain", "--no-freeze")


def test_backup_node_needs_backup_role(inventory):
    base = [a if a != "b1" else "c1" for a in BASE]
    assert "no backup role" in define_fails(inventory, 2, "--schedule", "0 1 * * *", base=base)


def test_backup_node_must_own_the_storage(inventory):
    inventory.ok("node", "create", "b2", "--address", "127.0.0.4", "--backup", "--no-compute",
                 "--no-connect")
    inventory.ok("storage", "create", "b2", "other", "--zpool", "other")
    base = [a if a != "tank" else "other" for a in BASE]
    # a storage of another node is not one of b1's (issue 2: a validation error)
    stderr = define_fails(inventory, 2, "--schedule", "0 1 * * *", base=base)
    assert "storage other belongs to node b2, not to b1" in stderr


def test_disk_id_must_exist_on_the_vm(inventory):
    base = [a if a != "1" else "9" for a in BASE]
    stderr = define_fails(inventory, 2, "--schedule", "0 1 * * *", base=base)
    assert "no disk 9" in stderr


@pytest.mark.parametrize("name", ["a b", "x;y", "$(id)", "-x", "..", "a..b", "é"])
def test_bad_definition_names_refused(inventory, name):
    assert "invalid definition name" in define_fails(inventory, 2, "--schedule", "0 1 * * *",
                                                     ref=f"web01/{name}")


def test_duplicate_definition_refused(inventory):
    create(inventory)
    assert "exists" in define_fails(inventory, 2, "--schedule", "0 1 * * *", ref="web01/daily")


# --- unknown references ----------------------------------------------------------------


def test_unknown_definition_exits_4(inventory):
    for command in (["show"], ["update", "--desc", "x"], ["delete", "--yes"]):
        stderr = inventory.fails(4, "definition", *command[:1], "web01/daily", *command[1:])
        assert "no such definition: web01/daily" in stderr
    assert "no such definition: web01/daily" in inventory.fails(4, "schedule", "next",
                                                                "web01/daily")
    assert "no such definition: web01/daily" in inventory.fails(4, "history", "web01/daily")


@pytest.mark.parametrize("ref, swap, what", [
    ("nope/daily", None, "no such virtual server"),
    ("web01/daily", ("b1", "b9"), "no such node"),
    ("web01/daily", ("tank", "pool9"), "no such storage"),
])
def test_unknown_vm_node_storage_exit_4(inventory, ref, swap, what):
    base = [swap[1] if swap and a == swap[0] else a for a in BASE]
    assert what in define_fails(inventory, 4, "--schedule", "0 1 * * *", ref=ref, base=base)


def test_bad_reference_syntax(inventory):
    for ref in ("web01", "web01/", "/daily"):
        assert "expected VM/NAME" in inventory.fails(2, "definition", "show", ref)


# --- the definition JSON ---------------------------------------------------------------


def test_show_json_round_trips_every_parameter(inventory):
    inventory.ok(
        "definition", "create", "web01/nightly", "--disk-id", "2", "--type", "file",
        "--node", "b1", "--storage", "tank", "--schedule", "30 2 * * 1-5",
        "--timezone", "Europe/Prague", "--retention", "7", "--active",
        "--desc", "nightly, with spaces & 'quotes'", "--compression", "bzip2",
        "--bwlimit", "10M", "--freeze")
    before = datetime.now(timezone.utc)
    d = inventory.json("definition", "show", "web01/nightly")
    assert set(d) == JSON_FIELDS
    assert {k: d[k] for k in JSON_FIELDS - {"schedule_utc", "next_run", "created"}} == {
        "name": "nightly", "vm": "web01", "disk_id": 2, "type": "file", "node": "b1",
        "storage": "tank", "schedule": "30 2 * * 1-5", "timezone": "Europe/Prague",
        "retention": 7, "policy": "keep-last 7", "keep_last": 7, "keep_hourly": 0,
        "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0,
        "active": True, "desc": "nightly, with spaces & 'quotes'",
        "compression": "bzip2", "bwlimit": 10485760, "fsfreeze": True}
    assert d["schedule_utc"] == schedule.schedule_utc("30 2 * * 1-5", "Europe/Prague",
                                                      before.date())
    next_run = utc(d["next_run"])
    assert next_run > before
    assert next_run == schedule.next_runs("30 2 * * 1-5", "Europe/Prague", before, 1)[0]
    assert utc(d["created"]) <= datetime.now(timezone.utc)


def test_show_json_of_defaults_and_inactive(inventory):
    inventory.ok("definition", "create", "web01/plain", *BASE, "--schedule", "0 1 * * *",
                 "--timezone", "UTC", "--inactive", "--no-freeze")
    d = inventory.json("definition", "show", "web01/plain")
    assert set(d) == JSON_FIELDS
    assert (d["active"], d["fsfreeze"], d["compression"], d["bwlimit"], d["desc"]) == (
        False, False, "off", 0, "")
    assert d["next_run"] is None  # inactive: never runs
    assert d["schedule_utc"] == "0 1 * * *"


def test_show_table_is_key_value(inventory):
    create(inventory, "web01/daily", "--desc", "hello")
    out = inventory.ok("definition", "show", "web01/daily").stdout
    assert "hello" in out and "Schedule" in out and "Bandwidth limit" in out


def test_definition_by_vm_uuid(inventory):
    create(inventory)
    assert inventory.json("definition", "show", f"{UUID}/daily")["vm"] == "web01"


# --- update, rename, list, delete --------------------------------------------------------


def test_update_changes_fields_and_revalidates(inventory):
    base = [a if a != "dataset" else "file" for a in BASE]
    create(inventory, "web01/daily", "--compression", "gzip", base=base)
    inventory.ok("definition", "update", "web01/daily", "--schedule", "15 3 * * 0",
                 "--retention", "0", "--bwlimit", "1K", "--desc", "changed", "--inactive",
                 "--disk-id", "2", "--timezone", "Asia/Tokyo")
    d = inventory.json("definition", "show", "web01/daily")
    assert (d["schedule"], d["retention"], d["bwlimit"], d["desc"], d["active"]) == (
        "15 3 * * 0", 0, 1024, "changed", False)
    assert (d["disk_id"], d["timezone"], d["compression"]) == (2, "Asia/Tokyo", "gzip")

    stderr = inventory.fails(2, "definition", "update", "web01/daily", "--type", "dataset")
    assert "compression" in stderr
    assert inventory.json("definition", "show", "web01/daily")["type"] == "file"
    inventory.ok("definition", "update", "web01/daily", "--type", "dataset",
                 "--compression", "off")
    assert inventory.json("definition", "show", "web01/daily")["type"] == "dataset"

    for args, message in [(["--retention", "-2"], "retention"),
                          (["--bwlimit", "-1"], "bandwidth limit"),
                          (["--timezone", "Nowhere/Here"], "time zone"),
                          (["--disk-id", "7"], "no disk 7"),
                          (["--node", "c1"], "no backup role")]:
        assert message in inventory.fails(2, "definition", "update", "web01/daily", *args)
    inventory.fails(4, "definition", "update", "web01/daily", "--storage", "nope")


def test_update_freeze_revalidated_against_brand(inventory):
    inventory.ok("vm", "create", "zone01", "--node", "c1", "--brand", "os", "--disk", "1=z/zone")
    create(inventory, "zone01/daily")
    assert "freeze" in inventory.fails(2, "definition", "update", "zone01/daily", "--freeze")


def test_vm_brand_change_keeps_freeze_rule(inventory):
    create(inventory, "web01/daily", "--freeze")
    assert "freeze" in inventory.fails(2, "vm", "update", "web01", "--brand", "os")


def test_vm_disk_used_by_definition_cannot_go(inventory):
    create(inventory, "web01/daily")
    assert "used by a backup definition" in inventory.fails(2, "vm", "update", "web01",
                                                            "--disk", "2=zones/x")


def test_vm_rename_with_disk_change_keeps_used_disks(inventory):
    create(inventory, "web01/daily")
    assert "used by a backup definition" in inventory.fails(
        2, "vm", "update", "web01", "--hostname", "web02", "--disk", "2=zones/x")


def test_rename(inventory):
    create(inventory, "web01/daily")
    create(inventory, "web01/weekly")
    assert "updated definition web01/nightly" in inventory.ok(
        "definition", "update", "web01/daily", "--name", "nightly").stdout
    inventory.fails(4, "definition", "show", "web01/daily")
    assert inventory.json("definition", "show", "web01/nightly")["schedule"] == "0 1 * * *"
    assert "in use" in inventory.fails(2, "definition", "update", "web01/nightly",
                                       "--name", "weekly")
    assert "invalid definition name" in inventory.fails(2, "definition", "update",
                                                        "web01/nightly", "--name", "a;b")


@pytest.fixture
def two_dcs(inventory):
    """web01 (dc admin) backs up to b1; db01 (dc dc2) backs up to b2."""
    inventory.ok("dc", "create", "dc2")
    inventory.ok("node", "create", "b2", "--address", "127.0.0.4", "--backup", "--no-compute",
                 "--no-connect")
    inventory.ok("storage", "create", "b2", "tank2", "--zpool", "tank2")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--disk", "1=z/db")
    create(inventory, "web01/daily")
    create(inventory, "web01/weekly", schedule="0 3 * * 0")
    create(inventory, "db01/daily", base=[
        "--disk-id", "1", "--type", "dataset", "--node", "b2", "--storage", "tank2",
        "--retention", "5"])
    return inventory


def refs(esb, *args):
    return [f"{d['vm']}/{d['name']}" for d in esb.json("definition", "list", *args)]


def test_list_filters(two_dcs):
    assert refs(two_dcs) == ["db01/daily", "web01/daily", "web01/weekly"]
    assert refs(two_dcs, "--vm", "web01") == ["web01/daily", "web01/weekly"]
    assert refs(two_dcs, "--dc", "dc2") == ["db01/daily"]
    assert refs(two_dcs, "--dc", "admin") == ["web01/daily", "web01/weekly"]
    assert refs(two_dcs, "--node", "b2") == ["db01/daily"]
    assert refs(two_dcs, "--node", "b1", "--vm", "db01") == []
    listed = two_dcs.json("definition", "list")
    assert all(set(d) == JSON_FIELDS for d in listed)


def test_list_full_and_formats(two_dcs):
    table = two_dcs.ok("definition", "list").stdout
    full = two_dcs.ok("definition", "list", "--full").stdout
    header, full_header = table.splitlines()[0], full.splitlines()[0]
    assert "db01" in table and "Time zone" not in header and "Compression" not in header
    for column in ("Time zone", "Next run (UTC)", "Compression", "Bandwidth limit", "Freeze",
                   "Created"):
        assert column in full_header
    assert len(full_header.split("  ")) > len(header.split("  "))

    csv = two_dcs.ok("definition", "list", "-f", "csv").stdout.splitlines()
    assert csv[0].split(",")[:3] == ["vm", "name", "disk_id"]
    assert len(csv) == 4 and csv[1].startswith("db01,daily,1,dataset,b2,tank2,0 1 * * *")
    full_csv = two_dcs.ok("definition", "list", "-f", "csv", "--full").stdout.splitlines()
    assert len(full_csv[0].split(",")) > len(csv[0].split(","))
    assert "bwlimit" in full_csv[0] and "bwlimit" not in csv[0]

    tsv = two_dcs.ok("definition", "list", "-f", "tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:2] == ["vm", "name"] and len(tsv) == 4

    plain = two_dcs.ok("definition", "list", "-f", "plain").stdout.splitlines()
    assert len(plain) == 3 and plain[0].split()[:2] == ["db01", "daily"]

    github = two_dcs.ok("definition", "list", "-f", "github").stdout.splitlines()
    assert github[0].startswith("| VM") and github[1].startswith("|--")
    assert "unknown format" in two_dcs.fails(2, "definition", "list", "-f", "nope")


def test_empty_list(inventory):
    assert inventory.json("definition", "list") == []
    assert inventory.ok("definition", "list", "-f", "plain").stdout == ""


def test_delete_needs_yes_and_keeps_backups(inventory):
    create(inventory)
    cat = Catalog.open(inventory.catalog)
    try:
        d = cat.definition("web01", "daily")
        cat.add_backup(Backup(
            name="daily-20261126_010000", vm="web01", vm_uuid=UUID, disk_id=1,
            type="dataset", created="2026-11-26T01:00:00+00:00", status="ok", node="b1",
            storage="tank", definition="daily", size=1536, duration=3725.0),
            definition_id=d.id)
    finally:
        cat.close()

    assert "--yes" in inventory.fails(2, "definition", "delete", "web01/daily")
    inventory.ok("definition", "show", "web01/daily")
    assert "deleted definition web01/daily" in inventory.ok(
        "definition", "delete", "web01/daily", "--yes").stdout
    assert "no such definition: web01/daily" in inventory.fails(4, "definition", "show",
                                                                "web01/daily")
    cat = Catalog.open(inventory.catalog)
    try:
        kept = cat.backups(vm="web01")
    finally:
        cat.close()
    assert [(b.name, b.status, b.definition) for b in kept] == [
        ("daily-20261126_010000", "ok", "daily")]


# --- permissions ---------------------------------------------------------------------


@pytest.fixture
def olga(inventory, monkeypatch):
    """A vmowner owning web01, which has one definition; the caller becomes olga."""
    create(inventory)
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    inventory.ok("vm", "update", "web01", "--owner", "olga")
    monkeypatch.setattr(auth, "os_user", lambda: ("olga", 4242))
    return inventory


def test_vmowner_reads_definitions(olga):
    assert refs(olga) == ["web01/daily"]
    assert olga.json("definition", "show", "web01/daily")["name"] == "daily"
    assert len(olga.json("schedule", "next", "web01/daily", "--count", "2")) == 2
    assert olga.json("history", "web01/daily") == []
    assert [d["name"] for d in olga.json("schedule", "overview")] == ["daily"]


def test_vmowner_cannot_change_definitions(olga):
    olga.fails(3, "definition", "create", "web01/other", *BASE, "--schedule", "0 1 * * *")
    olga.fails(3, "definition", "update", "web01/daily", "--desc", "mine")
    olga.fails(3, "definition", "update", "web01/daily", "--name", "mine")
    olga.fails(3, "definition", "delete", "web01/daily", "--yes")
    d = olga.json("definition", "show", "web01/daily")
    assert (d["name"], d["desc"]) == ("daily", "")


def test_vmowner_delete_without_yes_is_denied_not_asked(olga):
    assert "permission denied" in olga.fails(3, "definition", "delete", "web01/daily")


def test_vmowner_of_another_vm_sees_nothing(olga, monkeypatch):
    monkeypatch.setattr(auth, "os_user", lambda: ("root", 0))
    olga.ok("user", "create", "victor", "--role", "vmowner")
    monkeypatch.setattr(auth, "os_user", lambda: ("victor", 4245))
    assert olga.json("definition", "list") == []
    olga.fails(3, "definition", "show", "web01/daily")


def test_dcadmin_of_another_dc_cannot_see(two_dcs, monkeypatch):
    two_dcs.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "dc2")
    monkeypatch.setattr(auth, "os_user", lambda: ("dave", 4243))
    assert refs(two_dcs) == ["db01/daily"]
    assert refs(two_dcs, "--vm", "web01") == []
    two_dcs.fails(3, "definition", "show", "web01/daily")
    two_dcs.fails(3, "definition", "update", "web01/daily", "--desc", "x")
    two_dcs.fails(3, "schedule", "next", "web01/daily")
    two_dcs.fails(3, "history", "web01/daily")
    assert [d["vm"] for d in two_dcs.json("schedule", "overview")] == ["db01"]
    # read-write in its own DC
    two_dcs.ok("definition", "update", "db01/daily", "--desc", "mine")
    create(two_dcs, "db01/weekly", base=[
        "--disk-id", "1", "--type", "dataset", "--node", "b2", "--storage", "tank2",
        "--retention", "5"])
    two_dcs.ok("definition", "delete", "db01/weekly", "--yes")


# --- schedule, cron, history, check ------------------------------------------------------


def test_schedule_next(inventory):
    create(inventory, "web01/daily", "--timezone", "UTC")
    runs = inventory.json("schedule", "next", "web01/daily", "--count", "3")
    times = [utc(r["run"]) for r in runs]
    assert len(times) == 3 and times == sorted(times) and len(set(times)) == 3
    assert times[0] > datetime.now(timezone.utc)
    assert all((t.hour, t.minute) == (1, 0) for t in times)
    after = inventory.json("schedule", "next", "web01/daily", "--count", "2",
                           "--after", "2030-01-01T00:00:00+00:00")
    assert [r["run"] for r in after] == ["2030-01-01T01:00:00+00:00",
                                         "2030-01-02T01:00:00+00:00"]
    assert "invalid time" in inventory.fails(2, "schedule", "next", "web01/daily",
                                             "--after", "tomorrow")


def test_schedule_overview(two_dcs):
    records = two_dcs.json("schedule", "overview")
    assert [(r["node"], r["vm"], r["name"]) for r in records] == [
        ("b1", "web01", "daily"), ("b1", "web01", "weekly"), ("b2", "db01", "daily")]
    assert all(len(r["next_runs"]) == 3 for r in records)
    assert [r["vm"] for r in two_dcs.json("schedule", "overview", "--node", "b2")] == ["db01"]
    assert [r["name"] for r in two_dcs.json("schedule", "overview", "--dc", "admin")] == [
        "daily", "weekly"]


def test_cron_prints_the_tick_line(esb):
    lines = esb.ok("cron").stdout.splitlines()
    tick = [line for line in lines if line.endswith("run --due")]
    assert len(tick) == 1 and tick[0].startswith("* * * * * root ")
    argv = shlex.split(tick[0].split(" root ", 1)[1].replace("\\%", "%"))
    assert argv[argv.index("--catalog") + 1] == str(esb.catalog)


def test_history_of_a_definition_without_runs(inventory):
    create(inventory)
    assert inventory.ok("history", "web01/daily", "-f", "json").stdout.strip() == "[]"


def test_check_on_empty_catalog(esb):
    """Nothing backed up must not look healthy: WARNING, unless --allow-empty."""
    esb.ok("dc", "list")  # without a catalog at all, check says UNKNOWN (test_health.py)
    result = esb("check")
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "ESBACKUP WARNING - 1 problem(s) | definitions=0 ok=0 lost=0 failed=0 stale=0 "
        "verify_failed=0",
        "WARNING: no active backup definitions: nothing is backed up (`check --allow-empty` "
        "accepts that)"]
    result = esb("check", "--allow-empty")
    assert result.exit_code == 0 and result.stdout.startswith("ESBACKUP OK")


def test_schedule_not_expressible_in_utc_still_lists(inventory):
    inventory.ok("definition", "create", "web01/march", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 0 1 3 *",
                 "--timezone", "Europe/Prague", "--retention", "1")
    (d,) = inventory.json("definition", "list")
    assert d["schedule_utc"] is None and d["next_run"].endswith("+00:00")
