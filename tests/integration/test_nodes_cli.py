"""`node create` and `node check` against real sshd and real zfs."""
import json

import pytest

from lab.nodes import keygen


def address(n):
    return f"{n.address}:{n.port}"


def test_create_pins_key_and_check_reports_real_pools(esb, new_node):
    n = new_node("c7")
    out = esb.ok("node", "create", "c7", "--address", address(n), "--key", n.key_path,
                 "--accept-host-key").stdout
    assert n.host_key in out
    report = json.loads(esb.ok("node", "check", "c7", "-f", "json").stdout)
    assert report["host_key"] == n.host_key
    assert report["capabilities"]["flavour"] == "zfs-fuse"
    assert any(p.startswith(n.pool) for p in report["pools"])
    assert report["capabilities"]["tools"]["gzip"] is True
    assert esb.json("node", "show", "c7")["zfs"] == "zfs-fuse pool 23"


def test_check_shows_storage_space(esb, new_node):
    n = new_node("b7")
    esb.ok("node", "create", "b7", "--address", address(n), "--key", n.key_path,
           "--host-key", n.host_key, "--backup")
    esb.ok("storage", "create", "b7", "tank", "--zpool", n.pool)
    report = json.loads(esb.ok("node", "check", "b7", "-f", "json").stdout)
    (storage,) = report["storages"]
    assert storage["zpool"] == n.pool and storage["available"] > 100 << 20
    table = esb.ok("node", "check", "b7").stdout
    assert "zfs-fuse" in table and "MiB" in table


def test_key_must_match_or_be_accepted(esb, new_node):
    n = new_node()
    err = esb.fails(1, "node", "create", "x", "--address", address(n), "--key", n.key_path,
                    "--host-key", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert "mismatch" in err and n.host_key in err
    err = esb.fails(2, "node", "create", "x", "--address", address(n), "--key", n.key_path)
    assert "--accept-host-key" in err and n.host_key in err
    esb.fails(4, "node", "show", "x")  # nothing registered


def test_no_connect_then_pin_with_check(esb, new_node):
    n = new_node(pool_size=None)
    esb.ok("node", "create", "late", "--address", address(n), "--key", n.key_path,
           "--no-connect")
    assert esb.json("node", "show", "late")["host_key"] is None
    esb.ok("node", "check", "late", "--accept-host-key")
    assert esb.json("node", "show", "late")["host_key"] == n.host_key


def test_changed_host_key_is_refused(esb, new_node, lab):
    n = new_node(pool_size=None)
    esb.ok("node", "create", "n", "--address", address(n), "--key", n.key_path,
           "--host-key", n.host_key)
    old = n.host_key
    new = lab.regenerate_host_key(n)
    err = esb.fails(1, "node", "check", "n")
    assert "mismatch" in err and old in err and new in err
    assert esb.json("node", "show", "n")["host_key"] == old


@pytest.mark.parametrize("change, reason", [
    ("stopped", "refused"), ("key", "authentication failed"), ("user", "authentication failed"),
    ("name", "resolve"),
])
def test_unreachable_node_says_why(esb, new_node, lab, tmp_path, change, reason):
    n = new_node(pool_size=None)
    esb.ok("node", "create", "n", "--address", address(n), "--key", n.key_path,
           "--host-key", n.host_key)
    if change == "stopped":
        lab.stop_sshd(n)
    elif change == "key":
        other = tmp_path / "other_key"
        keygen(other)
        esb.ok("node", "update", "n", "--key", str(other))
    elif change == "user":
        esb.ok("node", "update", "n", "--user", "nobody")
    else:
        esb.ok("node", "update", "n", "--address", "no-such-host.invalid")
    err = esb.fails(1, "node", "check", "n")
    assert reason in err.lower(), err
    assert len(err.strip().splitlines()) == 1


def test_zfs_missing_on_node(esb, lab):
    n = lab.add_node("nozfs", pool_size=None, sshd_options={"SetEnv": "PATH=/usr/bin:/bin"})
    try:
        esb.ok("node", "create", "nozfs", "--address", address(n), "--key", n.key_path,
               "--host-key", n.host_key, "--no-connect")
        err = esb.fails(1, "node", "check", "nozfs")
        assert "zfs" in err
    finally:
        lab.remove_node(n)
