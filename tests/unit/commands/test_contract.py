"""The command-line contract's edges: formats checked first, one-line errors,
unknown filters, renames that keep history, roles a node keeps."""
import json
import subprocess
import sys

import pytest

from esbackup.catalog.core import Catalog
from esbackup.domain import auth
from esbackup.domain.models import Backup, Run

UUID = "3f2a5a4e-0000-4000-8000-000000000001"


def define(esb, name="daily", schedule="0 1 * * *"):
    esb.ok("definition", "create", f"web01/{name}", "--disk-id", "1", "--type", "dataset",
           "--node", "b1", "--storage", "tank", "--schedule", schedule, "--retention", "3",
           "--timezone", "UTC")


def test_bad_format_refused_before_anything_changes(inventory):
    for name in "abc":
        define(inventory, name)
    inventory.fails(2, "schedule", "balance", "--apply", "-f", "xml")
    schedules = {d["schedule"] for d in inventory.json("definition", "list")}
    assert schedules == {"0 1 * * *"}


def run_cli(esb, *args):
    return subprocess.run([sys.executable, "-m", "esbackup", "--catalog", str(esb.catalog),
                           *args], capture_output=True, text=True)


def test_usage_errors_are_one_line(inventory):
    result = run_cli(inventory, "definition", "create", "web01/x", "--disk-id", "1")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: Missing option '--type'")


@pytest.mark.parametrize("args", [
    ["definition", "list", "--dc", "nosuch"], ["definition", "list", "--node", "nosuch"],
    ["backup", "list", "--node", "nosuch"], ["vm", "list", "--dc", "nosuch"],
    ["schedule", "overview", "--node", "nosuch"], ["schedule", "load", "--node", "nosuch"],
    ["backup", "sync", "--node", "nosuch"],
])
def test_unknown_filters_are_not_found(inventory, args):
    assert "no such" in inventory.fails(4, *args)


def add_backup(esb, name, fsfreeze=False):
    cat = Catalog.open(esb.catalog)
    cat.add_backup(Backup(name=name, vm="web01", vm_uuid=UUID, disk_id=1, type="dataset",
                          created="2026-11-26T01:00:00+00:00", status="ok", node="b1",
                          storage="tank", definition="daily", fsfreeze=fsfreeze),
                   definition_id=cat.definition("web01", "daily").id)
    d = cat.definition("web01", "daily")
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="cron", outcome="ok",
                    started="2026-11-26T01:00:00+00:00", finished="2026-11-26T01:00:09+00:00"))
    cat.close()


def test_renames_keep_backups_and_history(inventory):
    define(inventory)
    add_backup(inventory, "daily-20261126_010000")
    inventory.ok("vm", "update", "web01", "--hostname", "web1")
    assert [b["vm"] for b in inventory.json("backup", "list", "--vm", "web1")] == ["web1"]
    inventory.ok("backup", "show", "web1/daily-20261126_010000")
    assert len(inventory.json("history", "web1/daily")) == 1
    inventory.ok("definition", "update", "web1/daily", "--name", "nightly")
    (run,) = inventory.json("history", "web1/nightly")
    assert run["definition"] == "web1/nightly"  # shown under its definition's name today
    assert [b["definition"] for b in inventory.json("backup", "list", "--definition",
                                                    "web1/nightly")] == ["nightly"]
    assert inventory.json("definition", "list", "--vm", UUID)[0]["name"] == "nightly"


def test_a_vm_renamed_to_a_deleted_vms_hostname_sees_no_runs(inventory, tmp_path):
    """Runs belong to a definition by id: web01's history stays with the deleted
    web01 (an orphan only `history` for superadmins lists), never with the VM
    that takes its hostname and a definition of the same name."""
    define(inventory)
    add_backup(inventory, "daily-20261126_010000")
    inventory.ok("vm", "delete", "web01", "--yes")
    inventory.ok("vm", "create", "web02", "--node", "c1", "--disk", "1=zones/web02-disk0",
                 "--uuid", "3f2a5a4e-0000-4000-8000-000000000002")
    inventory.ok("vm", "update", "web02", "--hostname", "web01")
    define(inventory)
    assert inventory.json("history", "web01/daily") == []
    (orphan,) = inventory.json("history")
    assert (orphan["definition"], orphan["outcome"]) == ("web01/daily", "ok")
    inventory.ok("metrics", "--textfile", str(tmp_path / "esbackup.prom"))
    metrics = (tmp_path / "esbackup.prom").read_text()
    labels = 'definition="web01/daily",node="b1"'
    lines = metrics.splitlines()  # it never ran: no success, no outcome
    assert f"esbackup_last_success_timestamp_seconds{{{labels}}} NaN" in lines
    assert [line for line in lines if line.startswith("esbackup_last_run_outcome{")] == [
        f'esbackup_last_run_outcome{{{labels},outcome="{o}"}} 0' for o in ("ok", "failed",
                                                                          "skipped")]


def test_backup_csv_carries_the_freeze_flag(inventory):
    define(inventory)
    add_backup(inventory, "daily-20261126_010000", fsfreeze=True)
    header, row = inventory.ok("backup", "list", "-f", "csv", "--full").stdout.splitlines()
    assert dict(zip(header.split(","), row.split(","), strict=True))["fsfreeze"] == "True"
    assert "ok ⚑" in inventory.ok("backup", "list").stdout


def test_overview_json_times_are_iso(inventory):
    define(inventory)
    (d,) = inventory.json("schedule", "overview")
    assert all(t.endswith("+00:00") and t[:4].isdigit() for t in d["next_runs"])
    assert d["compute_node"] == "c1"


