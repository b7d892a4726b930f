"""Expected durations from a real node's disk size, without run history."""
from esbackup.catalog.core import Catalog
from esbackup.drivers.session import connect
from esbackup.services import planning as workload
from tests.integration.site import zfs


def test_duration_without_history_is_estimated_from_the_disk_used_size(site):
    site.define("daily", "--type", "dataset", "--retention", "1", "--bwlimit", "1K")
    used = int(zfs("get", "-H", "-p", "-o", "value", "used", site.source).strip())
    cat = Catalog.open(site.esb.catalog)
    (load,) = workload.active(cat, sessions=connect)
    assert load.minutes == workload.estimate(used, 1024) > 1  # at its 1 KiB/s limit
    assert load.nodes == {"c1", "b1"}
    result = site.esb.ok("schedule", "load", "-f", "json")
    assert "unknown" not in result.stderr
    site.esb.ok("definition", "update", "web01/daily", "--bwlimit", "0")
    site.esb.ok("run", "web01/daily")  # history now: the median of ok runs counts
    (load,) = workload.active(cat, sessions=connect)
    assert load.minutes == 1
