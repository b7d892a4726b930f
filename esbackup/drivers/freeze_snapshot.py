"""Freeze a guest, snapshot its dataset, always thaw: one step run ON the compute node.

The admin host ships this file as text and runs it as ``python3 -c SOURCE ARGS``
(see ``esbackup.drivers.qga.remote_argv``), so that a lost admin host never
leaves a guest frozen. It must stay self-contained: standard library only,
Python 3.7 or later.

    ... [--timeout S] -- qga SOCKET DATASET@SNAP    QEMU guest agent on a unix socket
    ... [--timeout S] -- virsh DOMAIN DATASET@SNAP  libvirt: virsh domfsfreeze/domfsthaw

It prints one JSON line on stdout:
{"frozen": bool, "thawed": bool, "frozen_filesystems": n, "snapshot": name|null, "note": str}
and exits 0 when the snapshot was taken, 1 when ``zfs snapshot`` failed (its
stderr is passed on), 2 on bad arguments, 128+N when stopped by signal N.
A failed freeze still takes the snapshot, with frozen=false and the reason in
"note". The guest stays frozen at most --timeout seconds: if the snapshot
outlasts it, the guest is thawed first and the result says frozen=false.
"""
import argparse
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time

SNAPSHOT_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9][A-Za-z0-9_.:-]*)*@[A-Za-z0-9][A-Za-z0-9_.:-]*\Z"
)
MAX_NAME = 255
SYNC_TIMEOUT = 10.0  # a live agent answers guest-sync in milliseconds
THAW_TIMEOUT = 30.0
THAW_ATTEMPTS = 3
DELIMITER = b"\xff"  # guest-sync-delimited's sentinel; sent by us, it resets the agent's parser
SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


class AgentError(Exception):
    """The agent failed. `answered` is true for an error reply (the agent is alive and
    refused), false for no answer in time or a broken connection (outcome unknown)."""

    def __init__(self, message, answered=False):
        super().__init__(message)
        self.answered = answered


