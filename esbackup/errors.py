"""Exceptions of the core, each carrying the exit code docs/DESIGN.md documents.

The core raises these; only the CLI layer turns them into click exceptions.
"""


class EsbackupError(Exception):
    """Base class: the operation failed (exit 1)."""

    exit_code = 1


class OperationFailed(EsbackupError):
    """A remote command, transfer or node connection failed (exit 1)."""


class RemoteCommandError(OperationFailed):
    """A command on a node exited non-zero."""

    def __init__(self, node: str, argv: list[str], status: int, stderr: str):
        self.node, self.argv, self.status, self.stderr = node, argv, status, stderr
        super().__init__(f"{node}: {argv[0]} failed: {summary(stderr, status)}")


def summary(stderr: str, status: int) -> str:
    """The line of a failed command's stderr that says why: its last, unless a usage
    text follows the reason (OpenZFS prints `zfs snapshot`'s usage after "cannot open
    'x': dataset does not exist"), then the last line before that text."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    usage = next((i for i, line in enumerate(lines) if line.lower().startswith("usage:")), None)
    if usage:
        lines = lines[:usage]
    return lines[-1] if lines else f"exit status {status}"


class NodeUnreachable(OperationFailed):
    """The node could not be reached or logged into."""


class NotConnected(NodeUnreachable):
    """No command reached the node: it could not be reached or logged into, or a
    command could not be started on it. Nothing ran there, so nothing is undone."""


class HostKeyMismatch(NotConnected):
    """The node presented a host key other than the pinned one."""


class InvalidInput(EsbackupError):
    """Invalid input or usage (exit 2, click's own code)."""

    exit_code = 2


class PermissionDenied(EsbackupError):
    exit_code = 3


class NotSetUp(EsbackupError):
    """esbackup cannot work as installed: e.g. a PostgreSQL catalog without psycopg
    (exit 3, with permission problems: fix the setup, not the input)."""

    exit_code = 3


class NotFound(EsbackupError):
    exit_code = 4


class Busy(EsbackupError):
    """Locked by another operation, or node slots full (exit 5)."""

    exit_code = 5


class Damaged(EsbackupError):
    """The catalog is not a database or is corrupt (exit 5, with busy: it cannot be
    used now; unlike busy, only a restore or a rebuild helps)."""

    exit_code = 5


class OutputFailed(OperationFailed):
    """Standard output could not be written (a full disk, a closed pipe)."""
