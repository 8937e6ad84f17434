"""Fixtures shared by the ops tests: a synced demo fabric and a tenant user named as the demo names them."""
import pytest

from ops.inventory.sync import sync_connection


@pytest.fixture
def synced(sim):
    """The simulator's demo fabric with Slipway's inventory read from it."""
    assert sync_connection(sim.vmm).ok
    return sim


@pytest.fixture
def alice(make_user):
    return make_user("alice", "tenant")
