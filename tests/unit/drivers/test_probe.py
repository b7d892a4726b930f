"""Finding the tools a node has (drivers/probe.py), on this machine."""
from esbackup.domain.models import Node
from esbackup.drivers import probe, transport


def test_which_finds_what_this_machine_has():
    with transport.LocalTransport(Node("here", "local")) as t:
        output = t.run(probe.which(("sh", "esb-no-such-tool"))).stdout
    assert probe.parse_which(output, ("sh", "esb-no-such-tool")) == {
        "sh": True, "esb-no-such-tool": False}
