"""The data legs of a relay through the system's OpenSSH client (`ssh`), for speed.

Through paramiko, a relayed 400 MiB full backup ran at 0.6-0.8x the OpenSSH
pipe `ssh c1 zfs send | ssh b1 zfs recv` (bench/backup.py). The profile: every
byte goes through paramiko's Python packetizer and channel buffers (about ten
copies, and its BufferedPipe alone held the GIL 3.2 s per 400 MiB), in three
threads that share one GIL, so the relay used barely one of two cores. Two
`ssh` processes carry the bytes on both cores instead, with an AES-GCM cipher
first (AES-NI makes it cheaper than OpenSSH's default chacha20-poly1305 for
`ssh` and for sshd), while this process only copies between two pipes,
hashes, paces and counts, as before (engine/transfer.py).

paramiko keeps every control call and the login that checks the node's pinned
host key: a data leg trusts exactly the key that login verified (strict
checking, batch mode, no password) and logs in with the node's key file, or,
for a node that names none, as paramiko does: with the agent and the default
keys. `ssh` reads no ssh_config (-F /dev/null): host, port, user and key files
come from the lookup paramiko uses.

That key reaches `ssh` on its command line, never in a file (a temporary
known_hosts file outlived every esbackup that was SIGKILLed): ssh's
KnownHostsCommand (OpenSSH >= 8.5) is `echo <alias> <type> <base64>`, and ssh
takes the one line it prints as the only known host; it reads and writes no
known_hosts file (UserKnownHostsFile and GlobalKnownHostsFile are /dev/null).
ssh splits that command itself, no shell: at blanks, with quotes and
backslashes quoting, then expands %- and ${}-tokens in it; so each word is
checked to hold nothing of the kind before it goes there.
"""
from __future__ import annotations

import fcntl
import functools
import re
import shlex
import shutil
import subprocess

from esbackup.drivers import transport
from esbackup.errors import NodeUnreachable, NotConnected, OperationFailed

SSH = "ssh"
# OpenSSH's own default set (modern AEAD and CTR ciphers only), AES-GCM first.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")
ECHO = "echo"  # prints the known host line: the KnownHostsCommand
HOST_ALIAS = "esbackup-node"  # the host name of that line
# What may go on ssh's KnownHostsCommand line: nothing ssh would split, unquote or expand.
ECHO_PATH = re.compile(r"(/[A-Za-z0-9._+-]+)+")
KEY_TYPE = re.compile(r"[a-z][a-z0-9-]*(@[a-z0-9.-]+)?")  # ssh-ed25519, sk-...@openssh.com
BASE64 = re.compile(r"([A-Za-z0-9+/]{4})+([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
MIN_VERSION = (8, 5)  # the first OpenSSH with KnownHostsCommand
SSH_FAILED = 255  # ssh's status for its own failures: refused, lost, host key, login
EXIT_WAIT = 5.0  # ssh exits as soon as its output ended: how long to wait for its status
PIPE_SIZE = 1 << 20  # our ends of the pipes: fewer, larger reads and writes
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when this host has an OpenSSH client that knows KnownHostsCommand (8.5 or
    newer; older ones refuse the option) and the `echo` it is given. Otherwise the
    data stays on paramiko channels."""
    if shutil.which(SSH) is None or shutil.which(ECHO) is None:
        return False
    try:
        said = subprocess.run([SSH, "-V"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return client_version(said.stderr + said.stdout) >= MIN_VERSION


def client_version(banner: str) -> tuple[int, int]:
    """(major, minor) of an `ssh -V` banner ("OpenSSH_9.2p1 Debian-2, OpenSSL ..."); (0, 0)
    for anything else."""
    found = re.match(r"\s*OpenSSH_(\d+)\.(\d+)", banner)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def known_hosts_command(echo: str, key_type: str, key_base64: str) -> str:
    """The KnownHostsCommand that gives `ssh` the one key it may trust, `echo` being
    the absolute path of an echo program; OperationFailed for anything ssh would
    not pass through as it is."""
    for what, value, form in (("echo program", echo, ECHO_PATH),
                              ("host key type", key_type, KEY_TYPE),
                              ("host key", key_base64, BASE64)):
        if not form.fullmatch(value):
            raise OperationFailed(f"cannot give {SSH} this {what}: {value!r}")
    return f"{echo} {HOST_ALIAS} {key_type} {key_base64}"


def ssh_argv(host: str, port: int, user: str, key_files: tuple[str, ...], agent: bool,
             host_key: tuple[str, str], argv: list[str], *, echo: str,
             timeout: float) -> list[str]:
    """The `ssh` command line that runs `argv` on a node, trusting only `host_key`
    (its type and base64) and touching no known_hosts file."""
    identities = [option for path in key_files for option in ("-i", path)]
    if not agent:
        identities += ["-o", "IdentitiesOnly=yes"]
    options = {"BatchMode": "yes", "StrictHostKeyChecking": "yes",
               "UserKnownHostsFile": "/dev/null", "GlobalKnownHostsFile": "/dev/null",
               "KnownHostsCommand": known_hosts_command(echo, *host_key),
               "HostKeyAlias": HOST_ALIAS, "Ciphers": ",".join(CIPHERS),
               "ConnectTimeout": str(max(1, round(timeout))), "LogLevel": "ERROR"}
    return [SSH, "-F", "/dev/null", "-T", "-x", "-a",
            *(arg for name, value in options.items() for arg in ("-o", f"{name}={value}")),
            *identities, "-p", str(port), "-l", user, "--", host,
            shlex.join(transport._checked(argv))]


def open_stream(session: transport.SSHTransport, argv: list[str]) -> transport.Stream:
    """`argv` running on the session's node, its stdin and stdout carried by an `ssh`
    process; like session.open_stream(argv, check=False)."""
    target, key = session.login()
    command = ssh_argv(target.host, target.port, target.user, target.key_files, target.agent,
                       (key.get_name(), key.get_base64()), argv,
                       echo=shutil.which(ECHO) or ECHO, timeout=session.timeout)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        raise NotConnected(
            f"node {session.node.name}: cannot start {SSH}: {exc.strerror}") from exc
    return OpenSSHStream(session.node.name, argv, proc)


class OpenSSHStream(transport.LocalStream):
    """A node's command behind a local `ssh` process: LocalStream's pipes, with
    ssh's status 255 taken as the connection's failure (Stream's "lost")."""

    def __init__(self, node: str, argv: list[str], proc: subprocess.Popen[bytes]) -> None:
        super().__init__(node, argv, False, proc)
        for pipe in (self._in, self._out):
            try:
                fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:  # above the system's pipe-max-size: the default pipe will do
                pass

    def _recv(self, n: int) -> bytes:
        data = super()._recv(n)
        if not data:  # an end of output: know whether ssh failed before calling it the end
            try:
                self._proc.wait(EXIT_WAIT)
            except subprocess.TimeoutExpired:
                pass
        return data

    def _lost(self) -> bool:
        return self._proc.poll() == SSH_FAILED

    def _failure(self) -> OperationFailed:
        error = super()._failure()
        said = [line for line in self.stderr.splitlines()
                if line.strip() and not line.startswith(transport.STAGE_MARK)]
        if isinstance(error, NodeUnreachable) and said:
            return NodeUnreachable(f"{error} ({SSH}: {said[-1].strip()})")
        return error
