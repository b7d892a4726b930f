"""Several commands in one remote call: one `sh -c SCRIPT`, one Result per step.

Each remote call costs a channel, an exec and a shell (about 100 ms on a real
sshd, up to a second in a slow guest), so a job asks a node for everything it
needs at once. SCRIPT is made here and only here: each step's argv is quoted
with shlex.join; each step's stdout and stderr are framed by marks that carry
a random nonce of this call and the step's exit status:

    <nonce> begin <i>\\n  <output of step i>  \\n<nonce> end <i> <status>\\n

on stdout and on stderr alike, and `<nonce> done` on stdout after the last
step. A step marked `stop` ends the batch when it fails: the steps after it do
not run. Steps read nothing (</dev/null), except the one step marked `input`,
which reads the call's stdin; `feed` may compute that input from the results
of the steps before it, within the same call.

The output is untrusted: `parse` accepts exactly the frames it expects, in
order, and nothing else (a nonce inside a step's output, a missing or extra
frame, a status that is not a number: OperationFailed).
"""
from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from esbackup.drivers.transport import Result, read_capped
from esbackup.errors import InvalidInput, OperationFailed, RemoteCommandError

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_NONCE = re.compile(r"esb-[0-9a-f]{32}")


@dataclass(frozen=True)
class Step:
    """One command of a batch; `name` says what it is for (unique within the batch)."""

    name: str
    argv: tuple[str, ...]
    stop: bool = False  # a failure ends the batch
    input: bool = False  # reads the call's stdin

    def __init__(self, name: str, argv: list[str], *, stop: bool = False,
                 input: bool = False) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "argv", tuple(argv))
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "input", input)


def new_nonce() -> str:
    return f"esb-{secrets.token_hex(16)}"


def _check(steps: list[Step], nonce: str) -> None:
    if not _NONCE.fullmatch(nonce):
        raise InvalidInput(f"bad batch nonce {nonce!r}")
    names = [s.name for s in steps]
    if not steps or len(set(names)) != len(names) or not all(map(_NAME.fullmatch, names)):
        raise InvalidInput(f"batch steps need unique plain names: {names}")
    if sum(s.input for s in steps) > 1:
        raise InvalidInput("at most one batch step reads the input")
    for s in steps:
        # an argv[0] with `=` would be a shell assignment, not a command
        if not s.argv or not all(isinstance(a, str) and "\0" not in a for a in s.argv) \
                or "=" in s.argv[0]:
            raise InvalidInput(f"invalid command line in batch step {s.name}: {s.argv!r}")


def script(steps: list[Step], nonce: str) -> str:
    """The POSIX sh script that runs `steps` in order, framing each one's output."""
    _check(steps, nonce)
    lines = [f"b() {{ printf '{nonce} begin %s\\n' \"$1\"; "
             f"printf '{nonce} begin %s\\n' \"$1\" >&2; }}",
             f"e() {{ printf '\\n{nonce} end %s %s\\n' \"$1\" \"$2\"; "
             f"printf '\\n{nonce} end %s %s\\n' \"$1\" \"$2\" >&2; }}"]
    for i, s in enumerate(steps):
        stdin = "" if s.input else " </dev/null"
        stop = f'; [ "$s" -eq 0 ] || exit {i + 1}' if s.stop else ""
        lines.append(f"b {i}; {shlex.join(s.argv)}{stdin}; s=$?; e {i} \"$s\"{stop}")
    lines.append(f"printf '{nonce} done\\n'")
    return "\n".join(lines)


def argv(steps: list[Step], nonce: str) -> list[str]:
    return ["sh", "-c", script(steps, nonce)]


