"""Paths inside a backup and which archive members may be written out."""
import pytest

from esbackup.domain.backup_files import get_paths, inner_path, refusal
from esbackup.errors import InvalidInput


def test_inner_paths_are_relative_to_the_disk_root_without_dot_components():
    assert inner_path("/etc//ssh/./sshd_config/") == "etc/ssh/sshd_config"
    assert inner_path("/") == ""
    assert inner_path("var/log") == "var/log"


@pytest.mark.parametrize("path", ["../etc", "/a/../../b", "a/..", "a\0b", "x" * 5000])
def test_dot_dot_nul_and_overlong_paths_are_refused(path):
    with pytest.raises(InvalidInput):
        inner_path(path)


def test_paths_that_would_land_under_one_name_are_refused():
    assert get_paths(["/etc/hostname", "var/log"]) == ["etc/hostname", "var/log"]
    with pytest.raises(InvalidInput, match="'hostname'"):
        get_paths(["/etc/hostname", "/backup/hostname"])
    with pytest.raises(InvalidInput, match="alone"):
        get_paths(["/", "etc"])
    with pytest.raises(InvalidInput, match="at least one"):
        get_paths([])


@pytest.mark.parametrize("name, kind, link, why", [
    ("../x", "f", "", "outside"),
    ("a/../../x", "f", "", "outside"),
    ("/etc/passwd", "f", "", "outside"),
    ("dev/null", "c", "", "char device"),
    ("disk", "b", "", "block device"),
    ("pipe", "p", "", "fifo"),
    ("etc/shadow", "l", "/etc/shadow", "absolute"),
    ("a/up", "l", "../../x", "out of the target"),
    ("hard", "h", "../outside", "out of the target"),
    ("hard", "h", "/etc/shadow", "absolute"),
])
def test_hostile_members_are_refused_with_the_reason(name, kind, link, why):
    assert why in refusal(name, kind, link)


@pytest.mark.parametrize("name, kind, link", [
    ("etc/hostname", "f", ""), ("etc", "d", ""), ("a/b/l", "l", "../c"),
    ("a/l", "l", "sub/file"), ("h", "h", "etc/hostname"), ("x..y", "f", ""),
])
def test_ordinary_members_are_written(name, kind, link):
    assert refusal(name, kind, link) is None
