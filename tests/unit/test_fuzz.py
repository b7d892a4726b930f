"""Every command driven with generated hostile arguments (hypothesis), in-process
on a real SQLite catalog, within a fixed time budget: exit codes stay in 0-5,
nothing prints a traceback, and every listing still works afterwards (nothing
was stored that breaks one).

Nodes cannot be reached here: `OfflineNetwork` stands in for the SSH transport
and the host-key probe and answers as an unreachable node does (exit 1), so
commands that go to nodes are fuzzed through all their checks up to the wire.
"""
import os
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esbackup import auth
from esbackup.cli import cli
from esbackup.errors import NodeUnreachable

BUDGET_S = float(os.environ.get("ESBACKUP_FUZZ_SECONDS", "75"))
UUID = "3f2a5a4e-0000-4000-8000-000000000001"
HOSTILE = [
    "web01", UUID, UUID.upper(), UUID.replace("-", ""), "db01", "admin", "c1", "b1", "tank",
    "web01/daily", f"{UUID}/daily", "web01/daily-20261126_010000", "", "-", "--", "\n",
    "a\nb", "\x1b[2J", "\r", "\x00", "\u2028", "١", "²", "٣M", "inf", "nan", "-1", "0", "1",
    "2", "9" * 30, "1e400", "-0", "1_0", " 1", "../../etc/passwd", "/etc/passwd", "$(id)",
    "`id`", "a b", "%", "%s%n", "tank/-x", "1tank", "tank/a@b", "local", "127.0.0.1:0",
    "[::1]:22", "h:99999", "x" * 300, "é", "🙂", "Europe/Prague", "Mars/Olympus", "UTC\n",
    "0 1 * * *", "61 * * * *", "* * * * *", "0 0 31 2 *", "SHA256:" + "A" * 43, "dataset",
    "file", "gzip", "superadmin", "dcadmin", "vmowner", "1=z/a", "1=zones/web01-disk0",
    "0=z/a", "1=", "2000-01-01", "99999-01-01", "0001-01-01T00:00", "json", "csv", "tsv",
    "plain", "github", "-f", "--help", "root\n* * * * * root id",
]
VALUE = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                  st.integers().map(str), st.floats().map(str))
WAIT = st.sampled_from(["0", "nan", "inf", "-1", "1e400", "١", "-0", "x"])
TEMPLATES = [
    "dc create ? --desc ?", "dc delete ?", "dc list -f ?",
    "node create ? --address ? --no-connect", "node create ? --address ? --accept-host-key",
    "node create ? --address ? --no-connect --max-backups ? --key ? --user ?",
    "node create ? --address local --no-connect --host-key ?",
    "node update ? --address ? --max-backups ?", "node update ? --ssh-config ? --transfer ?",
    "node show ?", "node delete ?", "node check ?", "node list -f ? --full",
    "storage create ? ? --zpool ?", "storage list ?", "storage delete ? ?",
    "vm create ? --node ? --disk ? --uuid ?", "vm create ? --node c1 --disk ? --owner ? --dc ?",
    "vm update ? --hostname ?", "vm update ? --disk ?", "vm update ? --qga-socket ?",
    "vm update ? --dc ? --owner ?", "vm show ?", "vm delete ? --yes", "vm list --dc ? --node ?",
    "definition create ? --disk-id ? --type dataset --node b1 --storage tank --schedule ? "
    "--retention ? --timezone ? --bwlimit ? --desc ?",
    "definition create ? --disk-id 1 --type ? --node ? --storage ? --schedule ? --retention ?"
    " --compression ? --freeze",
    "definition update ? --retention ? --schedule ? --name ?", "definition update ? --desc ?",
    "definition show ?", "definition delete ? --yes", "definition list --vm ? --full",
    "backup list --vm ? --definition ? --node ?", "backup list --dc ? --status ?",
    "backup show ?", "backup note ? ?", "backup delete ? --yes",
    "backup restore ? --target-vm ? --target-disk-id ? --yes --force --wait W",
    "backup now ? --wait W", "backup sync --node ?", "run ? --wait W", "run --due --wait W",
    "history ? --limit ?", "history --failed --limit ?",
    "schedule next ? --count ? --after ?", "schedule overview --dc ? --node ?",
    "schedule load --node ?", "schedule balance --node ?", "schedule balance --apply",
    "cron --user ?", "check", "user create ? --role ? --dc ?", "user delete ?", "user list",
    "catalog rebuild --node ?", "? ?",
]
LISTINGS = [["dc", "list"], ["node", "list", "--full"], ["storage", "list"],
            ["vm", "list", "--full"], ["definition", "list", "--full"],
            ["backup", "list", "--full"], ["history"], ["schedule", "overview", "--full"],
            ["schedule", "load"], ["user", "list"], ["cron"]]
