"""Run commands on nodes: over SSH (paramiko, pinned host keys) or locally.

One `Transport` per node and process (`connect` caches them by node name); it
connects lazily, at its first command, and reconnects if the connection died.
Commands are argv lists: this module is the one place that quotes them
(`shlex.join`) for the remote login shell, which must be a POSIX shell. A node
whose address is `local` runs the same API with subprocess, argv directly and
no shell.

Host keys are pinned: the node's `host_key` ("SHA256:..." as OpenSSH prints
it) must match the key the server offers. A node without one can only be asked
for its key (`fetch_host_key`), which `node create`/`node check
--accept-host-key` then store.

paramiko is imported inside functions only, so `esbackup --help` never loads it.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import shlex
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esbackup.errors import (
    HostKeyMismatch,
    InvalidInput,
    NodeUnreachable,
    NotConnected,
    OperationFailed,
    RemoteCommandError,
)

if TYPE_CHECKING:
    import paramiko
    from paramiko.transport import _SocketLike  # what paramiko.Transport takes as sock

    from esbackup.domain.models import Node

LOCAL = "local"
SSH_CONFIG = Path("~/.ssh/config")
CHUNK = 1 << 20  # default read size of a stream
STDERR_KEPT = 64 * 1024  # a stream keeps the last 64 KiB of stderr
# Chosen by measurement over loopback (bench/transfer.py; a shared 2-core machine, so
# noisy): data from a node ran at 1.5-1.6x OpenSSH's `ssh node cat` (read through a
# pipe) with paramiko's defaults (2 MiB, 32 KiB, aes128-ctr), 2.4-3.4x with these.
# AES-GCM and 256 KiB packets gave most of it; windows of 8-64 MiB were all close.
# Data to a node is paced by sshd's own window: 1.3-2x whatever we choose.
WINDOW_SIZE = 32 * 1024 * 1024
MAX_PACKET_SIZE = 256 * 1024
CIPHERS: tuple[str, ...] = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")
NEVER_REKEY = 1 << 62
TAKE_ALL = 1 << 32  # more than any window: a channel recv() of it empties paramiko's buffer
# The stdout one non-stream call may return (run, batch, pipeline): a node's answer
# is untrusted, and one of 200 MiB cost the admin host 619 MiB before this cap.
# Listings and manifests of a large node stay far below it (read_files splits).
MAX_OUTPUT = 16 << 20

# paramiko's transport thread logs a failed handshake (a node whose sshd resets the
# connection) with a traceback; with no handler, Python printed it to stderr under
# our one-line error. The error reaches the user as NodeUnreachable instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

_cache: dict[str, Transport] = {}
_cache_lock = threading.RLock()  # Transport.close() takes it too


@dataclass(frozen=True)
class Result:
    """What a finished command left: status (negative: killed by a signal), stdout, stderr."""

    status: int
    stdout: str
    stderr: str


def connect(node: Node, *, timeout: float = 10.0) -> Transport:
    """The transport of `node`, shared within this process; no network until its first use.

    A cached transport is reused while the node's address, port, user, key and
    pinned host key stay the same. An SSH node without a pinned host key is
    refused (NodeUnreachable).
    """
    with _cache_lock:
        cached = _cache.get(node.name)
        if cached is not None and _endpoint(cached.node) == _endpoint(node):
            return cached
        if cached is not None:
            cached.close()
        if node.address == LOCAL:
            transport: Transport = LocalTransport(node)
        else:
            transport = SSHTransport(node, timeout=timeout)
        _cache[node.name] = transport
        return transport


def close_all() -> None:
    """Close every cached transport."""
    with _cache_lock:
        transports = list(_cache.values())
        _cache.clear()
    for transport in transports:
        transport.close()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint: "SHA256:" + unpadded base64 of the key's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fetch_host_key(node: Node, *, timeout: float = 10.0) -> tuple[str, str]:
    """(key type, fingerprint) of the host key the node offers; no login, nothing trusted."""
    import paramiko

    target = _Target.of(node)
    transport = paramiko.Transport(target.open_socket(node, timeout))
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise target.failure(node, exc) from exc
    finally:
        transport.close()
    return key.get_name(), fingerprint(key)


def _endpoint(node: Node) -> tuple:
    return (node.address, node.port, node.user, node.key_path, node.host_key)


def _checked(argv: list[str]) -> list[str]:
    """argv as a list of strings exec can take; anything else is a bug or bad input."""
    if not argv or not all(isinstance(arg, str) and "\0" not in arg for arg in argv):
        raise InvalidInput(f"invalid command line: {argv!r}")
    return list(argv)


class Transport:
    """Runs commands on one node; as a context manager, closes it on exit."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_stream(self, argv: list[str], *, check: bool = True) -> Stream:
        """Start a command whose stdin and stdout are byte streams (see `Stream`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop the connection, and this transport from the cache."""
        with _cache_lock:
            if _cache.get(self.node.name) is self:
                del _cache[self.node.name]

    def run(self, argv: list[str], *, input: bytes | None = None, check: bool = True,
            timeout: float | None = None) -> Result:
        """Run a command to its end, feeding it `input`; with `check`, non-zero exit raises.

        After `timeout` seconds the command is stopped and OperationFailed raised.
        """
        with self.open_stream(argv, check=False) as stream:
            timer = None
            if timeout:
                timer = threading.Timer(timeout, stream.abort, (f"timed out after {timeout:g} s",))
                timer.start()
            # A thread feeds stdin so that output filling the window cannot block the feed.
            feeder = threading.Thread(target=stream.feed, args=(input or b"",), daemon=True)
            feeder.start()
            try:
                stdout = bytearray()
                while read_capped(stream, stdout):
                    pass
                status = stream.wait()
            finally:
                if timer:
                    timer.cancel()
            feeder.join()
        if check and status != 0:
            raise stream.error(status)
        return Result(status, stdout.decode(errors="replace"), stream.stderr)