class Interrupted(BaseException):
    """Raised by the signal handler so that `finally` blocks thaw on the way out."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def valid_snapshot(name):
    """True for a `dataset@snapshot` name that is safe to pass to zfs."""
    return len(name) <= MAX_NAME and SNAPSHOT_RE.match(name) is not None


class QgaClient:
    """Client of the QEMU guest agent's JSON protocol on its unix socket.

    Replies carry no request id, so after a lost reply (timeout) the stream is
    "dirty": the next command is preceded by a guest-sync-delimited with a fresh
    random id, and replies are skipped until that id comes back.
    """

    def __init__(self, sock_path, timeout=10.0):
        self.sock_path = sock_path
        self.timeout = timeout
        self.freeze_sent = False
        self._sock = None  # type: socket.socket | None
        self._buf = b""
        self._dirty = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def sync(self, timeout=None):
        """Handshake: flush the agent's parser, guest-sync-delimited, wait for our id.

        The request is sent again every 2 s: before qemu-ga opens its port
        (guest booting) requests can be lost."""
        deadline = self._deadline(timeout)
        while True:
            sync_id = self._send_sync()
            try:
                self._await_sync(sync_id, min(deadline, time.monotonic() + 2.0))
                self._dirty = False
                return
            except AgentError:
                if time.monotonic() >= deadline:
                    span = self._span(timeout)
                    raise AgentError(f"no answer to guest-sync within {span:.1f}s") from None
                time.sleep(0.05)  # a connection closed at once must not spin

    def call(self, command, arguments=None, timeout=None):
        """Run one command and return its "return" value; raise AgentError.

        On a dirty stream a sync goes out just before the command, without
        waiting for its answer: the command is queued in the agent even if we
        stop waiting (what a thaw after a lost freeze reply needs)."""
        deadline = self._deadline(timeout)
        sync_id = self._send_sync() if self._dirty else None
        request = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        self._write(json.dumps(request).encode() + b"\n")
        self._dirty = True
        if sync_id is not None:
            self._await_sync(sync_id, deadline)
        reply = self._next_reply(deadline, command)
        self._dirty = False
        if "error" in reply:
            error = reply["error"]
            raise AgentError(f"{command}: {error.get('desc', error)}", answered=True)
        return reply.get("return")

    def freeze(self, timeout=None):
        """guest-fsfreeze-freeze; returns the number of file systems frozen.

        Syncs first and never pipelines: a silent agent must not get a freeze
        queued that it would run later, with nobody left to thaw."""
        if self._dirty:
            self.sync(timeout)
        self.freeze_sent = True
        return self.call("guest-fsfreeze-freeze", timeout=timeout)

    def thaw(self, timeout=None):
        """guest-fsfreeze-thaw; returns the number of file systems thawed."""
        return self.call("guest-fsfreeze-thaw", timeout=timeout)

    def status(self, timeout=None):
        """guest-fsfreeze-status: "thawed" or "frozen"."""
        return self.call("guest-fsfreeze-status", timeout=timeout)

    def _deadline(self, timeout):
        return time.monotonic() + self._span(timeout)

    def _span(self, timeout):
        return self.timeout if timeout is None else timeout

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.sock_path)
        except OSError as exc:
            sock.close()
            raise AgentError(f"cannot connect to {self.sock_path}: {exc}") from exc
        self._sock, self._buf = sock, b""
        return sock

    def _write(self, data):
        sock = self._sock if self._sock is not None else self._connect()
        try:
            sock.sendall(data)
        except OSError as exc:
            self.close()
            raise AgentError(f"guest agent socket: {exc}") from exc

    def _send_sync(self):
        sync_id = random.randint(1, 2**31 - 1)
        request = {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}
        self._write(DELIMITER + json.dumps(request).encode() + b"\n")
        return sync_id

    def _await_sync(self, sync_id, deadline):
        """Skip stale replies (and the error a 0xFF may cause) until our id comes back."""
        while self._next_reply(deadline, "guest-sync").get("return") != sync_id:
            pass

    def _next_reply(self, deadline, command):
        """The next well-formed JSON object; lines broken by stale data are skipped."""
        while True:
            line = self._read_line(deadline, command)
            try:
                reply = json.loads(line.decode())
            except ValueError:
                continue
            if isinstance(reply, dict):
                return reply

    def _read_line(self, deadline, command):
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentError(f"{command}: no answer in time")
            sock = self._sock
            if sock is None:  # closed by an earlier failure, which was raised
                raise AgentError(f"{command}: guest agent socket is closed")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:  # noqa: UP041 (an OSError, not TimeoutError, before 3.10)
                continue
            except OSError as exc:
                self.close()
                raise AgentError(f"guest agent socket: {exc}") from exc
            if not chunk:
                self.close()
                raise AgentError("guest agent closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.rsplit(DELIMITER, 1)[-1].strip()  # a delimiter starts a fresh reply


class QgaFreezer:
    """Freeze through the guest agent's socket directly (SmartOS, plain qemu)."""

    def __init__(self, sock_path):
        self.client = QgaClient(sock_path)

    @property
    def may_be_frozen(self):
        return self.client.freeze_sent

    def freeze(self, timeout):
        self.client.sync(min(SYNC_TIMEOUT, timeout))
        return self.client.freeze(timeout)

    def thaw(self, timeout):
        return self.client.thaw(timeout)


class VirshFreezer:
    """Freeze through libvirt, which owns the agent's socket: virsh domfsfreeze/domfsthaw."""

    def __init__(self, domain):
        self.domain = domain
        self.may_be_frozen = False

    def freeze(self, timeout):
        self.may_be_frozen = True
        return self._virsh("domfsfreeze", r"Froze (\d+)", timeout)

    def thaw(self, timeout):
        return self._virsh("domfsthaw", r"Thawed (\d+)", timeout)

    def _virsh(self, action, pattern, timeout):
        argv = ["virsh", action, "--domain", self.domain]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AgentError(f"virsh {action}: no answer within {timeout:.1f}s") from None
        except OSError as exc:
            raise AgentError(f"virsh {action}: {exc}", answered=True) from exc
        if proc.returncode != 0:
            detail = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise AgentError(f"virsh {action}: {detail}", answered=True)
        match = re.search(pattern, proc.stdout)
        return int(match.group(1)) if match else 0


