"""What a failed remote command's error says: the line of its stderr that says why."""
import pytest

from esbackup.errors import RemoteCommandError

# `zfs snapshot` of a dataset that is gone, as OpenZFS 2.1 in a lab guest says it
OPENZFS_SNAPSHOT_GONE = """cannot open 'nope/x': dataset does not exist
usage:
\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...

For the property list, run: zfs set|get

For the delegated permission list, run: zfs allow|unallow
"""


@pytest.mark.parametrize("stderr, said", [
    (OPENZFS_SNAPSHOT_GONE, "cannot open 'nope/x': dataset does not exist"),
    ("warning: x\ncannot receive: out of space\n", "cannot receive: out of space"),
    ("usage:\n\tzfs send ...\n", "zfs send ..."),  # nothing before the usage text
    ("  \n", "exit status 3"),
    ("", "exit status 3"),
])
def test_the_reason_not_the_usage_text(stderr, said):
    error = RemoteCommandError("c1", ["zfs", "snapshot", "nope/x@y"], 3, stderr)
    assert str(error) == f"c1: zfs failed: {said}"
    assert error.stderr == stderr and error.status == 3
