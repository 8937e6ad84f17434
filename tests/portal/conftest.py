"""The demo's tenancy over the in-process simulator: plans Contoso Gold / Contoso Silver / Fabrikam Dev,
alice and bob in both Contoso subscriptions, carol in Fabrikam (portal/management/commands/demo.py)."""
import io
import types

import pytest

from ops.inventory.sync import sync_connection
from ops.models import VirtualMachine
from portal.management.commands.demo import Command


@pytest.fixture
def demo(sim):
    from django.contrib.auth import get_user_model

    cmd = Command(stdout=io.StringIO())
    cmd._users()
    assert sync_connection(sim.vmm).ok
    cmd._tenancy()
    users = {u.username: u for u in get_user_model().objects.all()}

    def vm(name):
        return VirtualMachine.objects.get(name=name)

    return types.SimpleNamespace(sim=sim, vm=vm, **users)
