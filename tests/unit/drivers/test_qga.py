"""The freeze step: argv builder, result parser, and the node script run for real
against the guest-agent double (lab/qga_double.py), with a `zfs` double on PATH."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esbackup.drivers.freeze_snapshot import AgentError
from esbackup.drivers.qga import (
    FreezeResult,
    QgaClient,
    parse_result,
    remote_argv,
    script_source,
    smartos_socket_path,
    virsh_remote_argv,
)
from esbackup.errors import InvalidInput, OperationFailed
from lab.qga_double import QgaDouble

SNAP = "zones/0b7c4c6e-disk0@esb-web01-daily-20261126_010000"
ROOT = Path(__file__).resolve().parents[3]

# Test doubles for the node's commands: they log "start TIME ARGS" / "end TIME" and obey
# FAKE_<NAME>_SLEEP (seconds) and FAKE_<NAME>_FAIL (message: print it on stderr, exit 1).
FAKE_COMMAND = """#!/bin/sh
echo "start $(date +%s.%N) $*" >> "$FAKE_LOG"
[ -n "$FAKE_NAME_SLEEP" ] && sleep "$FAKE_NAME_SLEEP"
echo "end $(date +%s.%N)" >> "$FAKE_LOG"
[ -n "$FAKE_NAME_FAIL" ] && { echo "$FAKE_NAME_FAIL" >&2; exit 1; }
exit 0
"""


class Node:
    """A PATH with `zfs` and `virsh` doubles, and their log."""

    def __init__(self, tmp: Path):
        self.bin, self.log = tmp / "bin", tmp / "commands.log"
        self.bin.mkdir()
        for name in ("zfs", "virsh"):
            (self.bin / name).write_text(FAKE_COMMAND.replace("NAME", name.upper()))
            (self.bin / name).chmod(0o755)

    def env(self, **fake: str) -> dict[str, str]:
        """PATH with the doubles; fake=dict(zfs_fail="msg", virsh_sleep="2", ...)."""
        extra = {f"FAKE_{k.upper()}": v for k, v in fake.items()}
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                "FAKE_LOG": str(self.log), **extra}

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split()[2:] for line in self.log.read_text().splitlines()
                if line.startswith("start")]

    def times(self) -> tuple[float, float]:
        """Start and end time of the (single) command run."""
        stamps = [float(line.split()[1]) for line in self.log.read_text().splitlines()]
        return stamps[0], stamps[-1]


@pytest.fixture
def node(tmp_path) -> Node:
    return Node(tmp_path)


@pytest.fixture
def sock(tmp_path) -> str:
    return str(tmp_path / "vm.qga")


def run_step(argv: list[str], env: dict[str, str], timeout: float = 30):
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, json.loads(proc.stdout)


def event_time(double: QgaDouble, command: str) -> float:
    return next(e.time for e in double.events if e.command == command)


# ---- admin side: pure ----

def test_remote_argv_is_exact():
    assert remote_argv("/zones/0b7c4c6e/root/tmp/vm.qga", SNAP) == [
        "python3", "-c", script_source(), "--timeout", "120", "--",
        "qga", "/zones/0b7c4c6e/root/tmp/vm.qga", SNAP]


def test_virsh_remote_argv_is_exact():
    assert virsh_remote_argv("web01", SNAP, timeout=2.5, python="/usr/bin/python3") == [
        "/usr/bin/python3", "-c", script_source(), "--timeout", "2.5", "--",
        "virsh", "web01", SNAP]


@pytest.mark.parametrize("snapshot", [
    "pool/ds", "pool/ds@", "@snap", "-pool/ds@s", "pool/ds@s;rm -rf /", "pool//ds@s",
    "pool/ds@s@t", "pool/ds@s\n", "pool/ds@a b", "p/" + "d" * 260 + "@s"])
def test_remote_argv_refuses_bad_snapshot_names(snapshot):
    with pytest.raises(InvalidInput):
        remote_argv("/run/vm.qga", snapshot)


@pytest.mark.parametrize("call", [
    lambda: remote_argv("vm.qga", SNAP),
    lambda: remote_argv("/run/vm\n.qga", SNAP),
    lambda: remote_argv("/run/vm.qga", SNAP, timeout=0),
    lambda: virsh_remote_argv("--all", SNAP),
    lambda: virsh_remote_argv("", SNAP),
])
def test_remote_argv_refuses_bad_targets(call):
    with pytest.raises(InvalidInput):
        call()


def test_smartos_socket_path():
    assert smartos_socket_path("0b7c4c6e") == "/zones/0b7c4c6e/root/tmp/vm.qga"


def test_parse_result_reads_the_last_line():
    line = json.dumps({"frozen": False, "thawed": True, "frozen_filesystems": 0,
                       "snapshot": SNAP, "note": "not frozen: agent silent"})
    assert parse_result(f"a banner\n{line}\n") == FreezeResult(
        frozen=False, thawed=True, note="not frozen: agent silent", snapshot=SNAP)


@pytest.mark.parametrize("stdout", [
    "", "\n", "Traceback (most recent call last):", '{"frozen": true}',
    '{"frozen": "yes", "thawed": true, "frozen_filesystems": 0, "snapshot": null, "note": ""}'])
def test_parse_result_refuses_garbage(stdout):
    with pytest.raises(OperationFailed):
        parse_result(stdout)


def test_script_is_stdlib_only_and_python37():
    tree = ast.parse(script_source(), feature_version=(3, 7))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)}
    assert modules <= sys.stdlib_module_names


# ---- the node script against the double ----

def test_freeze_snapshot_thaw(node, sock):
    with QgaDouble(sock) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=5), node.env())
    assert proc.returncode == 0, proc.stderr
    assert out == {"frozen": True, "thawed": True, "frozen_filesystems": 2,
                   "snapshot": SNAP, "note": ""}
    assert node.calls() == [["snapshot", SNAP]]
    assert double.commands == ["guest-sync-delimited", "guest-fsfreeze-freeze",
                               "guest-fsfreeze-thaw"]
    start, end = node.times()
    assert event_time(double, "guest-fsfreeze-freeze") < start
    assert end < event_time(double, "guest-fsfreeze-thaw")
    assert double.state == "thawed"


def test_stale_replies_before_sync_are_skipped(node, sock):
    with QgaDouble(sock, ("stale",)) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=5), node.env())
    assert (proc.returncode, out["frozen"], out["thawed"]) == (0, True, True)
    assert double.state == "thawed"


def test_silent_agent_still_snapshots_within_the_timeout(node, sock):
    with QgaDouble(sock, ("hang",)) as double:
        began = time.monotonic()
        proc, out = run_step(remote_argv(sock, SNAP, timeout=1), node.env())
        took = time.monotonic() - began
    assert proc.returncode == 0
    assert out["frozen"] is False and out["thawed"] is True and out["snapshot"] == SNAP
    assert "guest-sync" in out["note"]
    assert took < 10  # the step gives up on the silent agent (a hang would outlast this)
    assert node.calls() == [["snapshot", SNAP]]
    assert "guest-fsfreeze-freeze" not in double.commands  # never queued to a silent agent


def test_missing_socket_still_snapshots(node, sock):
    proc, out = run_step(remote_argv(sock, SNAP, timeout=5), node.env())
    assert (proc.returncode, out["frozen"], out["snapshot"]) == (0, False, SNAP)
    assert "cannot connect" in out["note"]


def test_freeze_error_still_snapshots_and_thaws(node, sock):
    with QgaDouble(sock, ("freeze-error",)) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=5), node.env())
    assert (proc.returncode, out["frozen"], out["thawed"]) == (0, False, True)
    assert "Device or resource busy" in out["note"]
    assert node.calls() == [["snapshot", SNAP]]
    assert double.commands[-1] == "guest-fsfreeze-thaw"


def test_freeze_answered_too_late_is_not_frozen_but_thawed(node, sock):
    with QgaDouble(sock, ("slow-freeze",), freeze_delay=1.5) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=0.5), node.env())
    assert (proc.returncode, out["frozen"], out["thawed"]) == (0, False, True)
    assert "guest-fsfreeze-freeze" in out["note"]
    assert double.commands[-1] == "guest-fsfreeze-thaw"
    assert double.state == "thawed"


def test_thaw_error_is_reported(node, sock):
    with QgaDouble(sock, ("thaw-error",)) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=5), node.env())
    assert (proc.returncode, out["frozen"], out["thawed"]) == (0, True, False)
    assert "thaw failed" in out["note"]
    assert double.commands.count("guest-fsfreeze-thaw") == 3


def test_failed_snapshot_still_thaws(node, sock):
    env = node.env(zfs_fail="cannot create snapshot: out of space")
    with QgaDouble(sock) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=5), env)
    assert proc.returncode == 1
    assert "out of space" in proc.stderr
    assert out["snapshot"] is None and out["thawed"] is True
    assert double.commands[-1] == "guest-fsfreeze-thaw"
    assert double.state == "thawed"


def test_snapshot_outlasting_the_timeout_is_thawed_first(node, sock):
    with QgaDouble(sock) as double:
        proc, out = run_step(remote_argv(sock, SNAP, timeout=0.5), node.env(zfs_sleep="1.5"))
    assert (proc.returncode, out["frozen"], out["snapshot"]) == (0, False, SNAP)
    assert "outlasted" in out["note"]
    _, zfs_end = node.times()
    assert event_time(double, "guest-fsfreeze-thaw") < zfs_end
    assert double.commands.count("guest-fsfreeze-thaw") == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_during_freeze_thaws(node, sock, signum):
    with QgaDouble(sock, ("slow-freeze",), freeze_delay=1.0) as double:
        proc = subprocess.Popen(remote_argv(sock, SNAP, timeout=30), env=node.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while "guest-fsfreeze-freeze" not in double.commands and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signum, stderr
    out = json.loads(stdout)
    assert out["note"] == f"interrupted by {signal.Signals(signum).name}"
    assert (out["thawed"], out["snapshot"]) == (True, None)
    assert double.commands[-1] == "guest-fsfreeze-thaw"
    assert double.state == "thawed"
    assert node.calls() == []


def test_script_refuses_a_bad_snapshot_name(node, sock):
    argv = remote_argv(sock, SNAP)
    argv[-1] = "pool/ds@x;reboot"
    proc = subprocess.run(argv, env=node.env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid snapshot name" in proc.stderr
    assert node.calls() == []


# ---- libvirt mode: virsh double, for a fault on demand (the rest runs against a real
# libvirtd in tests/integration/test_libvirt.py) ----

def test_virsh_failure_still_snapshots(node):
    env = node.env(virsh_fail="error: Guest agent is not responding")
    proc, out = run_step(virsh_remote_argv("web01", SNAP, timeout=5), env)
    assert (proc.returncode, out["frozen"], out["thawed"]) == (0, False, True)
    assert out["snapshot"] == SNAP
    assert "Guest agent is not responding" in out["note"]
    assert [c[0] for c in node.calls()] == ["domfsfreeze", "snapshot", "domfsthaw", "domfsthaw",
                                            "domfsthaw"]


# ---- the client itself ----

def test_client_commands(sock):
    with QgaDouble(sock) as double, QgaClient(sock, timeout=2) as client:
        client.sync()
        assert client.status() == "thawed"
        assert client.freeze() == 2
        assert client.status() == "frozen"
        assert client.thaw() == 2
        assert client.call("guest-ping") == {}
        assert double.state == "thawed"


def test_client_times_out_on_a_silent_agent(sock):
    with QgaDouble(sock, ("hang",)), QgaClient(sock) as client:
        began = time.monotonic()
        with pytest.raises(AgentError) as err:
            client.sync(timeout=0.5)
        assert time.monotonic() - began < 1.5
        assert not err.value.answered


def test_client_error_reply_is_answered(sock):
    with QgaDouble(sock), QgaClient(sock, timeout=2) as client:
        with pytest.raises(AgentError) as err:
            client.call("guest-no-such-command")
        assert err.value.answered and "has not been found" in str(err.value)


def test_double_runs_as_a_process(sock):
    proc = subprocess.Popen([sys.executable, "-m", "lab.qga_double", sock, "--fault",
                             "freeze-error"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()  # listening
        with QgaClient(sock, timeout=5) as client, pytest.raises(AgentError, match="busy"):
            client.freeze()
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.returncode == 0 and not os.path.exists(sock)
