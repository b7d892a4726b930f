"""Test double of a node's transport that answers from recorded outputs.

`ReplayNode(name, answers)` maps an argv (tuple) to the Result it gets, or to
a list of Results given in turn (the last one repeats). It runs on this
machine: a plain command becomes a `sh` that prints the recorded stdout and
stderr and exits with the recorded status; a batch (`batch.argv`) becomes the
batch that batch.py itself makes of such replay steps, with the same `stop`
marks, under the caller's nonce: the framing, the stop rule and the parse are
batch.py's own. An answer with status DIES kills the batch's shell at that
step (a connection or shell lost mid-call: its output is cut short).

`calls` records ("batch", [argv of each step]) or ("run", argv) per call; an
argv without an answer fails the test. `Replays` is a `Sessions` factory over them.
"""
from __future__ import annotations

import re
import shlex

from esbackup.domain.models import Node
from esbackup.drivers import batch, transport
from esbackup.drivers.session import TransportSession
from esbackup.drivers.transport import Result

DIES = -9
REPLAY = 'printf %s "$1"; printf %s "$2" >&2; exit "$3"'
_STEP = re.compile(r'^b \d+; (.*?)( </dev/null)?; s=\$\?; e \d+ "\$s"'
                   r'(; \[ "\$s" -eq 0 \] \|\| exit \d+)?$', re.M)
_NONCE = re.compile(r"esb-[0-9a-f]{32}")


class ReplayNode(transport.LocalTransport):
    def __init__(self, name: str, answers: dict[tuple, Result | list[Result]]) -> None:
        super().__init__(Node(name=name, address="local"))
        self.answers = {tuple(k): v if isinstance(v, list) else [v] for k, v in answers.items()}
        self.calls: list[tuple] = []

    def answer(self, argv) -> Result:
        queue = self.answers.get(tuple(argv))
        assert queue, f"unexpected command on {self.node.name}: {list(argv)}"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def open_stream(self, argv, *, check: bool = True):
        if argv[:2] != ["sh", "-c"] or not argv[2].startswith("b() {"):
            self.calls.append(("run", list(argv)))
            return super().open_stream(replay(self.answer(argv)), check=check)
        nonce = _NONCE.search(argv[2]).group()
        steps = [batch.Step(f"s{i}", shlex.split(m.group(1)), stop=bool(m.group(3)),
                            input=not m.group(2))
                 for i, m in enumerate(_STEP.finditer(argv[2]))]
        assert batch.script(steps, nonce) == argv[2], "a batch this double cannot read"
        self.calls.append(("batch", [list(s.argv) for s in steps]))
        replayed, ended = [], False
        for s in steps:  # the steps after a failed stop step never run: no answer used
            result = Result(0, "", "") if ended else self.answer(s.argv)
            ended = ended or s.stop and result.status != 0 or result.status == DIES
            replayed.append(batch.Step(s.name, replay(result, s.input), stop=s.stop,
                                       input=s.input))
        return super().open_stream(batch.argv(replayed, nonce), check=check)


class Replays(dict):
    """ReplayNodes by node name, and the `Sessions` factory over them (what the
    actions receive in production as drivers/session.py's `connect`)."""

    def __call__(self, node: Node) -> TransportSession:
        return TransportSession(self[node.name])


def replay(result: Result, reads_stdin: bool = False) -> list[str]:
    """The recorded answer; a step that takes the call's input reads all of it
    first, as the real one does (else it would end before the input was fed)."""
    if result.status == DIES:
        return ["sh", "-c", 'kill -9 "$PPID"']
    script = f"cat >/dev/null; {REPLAY}" if reads_stdin else REPLAY
    return ["sh", "-c", script, "sh", result.stdout, result.stderr, str(result.status)]


def ok(stdout: str = "") -> Result:
    return Result(0, stdout, "")


def failed(stderr: str, status: int = 1) -> Result:
    return Result(status, "", stderr)
