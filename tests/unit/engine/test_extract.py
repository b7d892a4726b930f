"""A backup's tar stream written out safely: crafted hostile archives."""
import io
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from esbackup.engine import extract
from esbackup.errors import InvalidInput, NotFound, PermissionDenied


def member(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, link, mode, len(data)
    return info, data


def archive(*members) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def reader(data: bytes, chunk: int = 700):
    pieces = iter([data[i:i + chunk] for i in range(0, len(data), chunk)])
    return lambda: next(pieces, b"")


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, names in os.walk(root) for n in dirs + names)


def test_an_ordinary_tree_arrives_whole_with_its_links_inside(tmp_path):
    data = archive(member("./etc", tarfile.DIRTYPE, mode=0o755),
                   member("./etc/hostname", data=b"vm1\n"),
                   member("./etc/alias", tarfile.SYMTYPE, link="hostname"),
                   member("./etc/again", tarfile.LNKTYPE, link="./etc/hostname"))
    assert extract.unpack(reader(data), str(tmp_path), ["etc"]) == []
    assert (tmp_path / "etc/hostname").read_bytes() == b"vm1\n"
    assert os.readlink(tmp_path / "etc/alias") == "hostname"
    assert os.stat(tmp_path / "etc/again").st_ino == os.stat(tmp_path / "etc/hostname").st_ino
    assert files_under(tmp_path) == ["etc", "etc/again", "etc/alias", "etc/hostname"]


def test_hostile_members_are_skipped_and_named_and_nothing_leaves_the_target(tmp_path):
    target = tmp_path / "to"
    target.mkdir()
    data = archive(member("./d", tarfile.DIRTYPE, mode=0o755),
                   member("../escape", data=b"x"),
                   member("./d/../../escape2", data=b"x"),
                   member("/abs", data=b"x"),
                   member("./d/root", tarfile.SYMTYPE, link="/"),
                   member("./d/shadow", tarfile.SYMTYPE, link="/etc/shadow"),
                   member("./d/up", tarfile.SYMTYPE, link="../../.."),
                   member("./d/root/tmp/through", data=b"x"),
                   member("./d/null", tarfile.CHRTYPE),
                   member("./d/disk", tarfile.BLKTYPE),
                   member("./d/fifo", tarfile.FIFOTYPE),
                   member("./d/passwd", tarfile.LNKTYPE, link="/etc/passwd"),
                   member("./d/outside", tarfile.LNKTYPE, link="../../outside"),
                   member("./d/suid", data=b"#!/bin/sh\n", mode=0o6777))
    skipped = extract.unpack(reader(data), str(target), ["d"])
    assert len(skipped) == 10
    assert "d/shadow: absolute link: not created" in skipped
    assert "d/null: char device: not created" in skipped
    # a leading / is dropped, and a path through a skipped link is a plain folder: inside
    assert files_under(tmp_path) == ["to", "to/abs", "to/d", "to/d/root", "to/d/root/tmp",
                                     "to/d/root/tmp/through", "to/d/suid"]
    mode = os.stat(target / "d/suid").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH | stat.S_IWGRP)


def test_a_member_through_a_symlink_made_by_the_same_archive_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "to"
    target.mkdir()
    data = archive(member("./d", tarfile.DIRTYPE, mode=0o755),
                   member("./d/sub", tarfile.SYMTYPE, link="."),  # inside: kept
                   member("./d/sub/file", data=b"ok"))
    assert extract.unpack(reader(data), str(target), ["d"]) == []
    assert (target / "d/file").read_bytes() == b"ok"
    assert list(outside.iterdir()) == []


def test_a_hard_link_to_a_member_not_written_is_skipped(tmp_path):
    data = archive(member("./null", tarfile.CHRTYPE),
                   member("./h", tarfile.LNKTYPE, link="./null"))
    skipped = extract.unpack(reader(data), str(tmp_path), [])
    assert skipped == ["null: char device: not created",
                       "h: hard link to a file not written: not created"]
    assert files_under(tmp_path) == []


def test_a_killed_calls_staging_folder_goes_with_the_next_call(tmp_path):
    finished = os.fork()
    if finished == 0:
        os._exit(0)
    os.waitpid(finished, 0)  # a PID no longer running
    stale = tmp_path / f".esbackup-get-{finished}-abc"
    (stale / "half").mkdir(parents=True)
    live = tmp_path / f".esbackup-get-{os.getpid()}-abc"  # a running call's: kept
    live.mkdir()
    extract.unpack(reader(archive(member("./f", data=b"x"))), str(tmp_path), ["f"])
    assert files_under(tmp_path) == [live.name, "f"]


def test_existing_names_in_the_target_are_never_replaced(tmp_path):
    (tmp_path / "etc").write_text("mine")
    with pytest.raises(InvalidInput, match="already exists"):
        extract.unpack(reader(archive(member("./etc/x"))), str(tmp_path), ["etc"])
    data = archive(member("./etc", data=b"theirs"))  # the root got: names known only after
    with pytest.raises(InvalidInput, match="already exists"):
        extract.unpack(reader(data), str(tmp_path), [])
    assert (tmp_path / "etc").read_text() == "mine" and files_under(tmp_path) == ["etc"]


def test_a_stream_cut_short_leaves_no_partial_file(tmp_path):
    data = archive(member("./big", data=os.urandom(100_000)))
    with pytest.raises(extract.Unreadable):
        extract.unpack(reader(data[:50_000]), str(tmp_path), ["big"])
    assert files_under(tmp_path) == []
    with pytest.raises(NotFound):
        extract.unpack(reader(data), str(tmp_path / "missing"), ["big"])


def test_under_sudo_a_child_running_as_the_caller_writes_the_files():
    nobody = (65534, 65534, [65534])
    tmp_path = Path(tempfile.mkdtemp())  # pytest's own is root's alone
    tmp_path.chmod(0o755)
    target = tmp_path / "to"
    target.mkdir()
    os.chown(target, 65534, 65534)
    data = archive(member("./f", data=b"x"), member("./dev", tarfile.CHRTYPE))
    assert extract.unpack_as(nobody, reader(data), str(target), ["f"]) == [
        "dev: char device: not created"]
    owner = os.stat(target / "f")
    assert (owner.st_uid, owner.st_gid) == (65534, 65534)
    root_owned = tmp_path / "root-only"
    root_owned.mkdir(mode=0o755)
    try:
        with pytest.raises(PermissionDenied):
            extract.unpack_as(nobody, reader(data), str(root_owned), ["f"])
        assert list(root_owned.iterdir()) == []
    finally:
        shutil.rmtree(tmp_path)


def test_a_counted_stream_reports_each_chunk_and_its_end():
    seen = []
    read = extract.counted(reader(b"x" * 1500, chunk=700), seen.append)
    assert b"".join(iter(read, b"")) == b"x" * 1500
    assert seen == [700, 700, 100, None]
    plain = reader(b"y")
    assert extract.counted(plain, None) is plain
