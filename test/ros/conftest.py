"""Fixtures of the ROS tests: ``node_harness`` (``node_harness.NodeHarness``, closed after the test)."""
import pytest

from node_harness import NodeHarness


@pytest.fixture
def node_harness(ros_domain):
    """Make started ``NodeHarness`` objects, each on the ROS domain it is given (call it with
    ``domain_id, NodeCls=None, params=None, ...``); all are closed when the test ends."""
    made = []

    def make(domain_id: int, node_cls=None, params: dict | None = None, **kwargs) -> NodeHarness:
        h = NodeHarness(ros_domain(domain_id), node_cls, params, **kwargs)
        made.append(h)
        return h

    yield make
    for h in reversed(made):
        h.close()
