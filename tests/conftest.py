"""Shared fixtures: users for every role, and a simulated fabric that the real
pypsrp client talks to over loopback, with connection rows pointing at it."""
from __future__ import annotations

import dataclasses
import secrets

import pytest

TEST_TIME_SCALE = 0.01  # a 4 s VMM job takes 40 ms


@pytest.fixture
def make_user(db, django_user_model):
    from ops import roles

    def make(username: str, *role_names: str, password: str = "pw-for-tests-1"):
        user = django_user_model.objects.create_user(username=username, password=password)
        if role_names:
            roles.grant(user, *role_names)
        return user

    return make


@pytest.fixture
def operator(make_user):
    return make_user("olga", "operator")


@pytest.fixture
def admin_user(make_user):
    return make_user("adam", "admin")


@pytest.fixture
def tenant(make_user):
    return make_user("tina", "tenant")


@pytest.fixture
def other_tenant(make_user):
    return make_user("theo", "tenant")


@pytest.fixture
def client_for(client):
    """``client_for(user)`` logs the test client in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login


@dataclasses.dataclass
class Sim:
    server: object
    engine: object
    vmm: object  # ServerConnection
    scom: object  # ServerConnection

    def control(self, command: dict) -> dict:
        return self.engine.control(command)

    def state(self) -> dict:
        return self.engine.control({"op": "state"})

    def vm(self, name: str) -> dict:
        for vm in self.state()["vms"]:
            if vm["name"] == name:
                return vm
        raise KeyError(name)


def start_sim(scenario: str = "demo", time_scale: float = TEST_TIME_SCALE, **kw):
    from ops.simulator.engine import SimEngine
    from ops.simulator.server import start_simulator

    engine = SimEngine.from_scenario(scenario, time_scale=time_scale, **kw)
    server = start_simulator(engine, port=0, username="slipway", password=secrets.token_urlsafe(10))
    return engine, server


def make_connection(server, name="vmm01", kind="vmm", **kw):
    from ops.models import ServerConnection

    conn = ServerConnection(name=name, kind=kind, host=server.host, port=server.port, use_https=False, auth="basic",
                            cert_validation=False, username=server.username, operation_timeout=kw.pop("operation_timeout", 10),
                            **kw)
    conn.set_password(server.password)
    conn.save()
    return conn


@pytest.fixture
def sim(db):
    """The demo fabric, in-process on a free port, jobs 100x faster than life."""
    from ops.fabric.session import close_all

    engine, server = start_sim()
    try:
        yield Sim(server, engine, make_connection(server, "vmm01", "vmm"), make_connection(server, "scom01", "scom"))
    finally:
        close_all()
        server.stop()


# -- tenancy: a plan, two subscriptions (A: tina, B: theo), a VM of each ----------------------------

@pytest.fixture
def plan_connection(request, db):
    """The VMM connection plans are on: the simulator's when the test uses ``sim``, else a bare row."""
    if "sim" in request.fixturenames:
        return request.getfixturevalue("sim").vmm
    from ops.models import ServerConnection

    return ServerConnection.objects.create(name="vmm-plans", host="vmm.invalid", username="slipway")


@pytest.fixture
def plan(plan_connection):
    """Gold: create, view and restore; 1 checkpoint kept; start and shut down."""
    from ops.models import CheckpointPermission, Plan

    return Plan.objects.create(name="Gold", connection=plan_connection, state=Plan.State.PUBLIC,
                               checkpoint_permission=CheckpointPermission.CREATE_VIEW_RESTORE, checkpoints_kept=1)


def _subscription(plan, name, role_id, *members):
    from ops.models import Subscription

    sub = Subscription.objects.create(plan=plan, name=name, user_role_id=role_id, user_role_name=f"{name} tenant admins")
    sub.members.add(*members)
    return sub


@pytest.fixture
def subscription_a(plan, tenant):
    return _subscription(plan, "Contoso", "aaaaaaaa-0000-4000-8000-00000000000a", tenant)


@pytest.fixture
def subscription_b(plan, other_tenant):
    return _subscription(plan, "Fabrikam", "bbbbbbbb-0000-4000-8000-00000000000b", other_tenant)


@pytest.fixture
def make_vm(plan_connection):
    """``make_vm(name, subscription=None)``: an inventory VM row, in the subscription's user role if given."""
    import uuid

    from ops.models import VirtualMachine

    def make(name, subscription=None, **kw):
        return VirtualMachine.objects.create(connection=plan_connection, vmm_id=uuid.uuid4(), name=name, status="Running",
                                             user_role_id=subscription.user_role_id if subscription else "",
                                             user_role_name=subscription.user_role_name if subscription else "", **kw)

    return make


@pytest.fixture
def vm_a(make_vm, subscription_a):
    return make_vm("contoso-web01", subscription_a)


@pytest.fixture
def vm_b(make_vm, subscription_b):
    return make_vm("fabrikam-db01", subscription_b)
