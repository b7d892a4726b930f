"""Freeze through the whole engine: `run` on a definition with freeze on, the
step running on the compute node over SSH, against a real qemu-ga in a
throwaway guest and against the guest-agent double for the faults."""
import pytest

from lab.qga_double import QgaDouble
from lab.qga_guest import QgaGuest


@pytest.fixture
def frozen_def(site):
    site.esb.ok("node", "update", "c1", "--hypervisor", "qemu")
    return site.define("frozen", "--type", "dataset", "--retention", "2", "--freeze")


def test_freeze_with_real_guest_agent(site, frozen_def):
    with QgaGuest(disk=site.source_dir / "guest.raw") as guest:
        site.esb.ok("vm", "update", "web01", "--qga-socket", guest.socket_path)
        result = site.esb.ok("run", frozen_def)
        assert "warning" not in result.stderr
        (b,) = site.backups()
        assert b["fsfreeze"] is True and b["note"] == ""
        assert guest.call("guest-fsfreeze-status") == "thawed"
        assert guest.run_in_guest("echo ok > /data/after-thaw").exitcode == 0
    assert "ok ⚑" in site.esb.ok("backup", "list").stdout


def test_freeze_order_with_double(site, frozen_def, tmp_path):
    with QgaDouble(str(tmp_path / "qga.sock")) as agent:
        site.esb.ok("vm", "update", "web01", "--qga-socket", agent.socket_path)
        site.esb.ok("run", frozen_def)
        assert agent.state == "thawed"
    frozen = [c for c in agent.commands if c.startswith("guest-fsfreeze")]
    assert frozen == ["guest-fsfreeze-freeze", "guest-fsfreeze-thaw"]
    assert site.backups()[0]["fsfreeze"] is True


@pytest.mark.parametrize("fault", ["freeze-error", "hang"])
def test_failed_freeze_still_backs_up(site, frozen_def, tmp_path, fault):
    with QgaDouble(str(tmp_path / "qga.sock"), faults=(fault,)) as agent:
        site.esb.ok("vm", "update", "web01", "--qga-socket", agent.socket_path)
        result = site.esb.ok("run", frozen_def)
    assert "warning" in result.stderr and "without freeze" in result.stderr
    (b,) = site.backups()
    assert b["status"] == "ok" and b["fsfreeze"] is False
    assert b["note"].startswith("not frozen")
    assert "⚑" not in site.esb.ok("backup", "list").stdout
    assert site.snapshot_digest(b["location"]) == site.source_digest()
