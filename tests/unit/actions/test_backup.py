"""Backup action helpers (actions/backup.py)."""
from __future__ import annotations

import pytest

from esbackup.drivers.transport import Result


@pytest.mark.parametrize("status, stderr, lost", [
    (1, "cannot create 'tank/backups/ds': dataset already exists\n", True),
    (1, "cannot create 'tank/backups': dataset already exists\n", True),  # zfs-fuse, -p
    (1, "cannot create 'tank/backups/ds': out of space\n", False),
    (0, "", False),
])
def test_a_lost_race_to_make_the_storage_datasets_is_asked_again(status, stderr, lost):
    from esbackup.actions.backup import lost_race
    from esbackup.drivers import batch, zfs

    step = batch.Step("create", zfs.create("tank/backups/ds", parents=True), stop=True)
    results = batch.Results("b1", [step], {"create": Result(status, "", stderr)})
    assert lost_race(results) is lost
    assert lost_race(batch.Results("b1", [step], {})) is False  # no answer: not a race
