"""Test double of a node's session that answers from a script, and the recorded
OpenZFS 2.1 outputs of an interrupted send (zfs_outputs/openzfs/) it is given:
`ScriptedNode` answers each argv from a script and records what it was asked."""
from __future__ import annotations

from pathlib import Path

from esbackup.domain.models import Definition, Node
from esbackup.drivers import batch, zfs
from esbackup.drivers.transport import Result

OUT = Path(__file__).parent / "zfs_outputs" / "openzfs"
TOKEN = (OUT / "resume-token.txt").read_text().strip()
SOURCE = "esblab_r1_530167/vm1-disk1"  # the recorded outputs' dataset
SNAP = f"{SOURCE}@esb-daily-20261130_070000"
SNAP_GUID = 0xb0e091cdb3dcf094
DAILY = Definition(vm="web01", name="daily", disk_id=1, type="dataset", node="b1",
                   storage="tank", schedule="0 1 * * *", timezone="UTC", keep_last=3)


class ScriptedNode:
    """Test double of a node's session (drivers/session.py's NodeSession, the
    calls these tests need): `script` maps an argv (tuple) to the Result it gets;
    anything unscripted fails the test. `calls` records argv; a batch's steps
    are answered in turn, and a failed `stop` step ends it, as the real script
    does. `node` is set by the `Scripted` factory that hands it out."""

    def __init__(self, script: dict[tuple, Result]):
        self.script, self.calls = script, []
        self.node: Node | None = None

    def run(self, argv, *, check: bool = True, **_):
        self.calls.append(list(argv))
        assert tuple(argv) in self.script, f"unexpected command {argv}"
        return self.script[tuple(argv)]

    def batch(self, steps, *, feed=None):
        results = {}
        for step in steps:
            results[step.name] = self.run(list(step.argv), check=False)
            if step.stop and results[step.name].status:
                break
        return batch.Results(self.node.name, steps, results)


class Scripted(dict):
    """ScriptedNodes by node name: the jobs' `Sessions` factory."""

    def __call__(self, node: Node) -> ScriptedNode:
        self[node.name].node = node
        return self[node.name]


def ok(stdout: str = "") -> Result:
    return Result(0, stdout, "")


def snap(name: str, guid: int, txg: int = 10) -> zfs.Snapshot:
    return zfs.Snapshot(name=name, guid=guid, createtxg=txg, creation=0, used=0, backup=None)


def info_node(output_file: str, status: int = 0) -> ScriptedNode:
    text = (OUT / output_file).read_text()
    stdout, _, stderr = text.partition("cannot resume send")
    return ScriptedNode({tuple(zfs.send_resume_info(TOKEN)): Result(
        status, stdout, "cannot resume send" + stderr if stderr else "")})
