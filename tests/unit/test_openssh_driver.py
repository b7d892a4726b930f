"""The OpenSSH data-leg driver's command line: exact argv, trust only the given key."""
from __future__ import annotations

import pytest

from esbackup.drivers import openssh
from esbackup.errors import InvalidInput

STRICT = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
          "-o", "UserKnownHostsFile=/tmp/x/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
          "-o", "HostKeyAlias=esbackup-node",
          "-o", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
                "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr",
          "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def test_a_node_key_is_the_only_identity_and_the_command_is_quoted_once():
    argv = openssh.ssh_argv("10.0.0.5", 2222, "backup", ("/keys/id one",), False,
                            "/tmp/x/known_hosts", ["sh", "-c", "zfs send 'a b' | x; $(id)"],
                            timeout=10)
    assert argv == ["ssh", "-F", "/dev/null", "-T", "-x", "-a", *STRICT,
                    "-i", "/keys/id one", "-o", "IdentitiesOnly=yes",
                    "-p", "2222", "-l", "backup", "--", "10.0.0.5",
                    "sh -c 'zfs send '\"'\"'a b'\"'\"' | x; $(id)'"]


def test_a_node_without_key_also_lets_ssh_use_the_agent_and_default_keys():
    argv = openssh.ssh_argv("-oProxyCommand=x", 22, "root", (), True, "/tmp/x/known_hosts",
                            ["true"], timeout=0.2)
    assert argv == ["ssh", "-F", "/dev/null", "-T", "-x", "-a",
                    *[a.replace("ConnectTimeout=10", "ConnectTimeout=1") for a in STRICT],
                    "-p", "22", "-l", "root", "--", "-oProxyCommand=x", "true"]


def test_bad_argv_is_invalid_input():
    with pytest.raises(InvalidInput):
        openssh.ssh_argv("h", 22, "root", (), True, "/k", ["a\0b"], timeout=10)
