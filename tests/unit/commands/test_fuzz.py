"""Every command driven with generated hostile arguments (hypothesis), in-process
on a real SQLite catalog, within a fixed time budget: exit codes stay in 0-5,
nothing prints a traceback, and every listing still works afterwards (nothing
was stored that breaks one).

Nodes cannot be reached here: `OfflineNetwork` stands in for the SSH transport
and the host-key probe and answers as an unreachable node does (exit 1), so
commands that go to nodes are fuzzed through all their checks up to the wire.
"""
import itertools
import os
import shlex
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esbackup.cli import cli
from esbackup.domain import auth
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
# Mostly known-hostile words (names that exist reach deep) and edge values,
# the rest anything hypothesis makes of text and numbers.
EDGES = ["9" * 30, "9" * 19, "-1", "1e400", "nan", "inf", "١", "²", "0", "65536", "\n",
         "\x1b", "x" * 2000, "٣M", "9" * 20 + "G"]
VALUE = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(HOSTILE), st.sampled_from(EDGES),
                  st.sampled_from(EDGES), st.text(max_size=40),
                  st.integers(-2**70, 2**70).map(str), st.floats().map(str))
WAIT = st.sampled_from(["0", "nan", "inf", "-1", "1e400", "١", "-0", "x"])
DEFINE = ("definition create web01/d? --disk-id 1 --type dataset --node b1 --storage tank "
          "--schedule '0 1 * * *' --retention 3")
# Each hole (?) in an otherwise valid command, so that a hostile value reaches
# as deep as it can; W is a --wait value.
TEMPLATES = [
    "dc create ?", "dc create d9 --desc ?", "dc delete ?", "dc list -f ?",
    "node create ? --address h --no-connect", "node create n9 --address ? --no-connect",
    "node create n9 --address ? --accept-host-key", "node create n9 --address local --host-key ?",
    "node create n9 --address h --no-connect --max-backups ?",
    "node create n9 --address h --no-connect --key ?",
    "node create n9 --address h --no-connect --user ?",
    "node create n9 --address h --no-connect --host-key ?",
    "node update c1 --address ?", "node update ? --max-backups 3",
    "node update c1 --max-backups ?", "node update b1 --ssh-config ?",
    "node update c1 --transfer ?", "node show ?", "node delete ?", "node check ?",
    "node list -f ? --full", "storage create b1 s9 --zpool ?", "storage create ? ? --zpool ?",
    "storage create b1 ? --zpool tank2", "storage list ?", "storage delete b1 ?",
    "vm create ? --node c1 --disk 1=z/x9", "vm create x9 --node ? --disk 1=z/x9",
    "vm create x9 --node c1 --disk ?", "vm create x9 --node c1 --disk 1=z/x9 --uuid ?",
    "vm create x9 --node c1 --disk 1=z/x9 --owner ?", "vm create x9 --node c1 --disk ? --dc ?",
    "vm update web01 --hostname ?", "vm update db01 --hostname ?", "vm update web01 --disk ?",
    "vm update web01 --qga-socket ?", "vm update web01 --dc ?", "vm update web01 --owner ?",
    "vm show ?", "vm delete ? --yes", "vm list --dc ?", "vm list --node ?",
    DEFINE.replace("d?", "?"), DEFINE.replace("--disk-id 1", "--disk-id ?"),
    DEFINE.replace("'0 1 * * *'", "?"), DEFINE.replace("--retention 3", "--retention ?"),
    DEFINE + " --timezone ?", DEFINE + " --bwlimit ?", DEFINE + " --desc ?",
    DEFINE.replace("b1", "?", 1), DEFINE.replace("tank", "?"),
    DEFINE.replace("dataset", "file") + " --compression ?", DEFINE + " --freeze",
    "definition update web01/daily --retention ?", "definition update web01/daily --schedule ?",
    "definition update web01/daily --name ?", "definition update web01/daily --desc ?",
    "definition update web01/daily --timezone ?", "definition update web01/daily --bwlimit ?",
    "definition update ? --retention 1", "definition show ?", "definition delete ? --yes",
    "definition list --vm ? --full", "definition list --dc ?", "definition list --node ?",
    "backup list --vm ?", "backup list --definition ?", "backup list --node ?",
    "backup list --dc ?", "backup list --status ?", "backup show ?", "backup note ? x",
    "backup note web01/daily-20261126_010000 ?", "backup delete ? --yes",
    "backup restore ? --yes --force --wait W",
    "backup restore web01/daily-20261126_010000 --target-vm ? --yes --force",
    "backup restore web01/daily-20261126_010000 --target-disk-id ? --yes --force",
    "backup now ? --wait W", "backup now web01/daily --wait W", "backup sync --node ?",
    "run ? --wait W", "run web01/daily --wait W", "run --due --wait W",
    "history ?", "history --limit ?", "history web01/daily --limit ?",
    "schedule next ?", "schedule next web01/daily --count ?",
    "schedule next web01/daily --after ?", "schedule overview --dc ?",
    "schedule overview --node ?", "schedule load --node ?", "schedule balance --node ?",
    "schedule balance --apply", "cron --user ?", "check", "user create ? --role vmowner",
    "user create u9 --role ?", "user create u9 --role dcadmin --dc ?", "user delete ?",
    "user list -f ?", "catalog rebuild --node ?", "? ?", "? list", "? show ?",
    "backup verify ? --wait W", "backup verify --node ?", "backup verify --older-than ?",
    "history --prune --keep-days ?", "schedule load --days ?", "schedule balance --window ?",
    "backup list --status ? --full -f json",
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


def invoke(esb, template: str, values: list[str], wait: str, caller, tried: dict) -> None:
    """One case: the template's holes filled; exit 0-5, no traceback."""
    filled = itertools.cycle(values)
    argv = [next(filled) if word == "?" else wait if word == "W" else
            word.replace("?", next(filled)) if "?" in word else word
            for word in shlex.split(template)]
    auth.os_user = lambda: caller
    result = CliRunner().invoke(cli, ["--catalog", str(esb.catalog), *argv])
    tried["cases"] += 1
    tried["arguments"] += template.count("?")
    tried["codes"][result.exit_code] = tried["codes"].get(result.exit_code, 0) + 1
    assert result.exit_code in range(6), (argv, result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in result.output, (argv, result.output)


@pytest.mark.slow
def test_hostile_arguments_never_break_a_command_or_a_listing(seeded, monkeypatch):
    """First every edge value in every hole (as root), then hypothesis's own
    mixes as each role, until the time budget is spent."""
    monkeypatch.setattr(auth, "os_user", auth.os_user)  # restored after the test
    stop = time.monotonic() + BUDGET_S
    tried = {"cases": 0, "arguments": 0, "codes": {}}
    for template in TEMPLATES:
        for value in EDGES:
            invoke(seeded, template, [value], "0", ("root", 0), tried)
    check_listings(seeded, monkeypatch)

    @settings(max_examples=4_000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(template=st.sampled_from(TEMPLATES), values=st.lists(VALUE, min_size=4, max_size=4),
           wait=WAIT, caller=st.sampled_from(CALLERS))
    def case(template, values, wait, caller):
        if time.monotonic() > stop:
            return
        invoke(seeded, template, values, wait, caller, tried)
        if tried["cases"] % 250 == 0:
            check_listings(seeded, monkeypatch)

    case()
    check_listings(seeded, monkeypatch)
    print(f"\nfuzz: {tried['cases']} cases, {tried['arguments']} hostile arguments, "
          f"exit codes {dict(sorted(tried['codes'].items()))}")
    assert tried["cases"] >= len(TEMPLATES) * len(EDGES) + 500, tried