def parse(steps: list[Step], nonce: str, status: int, stdout: str, stderr: str,
          *, complete: bool = True) -> dict[str, Result]:
    """Results of the steps that ran, by name, in order; exactly the expected frames.

    With `complete=False` (output read so far), a batch cut short is no error:
    what is there must still be well formed.
    """
    _check(steps, nonce)
    outs, out_rest = _frames(stdout, nonce, "stdout")
    errs, err_rest = _frames(stderr, nonce, "stderr")
    ran = len(outs)
    if len(errs) < ran and complete or len(errs) > ran or ran > len(steps):
        raise OperationFailed(f"batch output has {ran} stdout and {len(errs)} stderr frames "
                              f"for {len(steps)} steps")
    results = {}
    padded = errs + [None] * (ran - len(errs))
    for i, ((out_i, out, out_status), err) in enumerate(zip(outs, padded, strict=True)):
        if out_i != i or err is not None and (err[0], err[2]) != (i, out_status):
            raise OperationFailed(f"batch output frames out of order at step {i}")
        results[steps[i].name] = Result(out_status, out, err[1] if err else "")
        if i < ran - 1 and steps[i].stop and out_status != 0:
            raise OperationFailed(f"batch went on after step {steps[i].name} failed")
    if not complete:
        return results
    stopped = ran and steps[ran - 1].stop and outs[-1][2] != 0
    if stopped:
        expected_rest, expected_status = "", ran
    else:
        expected_rest, expected_status = f"{nonce} done\n", 0
    if ran != len(steps) and not stopped or out_rest != expected_rest or err_rest != "" \
            or status != expected_status:
        raise OperationFailed(f"batch output cut short or trailing data (exit status {status}, "
                              f"{ran} of {len(steps)} steps)")
    return results


def _frames(text: str, nonce: str, stream: str) -> tuple[list[tuple[int, str, int]], str]:
    """[(step, output, status)] and what follows the last frame."""
    frames = []
    pos = 0
    begin = re.compile(re.escape(nonce) + r" begin (\d+)\n")
    end = re.compile("\n" + re.escape(nonce) + r" end (\d+) (\d+)\n")
    while m := begin.match(text, pos):
        close = end.search(text, m.end())
        if close is None:
            break
        body = text[m.end():close.start()]
        if nonce in body or close.group(1) != m.group(1):
            raise OperationFailed(f"batch {stream} holds a forged or broken frame")
        frames.append((int(m.group(1)), body, int(close.group(2))))
        pos = close.end()
    rest = text[pos:]
    if nonce in rest and rest not in (f"{nonce} done\n",) and not begin.match(rest):
        raise OperationFailed(f"batch {stream} holds a forged or broken frame")
    return frames, rest


class Results(Mapping[str, Result]):
    """The results of one batch on one node; `ok(name)` raises for a failed step."""

    def __init__(self, node: str, steps: list[Step], results: dict[str, Result]) -> None:
        self.node, self.steps, self._results = node, {s.name: s for s in steps}, results

    def __getitem__(self, name: str) -> Result:
        return self._results[name]

    def __iter__(self):
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def ok(self, name: str) -> Result:
        """The step's result; RemoteCommandError if it failed or never ran."""
        argv = list(self.steps[name].argv)
        result = self._results.get(name)
        if result is None:
            raise RemoteCommandError(self.node, argv, -1, "not run: an earlier step failed")
        if result.status != 0:
            raise RemoteCommandError(self.node, argv, result.status, result.stderr)
        return result


def run(t, steps: list[Step], *, feed: Callable[[Results], bytes] | None = None) -> Results:
    """Run `steps` on the transport's node in one call.

    `feed(results so far)` gives the input step its stdin once every step
    before it has ended, so a later step can carry what earlier ones found.
    """
    nonce = new_nonce()
    node = t.node.name
    feeder = next((i for i, s in enumerate(steps) if s.input), None)
    what = f"batch ({', '.join(s.name for s in steps)})"
    with t.open_stream(argv(steps, nonce), check=False) as stream:
        out = bytearray()
        if feeder is None or feed is None:
            stream.close_stdin()
        else:
            mark = f"{nonce} begin {feeder}\n".encode()
            while mark not in out and read_capped(stream, out, what):
                pass
            if mark in out:
                before = out[:out.index(mark)].decode(errors="replace")
                so_far = parse(steps, nonce, 0, before, stream.stderr, complete=False)
                try:
                    data = feed(Results(node, steps, so_far))
                except BaseException:
                    stream.close_stdin()  # the input step sees an empty input, not a cut one
                    raise
                stream.feed(data)
            else:
                stream.close_stdin()
        while read_capped(stream, out, what):
            pass
        status = stream.wait()
        return Results(node, steps, parse(steps, nonce, status, out.decode(errors="replace"),
                                          stream.stderr))
