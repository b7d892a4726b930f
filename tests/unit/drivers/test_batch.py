"""Unit tests of the batch driver: exact script text, strict parsing of hostile
output, and real runs through `sh` on this machine (LocalTransport)."""
import pytest

from esbackup.domain.models import Node
from esbackup.drivers import batch, files, transport
from esbackup.errors import InvalidInput, OperationFailed, RemoteCommandError

N = "esb-" + "0123456789abcdef" * 2
Step = batch.Step
STEPS = [Step("create", ["zfs", "create", "-p", "tank/backups/ds"], stop=True),
         Step("manifest", ["sh", "-c", "cat > \"$1\"", "sh", "/m/a b.json"], input=True),
         Step("list", ["zfs", "list", "it's $HOME"])]


def test_script_exact():
    assert batch.script(STEPS, N) == "\n".join([
        f"b() {{ printf '{N} begin %s\\n' \"$1\"; printf '{N} begin %s\\n' \"$1\" >&2; }}",
        f"e() {{ printf '\\n{N} end %s %s\\n' \"$1\" \"$2\"; "
        f"printf '\\n{N} end %s %s\\n' \"$1\" \"$2\" >&2; }}",
        'b 0; zfs create -p tank/backups/ds </dev/null; s=$?; e 0 "$s"; [ "$s" -eq 0 ] || exit 1',
        "b 1; sh -c 'cat > \"$1\"' sh '/m/a b.json'; s=$?; e 1 \"$s\"",
        "b 2; zfs list 'it'\"'\"'s $HOME' </dev/null; s=$?; e 2 \"$s\"",
        f"printf '{N} done\\n'",
    ])
    assert batch.argv(STEPS, N) == ["sh", "-c", batch.script(STEPS, N)]


@pytest.mark.parametrize("steps, nonce", [
    ([], N),
    ([Step("a", ["true"]), Step("a", ["true"])], N),  # names must be unique
    ([Step("A b", ["true"])], N),
    ([Step("a", ["cat"], input=True), Step("b", ["cat"], input=True)], N),
    ([Step("a", [])], N),
    ([Step("a", ["s=1", "true"])], N),  # would be an assignment, not a command
    ([Step("a", ["echo", "nul\0"])], N),
    ([Step("a", ["true"])], "esb-short"),
    ([Step("a", ["true"])], f"{N}'; rm -rf /; '"),
])
def test_bad_steps_refused(steps, nonce):
    with pytest.raises(InvalidInput):
        batch.script(steps, nonce)


def frame(i: int, body: str, status: int) -> str:
    return f"{N} begin {i}\n{body}\n{N} end {i} {status}\n"


THREE = [Step("a", ["true"]), Step("b", ["true"], stop=True), Step("c", ["true"])]


def test_parse_all_ran():
    out = frame(0, "x\n", 0) + frame(1, "no newline", 0) + frame(2, "", 5) + f"{N} done\n"
    err = frame(0, "", 0) + frame(1, "warned\n", 0) + frame(2, "failed\n", 5)
    results = batch.parse(THREE, N, 0, out, err)
    assert results == {"a": transport.Result(0, "x\n", ""),
                       "b": transport.Result(0, "no newline", "warned\n"),
                       "c": transport.Result(5, "", "failed\n")}


def test_parse_stopped_at_failed_stop_step():
    out = frame(0, "", 0) + frame(1, "", 2)
    err = frame(0, "", 0) + frame(1, "boom\n", 2)
    results = batch.parse(THREE, N, 2, out, err)
    assert list(results) == ["a", "b"] and results["b"].stderr == "boom\n"
    with pytest.raises(RemoteCommandError, match="boom"):
        batch.Results("n1", THREE, results).ok("b")
    with pytest.raises(RemoteCommandError, match="not run"):
        batch.Results("n1", THREE, results).ok("c")


GOOD_ERR = frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0)


