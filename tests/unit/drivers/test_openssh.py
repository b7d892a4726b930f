"""The OpenSSH data-leg driver's command line: exact argv, trust only the given key."""
from __future__ import annotations

import pytest

from esbackup.drivers import openssh
from esbackup.errors import InvalidInput, OperationFailed

KEY = ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIHk1c2wQ9fZ7lKqy9T7Hq0p0Z5c7bB7xw2mZr3qv0a1b")
STRICT = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
          "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
          "-o", "KnownHostsCommand=/usr/bin/echo esbackup-node ssh-ed25519 "
                "AAAAC3NzaC1lZDI1NTE5AAAAIHk1c2wQ9fZ7lKqy9T7Hq0p0Z5c7bB7xw2mZr3qv0a1b",
          "-o", "HostKeyAlias=esbackup-node",
          "-o", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
                "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr",
          "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def test_a_node_key_is_the_only_identity_and_the_command_is_quoted_once():
    argv = openssh.ssh_argv("10.0.0.5", 2222, "backup", ("/keys/id one",), False, KEY,
                            ["sh", "-c", "zfs send 'a b' | x; $(id)"],
                            echo="/usr/bin/echo", timeout=10)
    assert argv == ["ssh", "-F", "/dev/null", "-T", "-x", "-a", *STRICT,
                    "-i", "/keys/id one", "-o", "IdentitiesOnly=yes",
                    "-p", "2222", "-l", "backup", "--", "10.0.0.5",
                    "sh -c 'zfs send '\"'\"'a b'\"'\"' | x; $(id)'"]


def test_a_node_without_key_also_lets_ssh_use_the_agent_and_default_keys():
    argv = openssh.ssh_argv("-oProxyCommand=x", 22, "root", (), True, KEY, ["true"],
                            echo="/usr/bin/echo", timeout=0.2)
    assert argv == ["ssh", "-F", "/dev/null", "-T", "-x", "-a",
                    *[a.replace("ConnectTimeout=10", "ConnectTimeout=1") for a in STRICT],
                    "-p", "22", "-l", "root", "--", "-oProxyCommand=x", "true"]


def test_the_known_hosts_command_prints_the_one_trusted_key():
    assert openssh.known_hosts_command(
        "/bin/echo", "ecdsa-sha2-nistp256", "AAAAE2VjZHNh+/8=") == \
        "/bin/echo esbackup-node ecdsa-sha2-nistp256 AAAAE2VjZHNh+/8="
    assert openssh.known_hosts_command("/usr/local/bin/echo", "sk-ssh-ed25519@openssh.com",
                                       "AAAAGnNr") == \
        "/usr/local/bin/echo esbackup-node sk-ssh-ed25519@openssh.com AAAAGnNr"


@pytest.mark.parametrize("echo, key_type, key_base64", [
    # ssh splits the command at blanks, unquotes, unescapes and expands %x and ${X}
    ("echo", *KEY), ("", *KEY), ("/opt/my bin/echo", *KEY), ("/opt/%h/echo", *KEY),
    ("/opt/${HOME}/echo", *KEY), ("/opt/'x'/echo", *KEY), ('/opt/"x"/echo', *KEY),
    ("/opt/x\\/echo", *KEY), ("/opt/x\t/echo", *KEY), ("/opt/x\n/echo", *KEY),
    ("/opt/#/echo", *KEY), ("/opt/é/echo", *KEY), ("/", *KEY),
    ("/bin/echo", "ssh-ed25519 x", KEY[1]), ("/bin/echo", "%t", KEY[1]),
    ("/bin/echo", "", KEY[1]), ("/bin/echo", "SSH-ED25519", KEY[1]),
    ("/bin/echo", KEY[0], ""), ("/bin/echo", KEY[0], "AAAA AAAA"),
    ("/bin/echo", KEY[0], "AAAA%K"), ("/bin/echo", KEY[0], "AAA"),
    ("/bin/echo", KEY[0], "AAAA="), ("/bin/echo", KEY[0], "AAAA\n"),
    ("/bin/echo", KEY[0], "AAAA\nevil ssh-ed25519 AAAA"), ("/bin/echo", KEY[0], "AA-_"),
])
def test_anything_ssh_would_not_pass_through_as_it_is_is_refused(echo, key_type, key_base64):
    with pytest.raises(OperationFailed, match="cannot give ssh"):
        openssh.known_hosts_command(echo, key_type, key_base64)
    with pytest.raises(OperationFailed):
        openssh.ssh_argv("h", 22, "root", (), True, (key_type, key_base64), ["true"],
                         echo=echo, timeout=10)


def test_bad_argv_is_invalid_input():
    with pytest.raises(InvalidInput):
        openssh.ssh_argv("h", 22, "root", (), True, KEY, ["a\0b"], echo="/bin/echo",
                         timeout=10)


@pytest.mark.parametrize("banner, version", [
    ("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024", (9, 2)),
    ("OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023", (8, 4)),
    ("OpenSSH_10.0p2", (10, 0)),
    ("Sun_SSH_1.5", (0, 0)),
    ("", (0, 0)),
])
def test_client_version_of_the_banner(banner, version):
    assert openssh.client_version(banner) == version


def test_debian_12s_client_carries_data_and_debian_11s_does_not():
    assert openssh.client_version("OpenSSH_8.4p1") < openssh.MIN_VERSION
    assert openssh.client_version("OpenSSH_9.2p1") >= openssh.MIN_VERSION