CALLERS = [("root", 0), ("dave", 4243), ("olga", 4242)]


class OfflineNetwork:
    """Double of the SSH transport and host-key probe: every node is unreachable."""

    def __call__(self, node, *args, **kwargs):
        raise NodeUnreachable(f"node {node.name}: unreachable (offline fuzz run)")


@pytest.fixture
def seeded(inventory, monkeypatch):
    from esbackup.drivers import transport

    offline = OfflineNetwork()
    monkeypatch.setattr(transport, "connect", offline)
    monkeypatch.setattr(transport, "fetch_host_key", offline)
    inventory.ok("dc", "create", "dc2")
    inventory.ok("user", "create", "dave", "--role", "dcadmin", "--dc", "dc2")
    inventory.ok("user", "create", "olga", "--role", "vmowner")
    inventory.ok("vm", "create", "db01", "--node", "c1", "--dc", "dc2", "--owner", "olga",
                 "--disk", "1=zones/db01")
    inventory.ok("definition", "create", "web01/daily", "--disk-id", "1", "--type", "dataset",
                 "--node", "b1", "--storage", "tank", "--schedule", "0 1 * * *",
                 "--retention", "3")
    return inventory


def check_listings(esb, monkeypatch):
    monkeypatch.setattr(auth, "os_user", lambda: ("root", 0))
    for argv in LISTINGS:
        for fmt in ("table", "json"):
            result = CliRunner().invoke(cli, ["--catalog", str(esb.catalog), *argv, "-f", fmt]
                                        if argv != ["cron"] else ["--catalog", str(esb.catalog),
                                                                  *argv])
            assert result.exit_code == 0, (argv, result.output, result.exception)


@pytest.mark.slow
def test_hostile_arguments_never_break_a_command_or_a_listing(seeded, monkeypatch):
    stop = time.monotonic() + BUDGET_S
    tried = {"cases": 0, "arguments": 0, "codes": {}}

    @settings(max_examples=4_000, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(template=st.sampled_from(TEMPLATES), values=st.lists(VALUE, min_size=4, max_size=4),
           wait=WAIT, caller=st.sampled_from(CALLERS))
    def case(template, values, wait, caller):
        if time.monotonic() > stop:
            return
        monkeypatch.setattr(auth, "os_user", lambda: caller)
        argv, filled = [], iter(values * 2)
        for word in template.split():
            argv.append(next(filled) if word == "?" else wait if word == "W" else word)
        result = CliRunner().invoke(cli, ["--catalog", str(seeded.catalog), *argv])
        tried["cases"] += 1
        tried["arguments"] += template.count("?")
        tried["codes"][result.exit_code] = tried["codes"].get(result.exit_code, 0) + 1
        assert result.exit_code in range(6), (argv, result.output, result.exception)
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), (argv, repr(result.exception))
        assert "Traceback" not in result.output, (argv, result.output)
        if tried["cases"] % 250 == 0:
            check_listings(seeded, monkeypatch)

    case()
    check_listings(seeded, monkeypatch)
    print(f"\nfuzz: {tried['cases']} cases, {tried['arguments']} hostile arguments, "
          f"exit codes {dict(sorted(tried['codes'].items()))}")
    assert tried["cases"] >= 500, tried
