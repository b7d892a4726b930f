"""A guest-agent DOUBLE: a unix-socket server speaking qemu-ga's JSON protocol.

It is a test double, not an agent: it freezes nothing. It keeps a freeze
state, logs every command with its time, and can misbehave on purpose for the
edge cases a real agent rarely shows (faults):

    hang          accept the connection, never answer anything
    freeze-error  answer guest-fsfreeze-freeze with a GenericError
    thaw-error    answer guest-fsfreeze-thaw with a GenericError
    slow-freeze   answer guest-fsfreeze-freeze after --freeze-delay seconds
    stale         greet each connection with a stale reply and a broken line

Like QEMU's chardev it serves one connection at a time, handles commands one
after another, and answers a 0xFF byte (which resets its parser) with a parse
error, as qemu-ga 7.2 does. Run it in a thread (QgaDouble) or as a process:

    python -m lab.qga_double SOCKET [--fault NAME ...] [--freeze-delay S]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

FAULTS = ("hang", "freeze-error", "thaw-error", "slow-freeze", "stale")
FROZEN_COUNT = 2  # file systems the double pretends to freeze


@dataclass
class Event:
    command: str
    time: float  # time.time(), comparable across processes


@dataclass
class QgaDouble:
    """Guest-agent double on `socket_path`; start() serves in a daemon thread."""

    socket_path: str
    faults: tuple[str, ...] = ()
    freeze_delay: float = 5.0
    state: str = "thawed"
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def commands(self) -> list[str]:
        return [e.command for e in self.events]

    def __enter__(self) -> QgaDouble:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Listen and serve in a daemon thread."""
        self.listen()
        self._thread = threading.Thread(target=self.serve, name="qga-double", daemon=True)
        self._thread.start()

    def listen(self) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.socket_path)
        self._server.listen(4)
        self._server.settimeout(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.close()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def serve(self) -> None:
        """Serve connections one at a time until stop()."""
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        if "stale" in self.faults:
            conn.sendall(b'{"return": 424242}\n{"retu')
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf = self._feed(conn, buf + chunk)

    def _feed(self, conn: socket.socket, buf: bytes) -> bytes:
        """Answer every complete request in buf; return the unfinished rest."""
        while b"\xff" in buf or b"\n" in buf:
            cut = min(i for i in (buf.find(b"\xff"), buf.find(b"\n")) if i >= 0)
            text, reset, buf = buf[:cut].strip(), buf[cut:cut + 1] == b"\xff", buf[cut + 1:]
            if reset:
                stray = text.decode(errors="replace")
                self._reply(conn, _error(f"JSON parse error, stray '{stray}'"))
            elif text:
                self._reply(conn, self._answer(text))
        return buf

    def _reply(self, conn: socket.socket, reply: bytes | None) -> None:
        if reply is not None and "hang" not in self.faults:
            conn.sendall(reply)

    def _answer(self, text: bytes) -> bytes | None:
        try:
            request = json.loads(text)
            command = request["execute"]
        except (ValueError, KeyError, TypeError):
            return _error("JSON parse error")
        self.events.append(Event(command, time.time()))
        handler = getattr(self, "_cmd_" + command.replace("-", "_"), None)
        if handler is None:
            return _error(f"The command {command} has not been found", "CommandNotFound")
        return handler(request.get("arguments") or {})

    def _cmd_guest_sync(self, args: dict) -> bytes:
        return _return(args.get("id"))

    def _cmd_guest_sync_delimited(self, args: dict) -> bytes:
        return b"\xff" + _return(args.get("id"))

    def _cmd_guest_ping(self, args: dict) -> bytes:
        return _return({})

    def _cmd_guest_fsfreeze_status(self, args: dict) -> bytes:
        return _return(self.state)

    def _cmd_guest_fsfreeze_freeze(self, args: dict) -> bytes:
        if "freeze-error" in self.faults:
            return _error("failed to freeze /data: Device or resource busy")
        if "slow-freeze" in self.faults:
            self._stop.wait(self.freeze_delay)
        self.state = "frozen"
        return _return(FROZEN_COUNT)

    def _cmd_guest_fsfreeze_thaw(self, args: dict) -> bytes:
        if "thaw-error" in self.faults:
            return _error("failed to thaw /data: Invalid argument")
        count, self.state = (FROZEN_COUNT if self.state == "frozen" else 0), "thawed"
        return _return(count)


def _return(value) -> bytes:
    return json.dumps({"return": value}).encode() + b"\n"


def _error(desc: str, cls: str = "GenericError") -> bytes:
    return json.dumps({"error": {"class": cls, "desc": desc}}).encode() + b"\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.qga_double", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("socket")
    parser.add_argument("--fault", action="append", choices=FAULTS, default=[])
    parser.add_argument("--freeze-delay", type=float, default=5.0)
    args = parser.parse_args(argv)
    double = QgaDouble(args.socket, tuple(args.fault), args.freeze_delay)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    double.listen()
    print(f"qga double on {args.socket}, faults: {', '.join(args.fault) or 'none'}", flush=True)
    try:
        double.serve()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()


if __name__ == "__main__":
    main()