def read_capped(stream: Stream, out: bytearray, what: str | None = None) -> bool:
    """Append the stream's next output to `out`; False at its end. Past
    MAX_OUTPUT the command is stopped and OperationFailed raised, one line
    naming the cap and the node."""
    chunk = stream.read()
    if len(out) + len(chunk) > MAX_OUTPUT:
        cap = f"{MAX_OUTPUT >> 20} MiB"
        stream.abort(f"printed more than {cap}")
        raise OperationFailed(f"node {stream.node}: {what or stream.argv[0]} printed more than "
                              f"{cap}, the cap on one call's output")
    out += chunk
    return bool(chunk)


class Stream:
    """A running command: write() feeds its stdin, read() takes its stdout, stderr is kept.

    write() and read() raise when the command or the connection dies:
    RemoteCommandError when the command exited non-zero or was killed (with its
    stderr), NodeUnreachable when the connection was lost, OperationFailed when
    it ended without reading all its input or was aborted. read() returns b""
    at the end of the output. wait() closes stdin, discards output nobody read,
    and returns the exit status; with `check`, a non-zero one raises.
    Leaving the `with` block before wait() stops the command: locally it is
    killed; over SSH its channel is closed, which ends a command that reads or
    writes, not one that does neither (sshd does not signal it).
    """

    _errors: tuple[type[Exception], ...] = (OSError, EOFError, ValueError)  # broken pipe/channel

    def __init__(self, node: str, argv: list[str], check: bool) -> None:
        self.node, self.argv, self.check = node, argv, check
        self.status: int | None = None  # set by wait()
        self._stderr = bytearray()
        self._aborted: str | None = None
        self._stderr_reader = threading.Thread(target=self._collect_stderr, daemon=True)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stderr(self) -> str:
        """What the command wrote on stderr so far (its last 64 KiB)."""
        return self._stderr.decode(errors="replace")

    def write(self, data: bytes) -> None:
        try:
            self._send(memoryview(data))
        except self._errors as exc:
            raise self._failure() from exc

    def read(self, n: int = CHUNK) -> bytes:
        """Up to n bytes of output, as soon as there are some; b"" at its end."""
        try:
            data = self._recv(n)
        except self._errors as exc:
            raise self._failure() from exc
        if not data and (self._aborted or self._lost()):
            raise self._failure()
        return data

    def feed(self, data: bytes) -> None:
        """Write `data` and close stdin; a command that stops reading is left to wait()."""
        try:
            if data:
                self.write(data)
        except OperationFailed:
            pass
        self.close_stdin()

    def close_stdin(self) -> None:
        try:
            self._shutdown_write()
        except self._errors:
            pass

    def wait(self) -> int:
        """Close stdin, drain stdout, and return the exit status (raising per `check`)."""
        if self.status is None:
            self.close_stdin()
            while self.read():
                pass
            status = self._exit_status(None)
            self._stderr_reader.join()
            if self._aborted or self._lost():
                raise self._failure()
            if status is None:  # waited without a timeout: it is known by now
                raise OperationFailed(f"node {self.node}: {self.argv[0]} left no exit status")
            self.status = status
        if self.check and self.status != 0:
            raise self.error(self.status)
        return self.status

    def result(self) -> Result:
        """Once wait() returned: the exit status and stderr (stdout went to read())."""
        if self.status is None:
            raise OperationFailed(f"node {self.node}: {self.argv[0]} has not been waited for")
        return Result(self.status, "", self.stderr)

    def abort(self, reason: str = "aborted") -> None:
        """Stop the command, from any thread; reads and writes then raise OperationFailed."""
        self._aborted = reason
        self._kill()

    def close(self) -> None:
        if self.status is None and not self._aborted:
            self.abort("stopped before it ended")
        self._release()

    def error(self, status: int) -> RemoteCommandError:
        """The error for a command that ended with `status`, saying so if it was killed."""
        stderr = self.stderr
        if status < 0:
            number = f" {-status}" if status != -1 else ""
            stderr += f"\n{self.argv[0]} killed by signal{number} (no exit status)"
        return RemoteCommandError(self.node, self.argv, status, stderr)

    def _failure(self) -> OperationFailed:
        """Why stdin or stdout broke: an abort, a lost connection, or the command ended."""
        if self._aborted:
            return OperationFailed(f"{self.node}: {self.argv[0]} {self._aborted}")
        if self._lost():
            return NodeUnreachable(f"node {self.node}: connection lost during {self.argv[0]}")
        status = self._exit_status(5.0)
        self._stderr_reader.join(5.0)
        if status is not None and status != 0:
            return self.error(status)
        return OperationFailed(f"{self.node}: {self.argv[0]} ended before reading all its input")

    def _collect_stderr(self) -> None:
        while chunk := self._recv_stderr(65536):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEPT]

    # What an implementation provides:
    def _send(self, data: memoryview) -> None:
        raise NotImplementedError

    def _recv(self, n: int) -> bytes:
        raise NotImplementedError

    def _recv_stderr(self, n: int) -> bytes:
        raise NotImplementedError

    def _shutdown_write(self) -> None:
        raise NotImplementedError

    def _exit_status(self, timeout: float | None) -> int | None:
        """The exit status once known (None if not known within `timeout`)."""
        raise NotImplementedError

    def _lost(self) -> bool:
        """True if the connection died under the command."""
        return False

    def _kill(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class _Target:
    """Where and how to log in: the node's record completed by ~/.ssh/config."""

    host: str
    port: int
    user: str
    key_files: tuple[str, ...]
    agent: bool  # also ssh-agent and ~/.ssh/id_* (only when the node names no key)

    @classmethod
    def of(cls, node: Node) -> _Target:
        """HostName and IdentityFile from ~/.ssh/config; Port and User where the node
        has the default (22, root)."""
        import paramiko

        path = SSH_CONFIG.expanduser()
        conf: dict[str, Any] = {}
        if path.is_file():
            conf = paramiko.SSHConfig.from_path(str(path)).lookup(node.address)
        host = conf.get("hostname", node.address)
        port = node.port if node.port != 22 else int(conf.get("port", 22))
        user = node.user if node.user != "root" else conf.get("user", "root")
        if node.key_path:
            return cls(host, port, user, (os.path.expanduser(node.key_path),), False)
        keys = tuple(os.path.expanduser(p) for p in conf.get("identityfile", ()))
        return cls(host, port, user, keys, True)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def open_socket(self, node: Node, timeout: float) -> socket.socket:
        """A TCP connection without Nagle's delay (which costs each small request 40 ms)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise self.failure(node, exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def failure(self, node: Node, exc: BaseException) -> NotConnected:
        """One line saying why the node could not be reached."""
        where = f"{self.host}:{self.port}"
        if isinstance(exc, socket.gaierror):
            why = f"cannot resolve host name {self.host!r}"
        elif isinstance(exc, ConnectionRefusedError):
            why = f"connection refused by {where}"
        elif isinstance(exc, TimeoutError):
            why = f"no answer from {where} in time"
        elif isinstance(exc, OSError) and exc.strerror:
            why = f"cannot connect to {where}: {exc.strerror}"
        else:
            why = f"SSH handshake with {where} failed: {exc or type(exc).__name__}"
        return NotConnected(f"node {node.name}: {why}")


class SSHTransport(Transport):
    """Commands over one paramiko connection, opened at first use and reopened if it died."""

    def __init__(self, node: Node, *, timeout: float = 10.0, window_size: int = WINDOW_SIZE,
                 max_packet_size: int = MAX_PACKET_SIZE,
                 ciphers: tuple[str, ...] = CIPHERS) -> None:
        super().__init__(node)
        if not node.host_key:
            raise NotConnected(f"node {node.name} has no pinned host key: accept it with "
                                  f"`esbackup node check {node.name} --accept-host-key`")
        self.timeout = timeout
        self.window_size, self.max_packet_size, self.ciphers = window_size, max_packet_size, ciphers
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def open_stream(self, argv: list[str], *, check: bool = True) -> SSHStream:
        import paramiko

        argv = _checked(argv)
        try:
            channel = self._connection().open_session(
                window_size=self.window_size, max_packet_size=self.max_packet_size,
                timeout=self.timeout)
            channel.exec_command(shlex.join(argv))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise NotConnected(f"node {self.node.name}: cannot start {argv[0]}: {exc}") from exc
        return SSHStream(self.node.name, argv, check, channel)

    def login(self) -> tuple[_Target, paramiko.PKey]:
        """Where and how this transport logs in, and the host key it checked against
        the node's pin (logging in first if needed): what an OpenSSH data leg needs."""
        key = self._connection().get_remote_server_key()
        if fingerprint(key) != self.node.host_key:  # _PinnedHostKey saw to it; say it here too
            raise HostKeyMismatch(f"host key mismatch for node {self.node.name}")
        return _Target.of(self.node), key

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _connection(self) -> paramiko.Transport:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                if self._client is not None:
                    self._client.close()
                self._client = self._login()
                transport = self._client.get_transport()
                if transport is None:
                    raise NotConnected(f"node {self.node.name}: no SSH transport after login")
            return transport

    def _login(self) -> paramiko.SSHClient:
        """Connect, check the pinned host key, authenticate: one clear error per failure."""
        import paramiko

        node, target = self.node, _Target.of(self.node)
        missing = [path for path in target.key_files if not os.path.isfile(path)]
        if missing and not target.agent:
            raise NotConnected(f"node {node.name}: key file {missing[0]} not found")
        client = paramiko.SSHClient()
        # no known_hosts: only the pin. _PinnedHostKey is a policy by duck typing (paramiko
        # calls only missing_host_key): subclassing would import paramiko with this module.
        client.set_missing_host_key_policy(
            _PinnedHostKey(node))  # type: ignore[arg-type]
        try:
            client.connect(
                target.host, target.port, username=target.user,
                sock=target.open_socket(node, self.timeout),
                # paramiko takes a list of key files too (documented); its stubs say str
                key_filename=[path for path in target.key_files  # type: ignore[arg-type]
                              if path not in missing] or None,
                allow_agent=target.agent, look_for_keys=target.agent, timeout=self.timeout,
                banner_timeout=self.timeout, auth_timeout=self.timeout,
                channel_timeout=self.timeout, transport_factory=self._new_transport)
        except (HostKeyMismatch, NodeUnreachable):
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            keys = ", ".join(target.key_files) or "agent and default keys"
            raise NotConnected(f"node {node.name}: authentication failed for {target} "
                                  f"(keys: {keys})") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise target.failure(node, exc) from exc
        return client

    def _new_transport(self, sock: _SocketLike, /, **kwargs: Any) -> paramiko.Transport:
        """A paramiko Transport with our window, packet size and cipher preferences."""
        import paramiko

        transport = paramiko.Transport(sock, default_window_size=self.window_size,
                                       default_max_packet_size=self.max_packet_size, **kwargs)
        # Never start a rekey ourselves: a channel closing while a rekey paramiko
        # started is under way deadlocks its transport thread (paramiko issue #822;
        # seen here after 512 MiB). The server still rekeys at its RekeyLimit, safely.
        transport.packetizer.REKEY_BYTES = transport.packetizer.REKEY_PACKETS = NEVER_REKEY
        options = transport.get_security_options()
        offered = tuple(options.ciphers)
        options.ciphers = tuple(c for c in self.ciphers if c in offered) + tuple(
            c for c in offered if c not in self.ciphers)
        return transport


class _PinnedHostKey:
    """paramiko host key policy: accept the node's pinned fingerprint only, never add one."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        offered = fingerprint(key)
        if offered != self.node.host_key:
            raise HostKeyMismatch(f"host key mismatch for node {self.node.name}: "
                                  f"pinned {self.node.host_key}, offered {offered}")


class SSHStream(Stream):
    def __init__(self, node: str, argv: list[str], check: bool,
                 channel: paramiko.Channel) -> None:
        import paramiko

        super().__init__(node, argv, check)
        self._errors = (*Stream._errors, paramiko.SSHException)
        self._channel = channel
        self._pending, self._offset = b"", 0  # output taken from paramiko, not yet read
        self._stderr_reader.start()

    def _send(self, data: memoryview) -> None:
        # paramiko sends any bytes-like object (it slices and packs it); stubs say bytes
        self._channel.sendall(data)  # type: ignore[arg-type]

    def _recv(self, n: int) -> bytes:
        # paramiko's buffer memmoves all it still holds on each partial read (up to a
        # window's worth per call), so take the whole buffer and hand it out from here.
        if self._offset >= len(self._pending):
            self._pending, self._offset = self._channel.recv(TAKE_ALL), 0
        chunk = self._pending[self._offset:self._offset + n]
        self._offset += len(chunk)
        return chunk

    def _recv_stderr(self, n: int) -> bytes:
        return self._channel.recv_stderr(n)

    def _shutdown_write(self) -> None:
        """Send EOF, unless the channel is closed. paramiko's own shutdown_write sends
        it after letting go of the channel's lock: when the server closes the
        channel meanwhile (its command ended), paramiko's reply CLOSE can go first,
        and sshd then drops the whole connection, every run's calls on it ("ieof
        packet referred to nonexistent channel"; paramiko issues #1115, #1705; seen
        in a tick of 40 runs on a loaded host). Sent under the lock, the EOF goes
        before any CLOSE, or not at all."""
        channel = self._channel
        with channel.lock:
            if channel.closed or channel.eof_sent:
                return
            # paramiko's private API, as its own shutdown_write uses it (not in its stubs)
            message = channel._send_eof()  # type: ignore[attr-defined]
            if message is not None:
                channel.transport._send_user_message(message)  # type: ignore[union-attr]

    def _exit_status(self, timeout: float | None) -> int | None:
        """The status sshd reported; -1 if none (killed: paramiko ignores exit-signal)."""
        if not self._channel.status_event.wait(timeout):
            return None
        return self._channel.exit_status

    def _lost(self) -> bool:
        # paramiko closes the channels before it marks the transport inactive, so a
        # channel closed without the server's EOF counts as a lost connection too.
        channel = self._channel
        if channel.exit_status_ready() and channel.exit_status != -1:
            return False
        closed_early = channel.closed and not channel.eof_received
        return closed_early or not channel.get_transport().is_active()

    def _kill(self) -> None:
        self._channel.close()

    def _release(self) -> None:
        self._channel.close()
        self._stderr_reader.join(5.0)


class LocalTransport(Transport):
    """Commands on this machine through subprocess, argv directly (no shell)."""

    def open_stream(self, argv: list[str], *, check: bool = True) -> LocalStream:
        argv = _checked(argv)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:  # what a shell would report as status 127
            raise RemoteCommandError(self.node.name, argv, 127,
                                     f"{argv[0]}: {exc.strerror}") from exc
        return LocalStream(self.node.name, argv, check, proc)

    def run(self, argv: list[str], *, input: bytes | None = None, check: bool = True,
            timeout: float | None = None) -> Result:
        try:
            return super().run(argv, input=input, check=check, timeout=timeout)
        except RemoteCommandError as exc:
            if check or exc.status != 127:
                raise
            return Result(exc.status, "", exc.stderr)


class LocalStream(Stream):
    def __init__(self, node: str, argv: list[str], check: bool,
                 proc: subprocess.Popen[bytes]) -> None:
        super().__init__(node, argv, check)
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise ValueError(f"{argv[0]}: started without pipes for stdin, stdout and stderr")
        self._proc = proc
        self._in, self._out, self._err = proc.stdin, proc.stdout, proc.stderr
        self._stderr_reader.start()

    def _send(self, data: memoryview) -> None:
        fd = self._in.fileno()
        while data:
            data = data[os.write(fd, data):]

    def _recv(self, n: int) -> bytes:
        return os.read(self._out.fileno(), n)

    def _recv_stderr(self, n: int) -> bytes:
        return os.read(self._err.fileno(), n)

    def _shutdown_write(self) -> None:
        self._in.close()

    def _exit_status(self, timeout: float | None) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()

    def _release(self) -> None:
        self._proc.wait()
        # a child the killed command left writing (a pipeline's stage) dies of
        # SIGPIPE instead of holding stderr open
        for pipe in (self._in, self._out):
            pipe.close()
        self._stderr_reader.join(5.0)
        self._err.close()


# --- shell pipelines on one node ---------------------------------------------
# A pipeline runs as `sh -c SCRIPT`; SCRIPT is made here and only here, each
# stage quoted with shlex.join. Every stage reports its own exit status on
# stderr (POSIX sh has no pipefail), so a failing `zfs send` in front of a
# `gzip > file` cannot pass for a whole backup.
STAGE_MARK = "esb-stage"
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: a stage whose reader went away first


def pipeline_argv(stages: list[list[str]], *, output: str | None = None,
                  input_path: str | None = None) -> list[str]:
    """argv running `stages` as one pipeline, stdin from `input_path`, stdout to `output`."""
    if not stages:
        raise InvalidInput("empty pipeline")
    groups = []
    for i, stage in enumerate(stages):
        command = shlex.join(_checked(stage))
        if i == 0 and input_path is not None:
            command += " < " + shlex.quote(input_path)
        if i == len(stages) - 1 and output is not None:
            command += " > " + shlex.quote(output)
        groups.append(f'{{ {command}; echo "{STAGE_MARK} {i} $?" >&2; }}')
    return ["sh", "-c", " | ".join(groups)]


def check_pipeline(node: str, stages: list[list[str]], result: Result) -> None:
    """Raise RemoteCommandError for the stage that failed (or never reported).

    A stage killed by SIGPIPE only names the culprit when no later stage failed
    on its own: when `zfs recv` fails, the `zfs send` feeding it dies of SIGPIPE.
    """
    statuses = {}
    for line in result.stderr.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == STAGE_MARK and parts[1].isdigit():
            statuses[int(parts[1])] = int(parts[2]) if parts[2].isdigit() else -1
    stderr = "\n".join(line for line in result.stderr.splitlines()
                       if not line.startswith(STAGE_MARK))
    failed = []
    for i, stage in enumerate(stages):
        status = statuses.get(i, result.status if result.status else -1)
        if status != 0:
            failed.append((status == SIGPIPE_STATUS, i, stage, status))
    if failed:
        _, _, stage, status = min(failed)
        raise RemoteCommandError(node, stage, status, stderr)
    if result.status not in (0, None):
        raise RemoteCommandError(node, ["sh"], result.status, stderr)


def pull_argv(node: Node, argv: list[str], config: str | None = None) -> list[str]:
    """argv for another node to run `argv` on `node` with OpenSSH (direct mode).

    Strict host keys and batch mode: the nodes' own known_hosts and keys (or
    those the `config` file, on the pulling node, names) must already trust
    each other.
    """
    options = ["-F", config] if config else []
    return ["ssh", *options, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-p",
            str(node.port), "-l", node.user, "--", node.address, shlex.join(_checked(argv))]
