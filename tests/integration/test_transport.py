"""The transport against real sshd instances on loopback, and locally."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from esbackup.domain.models import Node
from esbackup.drivers import openssh, transport
from esbackup.drivers.transport import Result, connect, fetch_host_key
from esbackup.errors import (
    HostKeyMismatch,
    InvalidInput,
    NodeUnreachable,
    OperationFailed,
    RemoteCommandError,
)
from lab.nodes import Lab, LabNode

MiB = 1 << 20
WEIRD_ARGS = ["a b;$(id)`x`", "it's", 'say "hi"', "x; rm -rf /nonexistent", "$(id)", "`id`",
              "$HOME", "*", "back\\slash", "new\nline", "", "-n", "|&>"]


@pytest.fixture
def ssh_node(new_node: Callable[..., LabNode]) -> LabNode:
    return new_node(pool_size=None)


@pytest.fixture(params=["ssh", "local"])
def any_node(request: pytest.FixtureRequest, new_node: Callable[..., LabNode]) -> Node:
    """A node record reached over SSH, or the local one (same API)."""
    if request.param == "local":
        return Node(name="here", address="local")
    return new_node(pool_size=None).node()


def unreachable(node: Node) -> str:
    with pytest.raises(NodeUnreachable) as caught:
        connect(node, timeout=2).run(["true"])
    return str(caught.value)


def test_run_gives_status_stdout_stderr(any_node: Node) -> None:
    t = connect(any_node)
    result = t.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert result == Result(3, "out\n", "err\n")
    with pytest.raises(RemoteCommandError) as caught:
        t.run(["sh", "-c", "echo boom >&2; exit 2"])
    assert (caught.value.status, caught.value.node) == (2, any_node.name)
    assert "boom" in str(caught.value)
    assert t.run(["cat"], input=b"fed\n").stdout == "fed\n"


def test_arguments_arrive_literally(any_node: Node) -> None:
    t = connect(any_node)
    assert t.run(["printf", "%s\n", "a b;$(id)`x`"]).stdout == "a b;$(id)`x`\n"
    assert t.run(["printf", "%s\\0", *WEIRD_ARGS]).stdout.split("\0")[:-1] == WEIRD_ARGS


def test_bad_argv_is_invalid_input(any_node: Node) -> None:
    for argv in ([], ["echo", "nul\0byte"], ["echo", 3]):
        with pytest.raises(InvalidInput):
            connect(any_node).run(argv)


def test_stream_moves_50_mb_intact(any_node: Node) -> None:
    data = os.urandom(50 * MiB)
    with connect(any_node).open_stream(["sha256sum"]) as stream:
        for start in range(0, len(data), MiB):
            stream.write(data[start:start + MiB])
        stream.close_stdin()
        remote = stream.read()
        assert stream.wait() == 0
    assert remote.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_stream_is_full_duplex(any_node: Node) -> None:
    """Writing and reading at once through `cat` (windows on both sides) does not stall."""
    data = os.urandom(20 * MiB)
    with connect(any_node).open_stream(["cat"]) as stream:
        writer = threading.Thread(target=stream.feed, args=(data,))
        writer.start()
        echoed = hashlib.sha256()
        while chunk := stream.read():
            echoed.update(chunk)
        writer.join()
        assert stream.wait() == 0
    assert echoed.hexdigest() == hashlib.sha256(data).hexdigest()


def test_command_killed_mid_stream_raises(any_node: Node, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", 'echo $$ > "$1"; exec cat > /dev/null', "sh", str(pidfile)]
    with connect(any_node).open_stream(argv) as stream:
        stream.write(b"x" * MiB)
        while not pidfile.exists() or not pidfile.read_text().strip():
            time.sleep(0.01)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        with pytest.raises(RemoteCommandError, match="killed by signal"):
            for _ in range(1000):
                stream.write(b"x" * MiB)


def test_command_ending_early_raises(any_node: Node) -> None:
    t = connect(any_node)
    with pytest.raises(RemoteCommandError) as caught, \
            t.open_stream(["sh", "-c", "echo nope >&2; exit 4"]) as stream:
        for _ in range(1000):
            stream.write(b"x" * MiB)
    assert caught.value.status == 4 and "nope" in str(caught.value)
    with pytest.raises(OperationFailed, match="before reading all its input"), \
            t.open_stream(["head", "-c1"]) as stream:
        for _ in range(1000):
            stream.write(b"x" * MiB)


def test_run_timeout(any_node: Node) -> None:
    with pytest.raises(OperationFailed, match="timed out"):
        connect(any_node).run(["sleep", "3"], timeout=0.3)


def test_local_missing_program() -> None:
    t = connect(Node(name="here", address="local"))
    assert t.run(["esb-no-such-program"], check=False).status == 127
    with pytest.raises(RemoteCommandError):
        t.run(["esb-no-such-program"])


def test_connect_is_lazy_shared_and_reconnects(lab: Lab, ssh_node: LabNode) -> None:
    node = ssh_node.node()
    lab.stop_sshd(ssh_node)
    t = connect(node)  # no network yet
    assert connect(node) is t
    lab.start_sshd(ssh_node)
    first = t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout
    assert t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout == first  # one connection
    lab.stop_sshd(ssh_node)
    lab.start_sshd(ssh_node)
    assert t.run(["true"]).status == 0  # the dead connection was replaced
    with connect(node) as again:
        assert again is t
    assert connect(node) is not t  # leaving the block closed it


def test_sshd_killed_mid_stream_raises(lab: Lab, ssh_node: LabNode) -> None:
    t = connect(ssh_node.node())
    with t.open_stream(["sh", "-c", "cat > /dev/null"]) as writing, \
            t.open_stream(["head", "-c", "1000000000", "/dev/zero"]) as reading:
        writing.write(b"x" * MiB)
        assert reading.read()
        lab.stop_sshd(ssh_node)
        # a race sshd decides: the connection drops first, or its session reports
        # the command killed by the hang-up first; either way a clear error, no hang
        with pytest.raises(OperationFailed, match="connection lost|killed by signal"):
            for _ in range(1000):
                writing.write(b"x" * MiB)
        with pytest.raises(NodeUnreachable, match="connection lost"):
            while reading.read():
                pass


@pytest.mark.parametrize("sshd_options", [{}, {"RekeyLimit": "1M"}], ids=["client", "server"])
def test_channels_come_and_go_across_rekeys(new_node: Callable[..., LabNode],
                                            monkeypatch: pytest.MonkeyPatch,
                                            sshd_options: dict[str, str]) -> None:
    """paramiko's own rekey limits (shrunk here from 512 MiB) must not make it start a
    rekey: that deadlocks when a channel closes meanwhile. Rekeys the server starts
    (here every MiB) are safe."""
    import paramiko

    monkeypatch.setattr(paramiko.packet.Packetizer, "REKEY_BYTES", MiB)
    monkeypatch.setattr(paramiko.packet.Packetizer, "REKEY_PACKETS", 100)
    t = connect(new_node(pool_size=None, sshd_options=sshd_options).node())
    for _ in range(20):
        with t.open_stream(["head", "-c", str(MiB), "/dev/zero"]) as stream:
            assert sum(len(chunk) for chunk in iter(stream.read, b"")) == MiB
            assert stream.wait() == 0
        assert t.run(["wc", "-c"], input=b"x" * (MiB // 2)).stdout.strip() == str(MiB // 2)


def test_fetch_host_key_and_changed_key_refused(lab: Lab, ssh_node: LabNode) -> None:
    node = ssh_node.node()
    assert fetch_host_key(replace(node, host_key=None)) == ("ssh-ed25519", ssh_node.host_key)
    connect(node).run(["true"])
    transport.close_all()
    old, new = ssh_node.host_key, lab.regenerate_host_key(ssh_node)
    with pytest.raises(HostKeyMismatch) as caught:
        connect(node).run(["true"])
    assert str(caught.value) == (f"host key mismatch for node {node.name}: "
                                 f"pinned {old}, offered {new}")
    assert connect(replace(node, host_key=new)).run(["true"]).status == 0


def test_unpinned_node_is_refused(ssh_node: LabNode) -> None:
    with pytest.raises(NodeUnreachable, match="no pinned host key"):
        connect(replace(ssh_node.node(), host_key=None))


def test_unreachable_nodes_give_one_clear_line(lab: Lab, ssh_node: LabNode, tmp_path: Path) -> None:
    node = ssh_node.node()
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    assert "cannot resolve host name 'esb-no-such-host.invalid'" in unreachable(
        replace(node, address="esb-no-such-host.invalid"))
    assert "authentication failed for root@" in unreachable(replace(node, key_path=str(stranger)))
    assert "authentication failed for esb-no-such-user@" in unreachable(
        replace(node, user="esb-no-such-user"))
    assert "key file /nonexistent/key not found" in unreachable(
        replace(node, key_path="/nonexistent/key"))
    lab.stop_sshd(ssh_node)
    assert f"connection refused by {node.address}:{node.port}" in unreachable(node)


def test_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts TCP (backlog) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        node = Node(name="mute", address="127.0.0.1", port=silent.getsockname()[1],
                    host_key="SHA256:x")
        started = time.monotonic()
        message = unreachable(node)
    assert "mute" in message and "\n" not in message and time.monotonic() - started < 10


def test_ssh_config_completes_the_node(lab: Lab, ssh_node: LabNode, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text(f"Host esb-alias\n  HostName {ssh_node.address}\n  Port {ssh_node.port}\n"
                      f"  User root\n  IdentityFile {ssh_node.key_path}\n")
    monkeypatch.setattr(transport, "SSH_CONFIG", config)
    node = Node(name="aliased", address="esb-alias", host_key=ssh_node.host_key)
    assert connect(node).run(["true"]).status == 0


def test_importing_the_module_does_not_load_paramiko() -> None:
    code = "import sys, esbackup.drivers.transport; sys.exit('paramiko' in sys.modules)"
    root = Path(__file__).parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --- OpenSSH data legs (drivers/openssh.py) ------------------------------------
def test_openssh_leg_moves_bytes_intact_and_gives_status_and_stderr(ssh_node: LabNode) -> None:
    session = connect(ssh_node.node())
    data = os.urandom(2 * MiB)
    with openssh.open_stream(session, ["sha256sum"]) as stream:
        stream.write(data)
        stream.close_stdin()
        out = b"".join(iter(stream.read, b""))
        assert stream.wait() == 0
    assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    with openssh.open_stream(session, ["sh", "-c", "echo oops >&2; exit 3"]) as stream:
        assert stream.wait() == 3
        assert stream.error(3).status == 3 and "oops" in stream.stderr


def test_openssh_leg_trusts_only_the_key_the_login_verified(ssh_node: LabNode,
                                                           tmp_path: Path) -> None:
    import paramiko

    session = connect(ssh_node.node())
    target, _ = session.login()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    other = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    session.login = lambda: (target, other)  # double: a login that had verified another key
    with openssh.open_stream(session, ["echo", "never"]) as stream, \
            pytest.raises(NodeUnreachable, match="Host key verification failed"):
        stream.wait()
    # refused as a changed key: ssh compared the node's key with the one it was given
    assert "Host key for esbackup-node has changed" in stream.stderr


def test_openssh_leg_lost_when_sshd_dies(lab: Lab, ssh_node: LabNode) -> None:
    session = connect(ssh_node.node())
    with openssh.open_stream(session, ["head", "-c", "1000000000", "/dev/zero"]) as reading:
        assert reading.read()
        lab.stop_sshd(ssh_node)
        with pytest.raises(NodeUnreachable, match="connection lost"):
            while reading.read():
                pass


@pytest.mark.parametrize("how", ["run", "batch"])
def test_a_node_answering_past_the_output_cap_fails_in_one_line_and_stays_usable(
        any_node: Node, how: str) -> None:
    from esbackup.drivers import batch

    t = connect(any_node)
    flood = ["sh", "-c", "yes 0123456789abcdef | head -c 200M"]
    with pytest.raises(OperationFailed) as caught:
        if how == "run":
            t.run(flood)
        else:
            batch.run(t, [batch.Step("flood", flood)])
    assert str(caught.value) == (
        f"node {any_node.name}: {'sh' if how == 'run' else 'batch (flood)'} printed more "
        "than 16 MiB, the cap on one call's output")
    assert t.run(["echo", "still here"]).stdout == "still here\n"
