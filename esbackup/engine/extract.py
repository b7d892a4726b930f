"""A backup's tar stream written into a folder of the admin host, safely.

The stream is the VM's own data, so every member passes two checks before
anything is written: `domain/backup_files.refusal` (names, kinds, links) and
tarfile's `data` filter (Python 3.11.4+: it resolves the path on disk, so no
member lands through a symlink out of the folder, and it drops setuid, setgid
and sticky bits and the tar's owners). Refused members are skipped and
reported. Everything is unpacked into a private folder inside the target
first and moved into place only when the stream ended whole, so a failure
leaves no partial file. Under sudo a child process that took the caller's
uid and groups does the writing: files are the caller's, and the kernel
checks that the caller may write there.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable

from esbackup.domain.backup_files import refusal
from esbackup.errors import EsbackupError, InvalidInput, NotFound, OperationFailed, PermissionDenied

Read = Callable[[], bytes]  # the next chunk of the stream; b"" at its end


def counted(read: Read, advance: Callable[[int | None], None] | None) -> Read:
    """`read`, telling `advance` each chunk's size and None at the end (a
    progress bar; None: nothing drawn)."""
    if advance is None:
        return read

    def counting() -> bytes:
        chunk = read()
        advance(len(chunk) if chunk else None)
        return chunk

    return counting


class _ChunkReader(io.RawIOBase):
    """A file object over `read()` chunks, for tarfile's stream mode."""

    def __init__(self, read: Read) -> None:
        self._read, self._rest = read, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._rest:
            self._rest = self._read()
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "f"
    if member.isdir():
        return "d"
    if member.issym():
        return "l"
    if member.islnk():
        return "h"
    return {tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}.get(
        member.type, "c")


def relative(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")) if name not in ("", ".", "./") else "."


class MemberFilter:
    """tarfile's extraction filter, recording what it skipped and why."""

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.files: set[str] = set()  # regular files written: the only hard-link targets

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        name = relative(member.name)
        why = refusal(name, _kind(member), member.linkname)
        if why is None and member.islnk() and relative(member.linkname) not in self.files:
            why = "hard link to a file not written: not created"
        if why is None:
            try:
                checked = tarfile.data_filter(member, dest)
            except tarfile.FilterError as error:
                why = f"refused ({error})"
        if why is not None:
            self.skipped.append(f"{name}: {why}")
            return None
        if checked.isreg():
            self.files.add(name)
        return checked


STAGING = ".esbackup-get-"  # + the writing process's PID + "-" + a random part
STAGING_RE = re.compile(re.escape(STAGING) + r"([0-9]+)-[^/]+")


def remove_stale_staging(dest: str) -> None:
    """Remove the staging folders of killed calls (their PID no longer runs)."""
    for entry in os.listdir(dest):
        match = STAGING_RE.fullmatch(entry)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            shutil.rmtree(os.path.join(dest, entry), ignore_errors=True)


class Unreadable(OperationFailed):
    """The stream is not a whole tar archive (the node may have stopped early)."""


def check_target(dest: str, names: list[str]) -> None:
    """`dest` is a folder holding none of `names` yet."""
    if not os.path.isdir(dest):
        raise NotFound(f"no such folder: {dest}")
    taken = [n for n in names if os.path.lexists(os.path.join(dest, n))]
    if taken:
        raise InvalidInput(f"{os.path.join(dest, taken[0])} already exists")


def unpack(read: Read, dest: str, names: list[str]) -> list[str]:
    """Unpack the stream into `dest` (an existing folder), where none of `names`
    may exist yet; returns the skipped members. Runs as the writing user."""
    check_target(dest, names)
    remove_stale_staging(dest)
    staging = tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=dest)
    try:
        keep = MemberFilter()
        try:
            with tarfile.open(fileobj=_ChunkReader(read), mode="r|") as tar:
                tar.extractall(staging, filter=keep)
        except (tarfile.TarError, EOFError) as error:
            raise Unreadable(f"unreadable archive from the node: {error}") from None
        arrived = sorted(os.listdir(staging))
        taken = [n for n in arrived if os.path.lexists(os.path.join(dest, n))]
        if taken:
            raise InvalidInput(f"{os.path.join(dest, taken[0])} already exists")
        for entry in arrived:
            os.rename(os.path.join(staging, entry), os.path.join(dest, entry))
        return keep.skipped
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unpack_as(user: tuple[int, int, list[int]], read: Read, dest: str,
              names: list[str]) -> list[str]:
    """`unpack` in a child process running as `user` (uid, gid, groups); this
    process only feeds it the stream through a pipe."""
    data_r, data_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, then write nothing but the caller's files
        outcome: dict = {}
        try:
            os.close(data_w)
            os.close(result_r)
            uid, gid, groups = user
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            with os.fdopen(data_r, "rb", buffering=0) as pipe:
                outcome = {"skipped": unpack(lambda: pipe.read(1 << 16), dest, names)}
        except Unreadable as error:
            outcome = {"error": str(error), "code": "unreadable"}
        except EsbackupError as error:
            outcome = {"error": str(error), "code": error.exit_code}
        except PermissionError as error:
            outcome = {"error": f"as {user[0]}: {error}", "code": 3}
        except BaseException as error:  # noqa: BLE001 - the child reports, never raises
            outcome = {"error": f"{type(error).__name__}: {error}", "code": 1}
        finally:
            os.write(result_w, json.dumps(outcome).encode())
            os._exit(0)
    os.close(data_r)
    os.close(result_w)
    try:
        with os.fdopen(data_w, "wb", buffering=0) as pipe:
            for chunk in iter(read, b""):
                pipe.write(chunk)
    except BrokenPipeError:
        pass  # the child stopped reading: its outcome says why
    finally:
        with os.fdopen(result_r, "rb") as answer:
            text = answer.read()
        os.waitpid(pid, 0)
    outcome = json.loads(text or b"{}")
    if "error" in outcome:
        raise {2: InvalidInput, 3: PermissionDenied, 4: NotFound, "unreadable": Unreadable}.get(
            outcome["code"], OperationFailed)(outcome["error"])
    return outcome["skipped"]