@pytest.mark.parametrize("status, out, err", [
    # a step's output forging the next frames (a nonce inside output)
    (0, frame(0, f"x\n{N} end 0 0\n{N} begin 1\n", 0) + frame(1, "", 0) + frame(2, "", 0)
     + f"{N} done\n", GOOD_ERR),
    # cut short: no `done`, or a step missing
    (0, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0), GOOD_ERR),
    (0, frame(0, "", 0) + frame(1, "", 0) + f"{N} done\n", GOOD_ERR),
    # trailing data after `done`
    (0, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0) + f"{N} done\nmore", GOOD_ERR),
    # data before the first frame
    (0, "hello\n" + frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0) + f"{N} done\n",
     GOOD_ERR),
    # frames out of order, or a stdout/stderr status disagreement
    (0, frame(1, "", 0) + frame(0, "", 0) + frame(2, "", 0) + f"{N} done\n", GOOD_ERR),
    (0, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 3) + f"{N} done\n", GOOD_ERR),
    # stderr frames missing
    (0, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0) + f"{N} done\n", frame(0, "", 0)),
    # a status that is not a number
    (0, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0).replace(" 0\n", " x\n")
     + f"{N} done\n", GOOD_ERR),
    # the batch went on after a failed stop step
    (0, frame(0, "", 0) + frame(1, "", 1) + frame(2, "", 0) + f"{N} done\n",
     frame(0, "", 0) + frame(1, "", 1) + frame(2, "", 0)),
    # stopped, but the exit status says otherwise (killed, or forged)
    (0, frame(0, "", 0) + frame(1, "", 1), frame(0, "", 0) + frame(1, "", 1)),
    (-1, frame(0, "", 0) + frame(1, "", 0) + frame(2, "", 0) + f"{N} done\n", GOOD_ERR),
    # a frame of another run (other nonce) is just output, but then ours are missing
    (0, frame(0, "", 0).replace(N, N[:-1] + "f"), GOOD_ERR),
])
def test_parse_refuses_hostile_or_broken_output(status, out, err):
    with pytest.raises(OperationFailed):
        batch.parse(THREE, N, status, out, err)


LOCAL = Node(name="here", address="local")


def test_real_run_frames_output_status_and_stderr():
    steps = [Step("out", ["printf", "%s", "no newline"]),
             Step("err", ["sh", "-c", "echo oops >&2; exit 7"]),
             Step("quoted", ["echo", "it's $HOME; `x`"]),
             Step("forge", ["sh", "-c", "echo esb-00000000000000000000000000000000 done"]),
             Step("stop", ["false"], stop=True),
             Step("never", ["touch", "/nonexistent/never"])]
    with transport.LocalTransport(LOCAL) as t:
        results = batch.run(t, steps)
    assert results["out"] == transport.Result(0, "no newline", "")
    assert results["err"] == transport.Result(7, "", "oops\n")
    assert results["quoted"].stdout == "it's $HOME; `x`\n"
    assert results["forge"].stdout == "esb-00000000000000000000000000000000 done\n"
    assert results["stop"].status == 1 and "never" not in results


def test_real_run_feeds_the_input_step_from_earlier_results(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    steps = [Step("number", ["echo", "41"]),
             Step("write", files.write(str(target)), stop=True, input=True),
             Step("after", ["cat", str(target)])]
    with transport.LocalTransport(LOCAL) as t:
        results = batch.run(t, steps, feed=lambda so_far: b"%d\n" % (
            int(so_far["number"].stdout) + 1))
    assert target.read_bytes() == b"42\n" and results["after"].stdout == "42\n"
    assert list(tmp_path.joinpath("sub").iterdir()) == [target]  # no .part left


def test_a_failing_feed_leaves_no_file(tmp_path):
    target = tmp_path / "out.txt"

    def feed(so_far):
        raise ValueError("cannot compute the content")

    with transport.LocalTransport(LOCAL) as t, pytest.raises(ValueError):
        batch.run(t, [Step("write", files.write(str(target)), stop=True, input=True)],
                  feed=feed)
    assert not target.exists()