class Step:
    """One freeze, snapshot, thaw; its attributes are the JSON result."""

    def __init__(self, freezer, snapshot, timeout):
        self.freezer = freezer
        self.snapshot = snapshot
        self.timeout = timeout
        self.frozen = False
        self.thawed = True
        self.count = 0
        self.taken = False
        self.notes = []
        self._refused = False  # the agent answered the freeze with an error
        self._thaw_tried = False

    def run(self):
        """Raises Interrupted after thawing when a signal arrives."""
        deadline = time.monotonic() + self.timeout
        try:
            self._freeze(deadline)
            self._take_snapshot(deadline)
        finally:
            try:
                self._thaw()
            except Interrupted:  # a first signal landed in the thaw: thaw again, then leave
                self._thaw()
                raise

    def result(self):
        return {"frozen": self.frozen, "thawed": self.thawed, "frozen_filesystems": self.count,
                "snapshot": self.snapshot if self.taken else None, "note": "; ".join(self.notes)}

    def _freeze(self, deadline):
        try:
            self.count = self.freezer.freeze(deadline - time.monotonic()) or 0
        except AgentError as exc:
            self._refused = exc.answered
            self.notes.append(f"not frozen: {exc}")
            return
        self.frozen = self.count > 0
        if not self.frozen:
            self.notes.append("not frozen: the guest agent froze no file system")

    def _take_snapshot(self, deadline):
        """zfs snapshot; while a freeze may hold, wait only until the deadline, then thaw."""
        try:
            proc = subprocess.Popen(["zfs", "snapshot", self.snapshot],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            sys.stderr.write(f"zfs: {exc}\n")
            self.notes.append(f"zfs snapshot failed: {exc}")
            return
        wait = max(0.0, deadline - time.monotonic()) if self.freezer.may_be_frozen else None
        try:
            _, err = proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            if self.frozen:
                self.frozen = False
                self.notes.append(f"not frozen: the snapshot outlasted the {self.timeout:g}s "
                                  "freeze timeout, the guest was thawed before it finished")
            self._thaw()
            _, err = proc.communicate()
        self.taken = proc.returncode == 0
        if not self.taken:
            sys.stderr.write(err)
            self.notes.append(f"zfs snapshot failed: {err.strip() or proc.returncode}")

    def _thaw(self):
        """Thaw once a freeze went out, retrying failures within THAW_TIMEOUT.

        "thawed" stays true when the agent had refused the freeze: it thaws by
        itself then, so a failed thaw does not mean a frozen guest."""
        if self._thaw_tried or not self.freezer.may_be_frozen:
            return
        deadline = time.monotonic() + THAW_TIMEOUT
        for attempt in range(THAW_ATTEMPTS):
            try:
                self.freezer.thaw(max(0.0, deadline - time.monotonic()))
                break
            except AgentError as exc:
                error = exc
            if attempt + 1 < THAW_ATTEMPTS and time.monotonic() + 1 < deadline:
                time.sleep(1)
        else:
            self.thawed = self._refused
            self.notes.append(f"thaw failed: {error}")
        self._thaw_tried = True


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="esbackup-freeze-snapshot",
                                     description="freeze a guest, zfs snapshot, always thaw")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="longest time the guest stays frozen (default 120 s)")
    parser.add_argument("mode", choices=("qga", "virsh"))
    parser.add_argument("target", help="agent socket path (qga) or libvirt domain (virsh)")
    parser.add_argument("snapshot", help="DATASET@SNAPSHOT")
    args = parser.parse_args(argv)
    if not valid_snapshot(args.snapshot):
        parser.error(f"invalid snapshot name: {args.snapshot!r}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def install_signal_handlers():
    """A first SIGTERM/SIGINT/SIGHUP raises Interrupted (so the guest gets thawed);
    later ones are ignored so that they cannot break off that thaw."""
    seen = []  # type: list[int]

    def handler(signum, frame):
        if not seen:
            seen.append(signum)
            raise Interrupted(signum)

    for name in SIGNALS:
        signal.signal(getattr(signal, name), handler)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    freezer = QgaFreezer(args.target) if args.mode == "qga" else VirshFreezer(args.target)
    step = Step(freezer, args.snapshot, args.timeout)
    install_signal_handlers()
    try:
        step.run()
        code = 0 if step.taken else 1
    except Interrupted as exc:
        step.notes.append(f"interrupted by {exc}")
        code = 128 + exc.signum
    print(json.dumps(step.result()), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
