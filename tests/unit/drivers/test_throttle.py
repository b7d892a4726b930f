"""The bandwidth limit's pipeline stage (drivers/throttle.py)."""
import pytest

from esbackup.domain.models import Node
from esbackup.drivers import throttle
from esbackup.errors import OperationFailed


def tools_node(**tools) -> Node:
    return Node("b1", "h", backup=True, capabilities={"tools": tools})


def test_limiter_prefers_mbuffer():
    assert throttle.limiter(1000, tools_node(mbuffer=True, pv=True)) == [
        ["mbuffer", "-q", "-m", "16M", "-r", "1000"]]
    assert throttle.limiter(1000, tools_node(mbuffer=False, pv=True)) == [
        ["pv", "-q", "-L", "1000"]]


def test_limiter_without_tools_fails_naming_both():
    with pytest.raises(OperationFailed) as caught:
        throttle.limiter(1000, tools_node(mbuffer=False, pv=False))
    assert "mbuffer" in str(caught.value) and "pv" in str(caught.value)
    with pytest.raises(OperationFailed):
        throttle.limiter(1000, Node("b1", "h"))


def test_limiter_rate_zero_is_no_stage():
    assert throttle.limiter(0, tools_node()) == []
    assert throttle.limiter(0, tools_node(mbuffer=True)) == []
