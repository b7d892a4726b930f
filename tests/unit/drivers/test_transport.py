"""Pipeline and ssh argv, and reading a pipeline's stage marks (drivers/transport.py)."""
from __future__ import annotations

import subprocess

import pytest

from esbackup.domain.models import Node
from esbackup.drivers.transport import Result, check_pipeline, pipeline_argv, pull_argv
from esbackup.errors import InvalidInput, RemoteCommandError


def test_pipeline_argv_one_stage():
    assert pipeline_argv([["zfs", "send", "tank/a@esb-d-20261126_010000"]]) == [
        "sh", "-c",
        '{ zfs send tank/a@esb-d-20261126_010000; echo "esb-stage 0 $?" >&2; }']


def test_pipeline_argv_two_stages_with_input_and_output():
    argv = pipeline_argv([["cat"], ["gzip", "-c", "-1"]], input_path="/in dir/a b",
                         output="/out/it's.zfs.gz")
    assert argv == [
        "sh", "-c",
        "{ cat < '/in dir/a b'; echo \"esb-stage 0 $?\" >&2; } | "
        "{ gzip -c -1 > '/out/it'\"'\"'s.zfs.gz'; echo \"esb-stage 1 $?\" >&2; }"]


def test_pipeline_argv_one_stage_with_both_redirections():
    assert pipeline_argv([["cat"]], input_path="/a", output="/b") == [
        "sh", "-c", '{ cat < /a > /b; echo "esb-stage 0 $?" >&2; }']


@pytest.mark.parametrize("stages", [[], [[]], [["ok"], ["bad\0arg"]], [["x", 3]]])
def test_pipeline_argv_refuses_bad_stages(stages):
    with pytest.raises(InvalidInput):
        pipeline_argv(stages)


NASTY = "a b;$(touch PWNED)`touch PWNED2`'q\"\\ $HOME *|&>x\n"


def test_pipeline_quotes_everything_when_run(tmp_path):
    out = tmp_path / "out file;$(touch PWNED3)'x'"
    argv = pipeline_argv([["printf", "%s", NASTY]], output=str(out))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == NASTY
    assert result.stderr == "esb-stage 0 0\n"
    check_pipeline("local", [["printf", "%s", NASTY]], Result(0, "", result.stderr))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_pipeline_input_output_paths_quoted_when_run(tmp_path):
    source = tmp_path / "in `x` $(y) 'z';w"
    source.write_text("hello pipeline\n")
    target = tmp_path / "res\"ult & more"
    stages = [["cat"], ["tr", "a-z", "A-Z"]]
    argv = pipeline_argv(stages, input_path=str(source), output=str(target))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert target.read_text() == "HELLO PIPELINE\n"
    check_pipeline("local", stages, Result(result.returncode, "", result.stderr))
    assert len(list(tmp_path.iterdir())) == 2


def test_pipeline_failure_found_when_run(tmp_path):
    stages = [["printf", "data"], ["sh", "-c", "cat >/dev/null; echo broken >&2; exit 3"]]
    result = subprocess.run(pipeline_argv(stages), capture_output=True, text=True, check=False)
    assert result.returncode == 0  # sh has no pipefail: the marks are what tells
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("local", stages, Result(result.returncode, "", result.stderr))
    assert (caught.value.status, caught.value.argv) == (3, stages[1])
    assert "broken" in caught.value.stderr and "esb-stage" not in caught.value.stderr


STAGES = [["zfs", "send", "tank/a@s"], ["gzip", "-c"]]


def test_check_pipeline_passes_when_all_report_zero():
    check_pipeline("c1", STAGES, Result(0, "", "esb-stage 0 0\nesb-stage 1 0\n"))
    check_pipeline("c1", STAGES, Result(0, "", "esb-stage 1 0\nnoise\nesb-stage 0 0\n"))


def test_check_pipeline_names_the_failing_stage():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(0, "", "cannot open 'tank/a@s'\nesb-stage 0 1\n"
                                                   "esb-stage 1 0\n"))
    error = caught.value
    assert (error.node, error.argv, error.status) == ("c1", STAGES[0], 1)
    assert error.stderr == "cannot open 'tank/a@s'"
    assert str(error) == "c1: zfs failed: cannot open 'tank/a@s'"


def test_check_pipeline_missing_marker_is_a_failure():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(0, "", "esb-stage 0 0\n"))
    assert caught.value.argv == STAGES[1]
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("c1", STAGES, Result(255, "", "ssh: connection lost\n"))
    assert caught.value.argv == STAGES[0] and caught.value.status == 255


def test_check_pipeline_sigpipe_blames_the_reader():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(0, "", "esb-stage 0 141\nesb-stage 1 2\n"))
    assert (caught.value.argv, caught.value.status) == (STAGES[1], 2)
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(0, "", "esb-stage 0 141\nesb-stage 1 0\n"))
    assert (caught.value.argv, caught.value.status) == (STAGES[0], 141)


def test_check_pipeline_shell_failure_after_stages():
    with pytest.raises(RemoteCommandError) as caught:
        check_pipeline("b1", STAGES, Result(2, "", "esb-stage 0 0\nesb-stage 1 0\n"))
    assert caught.value.argv == ["sh"]


def test_pull_argv_exact():
    node = Node("c1", "10.0.0.2", port=2222, user="backup")
    assert pull_argv(node, ["zfs", "send", "-i", "zones/a@x", "zones/a@y"]) == [
        "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-p", "2222",
        "-l", "backup", "--", "10.0.0.2", "zfs send -i zones/a@x zones/a@y"]
    assert pull_argv(Node("c2", "h"), ["echo", "a b", "$(id)"])[5:] == [
        "-p", "22", "-l", "root", "--", "h", "echo 'a b' '$(id)'"]
    with pytest.raises(InvalidInput):
        pull_argv(node, [])


def test_pull_argv_remote_command_is_shell_quoted_when_run(tmp_path):
    argv = pull_argv(Node("c1", "h"), ["printf", "%s", NASTY])
    result = subprocess.run(["sh", "-c", argv[-1]], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    assert result.stdout == NASTY and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["run", "batch"])
def test_a_call_answering_past_the_output_cap_fails_with_one_line_naming_cap_and_node(how):
    from esbackup.drivers import batch, transport
    from esbackup.errors import OperationFailed

    t = transport.LocalTransport(Node(name="here", address="local"))
    flood = ["sh", "-c", "yes 0123456789abcdef | head -c 17M; echo finished >&2"]
    with pytest.raises(OperationFailed) as caught:
        if how == "run":
            t.run(flood)
        else:
            batch.run(t, [batch.Step("list", ["true"]), batch.Step("flood", flood)])
    message = str(caught.value)
    assert "\n" not in message and "node here" in message
    assert message.endswith("printed more than 16 MiB, the cap on one call's output")
    at_the_cap = ["sh", "-c", "yes 0123456789abcdef | head -c 16M"]
    assert len(t.run(at_the_cap).stdout) == transport.MAX_OUTPUT
