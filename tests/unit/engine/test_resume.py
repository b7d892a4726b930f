"""Resume decisions (engine/resume.py) on recorded OpenZFS 2.1 outputs, through
tests/unit/scripted.py's double of a node's session. The real streams are
tests/integration/test_resume.py's."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from esbackup.domain.models import Definition
from esbackup.engine import resume
from tests.unit.scripted import DAILY, SNAP, SNAP_GUID, SOURCE, TOKEN, info_node, snap


def test_judge_resumes_our_snapshot_with_its_guid():
    found = resume.judge(info_node("resume-info-full.txt"), TOKEN, SOURCE, DAILY,
                         [snap(SNAP, SNAP_GUID)])
    assert isinstance(found, resume.Resumable)
    assert (found.snapshot, found.info.bytes, found.created) == (
        SNAP, 0x4c2dd8, datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("source, definition, snaps, why", [
    (SOURCE, DAILY, [], "is gone from the source"),
    (SOURCE, DAILY, [snap(SNAP, 12345)], "is gone from the source"),  # same name, new guid
    ("esblab_r1_530167/vm1-disk2", DAILY, [snap(SNAP, SNAP_GUID)], "not a snapshot of"),
    (SOURCE, Definition(**{**vars(DAILY), "name": "weekly"}), [snap(SNAP, SNAP_GUID)],
     "not a snapshot of this definition"),
])
def test_judge_refuses_streams_that_are_not_ours(source, definition, snaps, why):
    found = resume.judge(info_node("resume-info-full.txt"), TOKEN, source, definition, snaps)
    assert isinstance(found, str) and why in found


def test_judge_refuses_a_token_whose_snapshot_the_node_no_longer_has():
    found = resume.judge(info_node("resume-info-gone.txt", status=255), TOKEN, SOURCE, DAILY,
                         [])
    assert "used in the initial send no longer exists" in found
