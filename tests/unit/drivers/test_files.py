"""The argv and output parsers of file commands on a node (drivers/files.py)."""
import pytest

from esbackup.drivers import files
from esbackup.errors import InvalidInput, OperationFailed


def test_file_argv_and_parsers():
    assert files.write("/m/x/a.json") == ["sh", "-c", files.WRITE_SCRIPT, "sh",
                                          "/m/x/.a.json.part", "/m/x/a.json", "/m/x"]
    assert files.prepare_folder("tank", "/backups/file/u/disk1") == [
        "sh", "-c", files.FOLDER_SCRIPT, "sh", "tank", "/backups/file/u/disk1"]
    for bad in ("relative", "/a/../b"):
        with pytest.raises(InvalidInput):
            files.prepare_folder("tank", bad)
    assert files.parse_prepared_folder("tank", "/tank\n") == "/tank"
    for bad in ("", "none\n", "/a\n/b\n"):
        with pytest.raises(OperationFailed):
            files.parse_prepared_folder("tank", bad)
    digest = "ab" * 32
    assert files.parse_sha256(f"{digest}  /x\n") == digest
    assert files.sha256("/x", {"sha256sum": False}) == ["digest", "-a", "sha256", "/x"]
    with pytest.raises(OperationFailed):
        files.parse_sha256("zz  /x\n")
    assert files.parse_size("123 /x\n") == 123
    with pytest.raises(OperationFailed):
        files.parse_size("-1 /x\n")


def test_read_argv_carries_limit_and_budget_and_refuses_a_budget_below_one_file():
    assert files.read(["/a", "/b"], 10, 40) == ["sh", "-c", files.READ_SCRIPT, "10", "40",
                                                "/a", "/b"]
    with pytest.raises(InvalidInput):
        files.read(["/a"], 10, 9)


def test_read_files_past_the_budget_come_in_more_calls_each_under_the_cap(tmp_path,
                                                                         monkeypatch):
    from esbackup.domain.models import Node
    from esbackup.drivers import session, transport

    # a cap of 64 KiB: 16 KiB of files a call; 24 files of 4 KiB in one call would break it
    monkeypatch.setattr(transport, "MAX_OUTPUT", 64 << 10)
    datas = [bytes([i]) * (4 << 10) for i in range(24)]
    paths = []
    for i, data in enumerate(datas):
        (tmp_path / f"m{i}.json").write_bytes(data)
        paths.append(str(tmp_path / f"m{i}.json"))
    paths.insert(3, str(tmp_path / "missing.json"))
    (tmp_path / "big.json").write_bytes(b"x" * ((4 << 10) + 1))
    paths.append(str(tmp_path / "big.json"))
    t = transport.LocalTransport(Node(name="here", address="local"))
    calls = []
    run = t.run
    t.run = lambda argv, **kw: calls.append(len(argv) - 5) or run(argv, **kw)  # type: ignore
    found = session.TransportSession(t).read_files(paths, 4 << 10)
    assert found == datas[:3] + [None] + datas[3:] + [None]
    assert calls == [26, 20, 16, 12, 8, 4]  # files asked for in each call