def test_node_keeps_roles_in_use(inventory):
    assert "keeps --backup" in inventory.fails(2, "node", "update", "b1", "--no-backup",
                                               "--compute")
    assert "keeps --compute" in inventory.fails(2, "node", "update", "c1", "--no-compute",
                                                "--backup")


def test_moving_a_vm_to_another_node(inventory, monkeypatch):
    assert "no compute role" in inventory.fails(2, "vm", "update", "web01", "--node", "b1")
    inventory.ok("dc", "create", "dc2")
    inventory.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "admin")
    inventory.ok("node", "create", "c2", "--address", "h", "--no-connect")
    monkeypatch.setattr(auth, "os_user", lambda: ("dave", 4243))
    assert "superadmin" in inventory.fails(3, "vm", "update", "web01", "--node", "c2")


def test_restore_of_a_lost_backup_refused_without_warning(inventory):
    define(inventory)
    add_backup(inventory, "daily-20261126_010000")
    Catalog.open(inventory.catalog).conn.execute("UPDATE backups SET status = 'lost'")
    result = inventory("backup", "restore", "web01/daily-20261126_010000", "--yes", "--force")
    assert result.exit_code == 2
    assert "destroys" not in result.stderr and "is lost" in result.stderr


def test_json_sizes_are_bytes(inventory):
    define(inventory)
    inventory.ok("definition", "update", "web01/daily", "--bwlimit", "2M")
    assert inventory.json("definition", "show", "web01/daily")["bwlimit"] == 2 << 20
    assert "2.0 MiB/s" in inventory.ok("definition", "list", "--full").stdout
    assert json.loads(inventory.ok("definition", "list", "-f", "json").stdout)[0]["bwlimit"] \
        == 2097152


@pytest.mark.parametrize("args, message", [
    (["--vm", "nope"], "no such virtual server: nope"),
    (["--definition", "web01/nope"], "no such definition: nope"),
    (["--definition", "nope"], "no such definition: nope"),
])
def test_a_filter_naming_nothing_is_not_found_not_an_empty_list(inventory, args, message):
    assert message in inventory.fails(4, "backup", "list", *args)


def test_filters_of_real_things_with_no_backups_are_empty_lists(inventory):
    define(inventory)
    assert inventory.json("backup", "list", "--vm", "web01") == []
    assert inventory.json("backup", "list", "--definition", "web01/daily") == []
    assert inventory.json("backup", "list", "--vm", "web01", "--status", "lost") == []


def test_definition_update_with_nothing_to_change_says_so(inventory):
    define(inventory)
    stderr = inventory.fails(2, "definition", "update", "web01/daily")
    assert "nothing to change" in stderr


@pytest.mark.parametrize("group", [[], ["backup"], ["definition"]])
def test_a_bare_command_group_prints_its_help(group):
    done = subprocess.run([sys.executable, "-m", "esbackup", *group], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"Usage: esbackup {' '.join(group)}".rstrip() + " [OPTIONS]")
    assert "\nCommands:\n" in done.stdout


def test_a_run_that_reaches_no_node_warns_of_no_cleanup(inventory):
    """Nothing ran on any node (here: no pinned host key), so nothing is undone: the
    one error, not a "cleanup ... zfs destroy failed" warning about a snapshot
    that was never taken."""
    define(inventory)
    result = inventory("run", "web01/daily")
    assert result.exit_code == 1
    assert "no pinned host key" in result.stderr and "cleanup" not in result.stderr
    (run,) = inventory.json("history", "web01/daily")
    assert run["outcome"] == "failed" and inventory.json("backup", "list") == []


def test_history_names_the_backup_a_run_made_by_its_full_reference(inventory):
    define(inventory)
    cat = Catalog.open(inventory.catalog)
    d = cat.definition("web01", "daily")
    cat.add_run(Run(definition=d.ref, definition_id=d.id, trigger="cron", outcome="ok",
                    started="2026-11-26T01:00:00+00:00", backup="daily-20261126_010000"))
    cat.close()
    (run,) = inventory.json("history", "web01/daily")
    assert run["backup"] == "web01/daily-20261126_010000"
    inventory.ok("vm", "update", "web01", "--hostname", "web1")
    assert inventory.json("history")[0]["backup"] == "web1/daily-20261126_010000"


@pytest.mark.parametrize("command", [["run"], ["backup", "now"]])
def test_a_run_asked_for_json_prints_its_outcome_when_it_made_nothing(inventory, command):
    define(inventory)
    result = inventory(*command, "web01/daily", "-f", "json")
    assert result.exit_code == 1  # as without -f: the run failed
    record = json.loads(result.stdout)
    assert record["outcome"] == "failed" and record["backup"] is None
    assert record["definition"] == "web01/daily" and "no pinned host key" in record["error"]
    assert set(record) >= {"name", "type", "status", "size", "sent", "resumed", "duration",
                           "freeze"}


def test_an_inactive_definition_run_as_json_says_skipped_and_exits_2(inventory):
    define(inventory)
    inventory.ok("definition", "update", "web01/daily", "--inactive")
    result = inventory("run", "web01/daily", "-f", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["outcome"] == "skipped"


def test_run_without_format_prints_nothing_off_a_terminal(inventory):
    define(inventory)
    result = inventory("run", "web01/daily")
    assert result.exit_code == 1 and result.stdout == ""


def test_a_tick_takes_no_format(inventory):
    assert "not --due" in inventory.fails(2, "run", "--due", "-f", "json")
    assert "not --due" in inventory.fails(2, "run", "--due", "--dry-run")
