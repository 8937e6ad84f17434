"""Fixtures for the wire tests: a small simulated fabric served over loopback, driven
through the real pypsrp client (ops.fabric) exactly as a VMM server would be."""
import pytest

from tests.simulator.sim_helpers import small_fabric
from tests.simulator.wire_helpers import WIRE_TIME_SCALE, serve


@pytest.fixture
def wire():
    """``small_fabric()`` (cluster C1 = n1, n2, n3; standalone s1) behind a real WinRM server on 127.0.0.1."""
    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine

    w = serve(SimEngine(scenario.from_data(small_fabric(), WIRE_TIME_SCALE)))
    try:
        yield w
    finally:
        w.session.close()
        w.server.stop()


@pytest.fixture
def raw_pool(wire):
    """A raw pypsrp RunspacePool on the same server, for cmdlets ops.fabric has no function for."""
    from pypsrp.powershell import RunspacePool

    with RunspacePool(wire.wsman()) as rp:
        yield rp
