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
