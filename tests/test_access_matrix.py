"""Every URL, every method, every role: the status each gets, and a refusal changes nothing.

The URL patterns come from the resolver, so a new page cannot slip past: a pattern
without a row in EXPECT fails ``test_every_url_has_an_expectation`` with a message
saying to add one. A refused request (login redirect, 400, 401, 403, 404, 405, 409, 415) must leave
the database (every ops table, users, groups, API tokens, django-q schedules) and the fabric
(the simulator's state) exactly as they were.
"""
import hashlib
import itertools
import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser, Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_q.models import Schedule
from rest_framework.authtoken.models import Token

from ops.inventory.sync import sync_connection
from ops.models import (Checkpoint, HostCluster, Plan, Run, RunSchedule, RunTarget, Step, Subscription,
                        SubscriptionMember, VirtualMachine, VMHost)
from tests.conftest import make_connection

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "tenant_a", "tenant_b", "admin", "operator")
METHODS = ("get", "post")
LOGIN = "login"  # a redirect to the login page
REFUSED = {LOGIN, 400, 401, 403, 404, 405, 409, 415}

# URL patterns not walked, and why.
EXCLUDED_PREFIXES = {
    "django-admin/": "Django's own admin site: is_staff users only, with its own login; no Slipway role reaches it",
}

# One row per URL name: (arguments to build the URL, then per role in ROLES order the status for GET and POST).
# A cell is one status for both methods, or (GET, POST). "login" is a redirect to the login page.
# Arguments name fixtures of ``World`` below: "run" is a run on tenant A's VM; tenant B gets 404 for it (its
# existence is not revealed), and every refusal changes nothing.
EXPECT = {
    #  url name                 args             anonymous   tenant_a     tenant_b     admin        operator
    "home":                    ((),              LOGIN,      302,         302,         200,         200),
    "healthz":                 ((),              200,        200,         200,         200,         200),
    "login":                   ((),              200,        200,         200,         200,         200),
    "logout":                  ((),              (405, LOGIN), (405, LOGIN), (405, LOGIN), (405, LOGIN), (405, LOGIN)),
    "ops:clusters":            ((),              LOGIN,      403,         403,         200,         200),
    "ops:cluster":             (("cluster",),    LOGIN,      403,         403,         200,         200),
    "ops:host":                (("host",),       LOGIN,      403,         403,         200,         200),
    "ops:vms":                 ((),              LOGIN,      403,         403,         200,         200),
    "ops:vm":                  (("vm_pk",),      LOGIN,      403,         403,         200,         200),
    "ops:sync":                ((),              LOGIN,      403,         403,         (405, 302),  (405, 302)),
    "ops:connections":         ((),              LOGIN,      403,         403,         200,         403),
    "ops:connection_new":      ((),              LOGIN,      403,         403,         200,         403),
    "ops:connection_edit":     (("connection",), LOGIN,      403,         403,         200,         403),
    "ops:connection_delete":   (("connection",), LOGIN,      403,         403,         (405, 302),  403),
    "ops:connection_test":     (("connection",), LOGIN,      403,         403,         (405, 302),  403),
    "ops:audit":               ((),              LOGIN,      403,         403,         200,         200),
    "ops:runs":                ((),              LOGIN,      403,         403,         200,         200),
    "ops:run_start":           ((),              LOGIN,      403,         403,         403,         (200, 400)),
    "ops:run":                 (("run",),        LOGIN,      200,         404,         200,         200),
    "ops:run_events":          (("run",),        LOGIN,      200,         404,         200,         200),
    "ops:run_cancel":          (("run",),        LOGIN,      403,         403,         403,         (405, 302)),
    "ops:run_abort":           (("run",),        LOGIN,      403,         403,         403,         (405, 302)),
    "ops:run_retry":           (("run",),        LOGIN,      403,         403,         403,         (405, 302)),
    "ops:run_step_action":     (("run", "step"), LOGIN,      403,         403,         403,         (405, 400)),
    # a patch run's timeline; "run" is a batch run, which has none (tests/ops/test_patch_cluster.py: a patch run's)
    "ops:patch":               ((),              LOGIN,      403,         403,         403,         (200, 400)),
    "ops:run_timeline":        (("run",),        LOGIN,      404,         404,         404,         404),
    "ops:run_report":          (("run",),        LOGIN,      404,         404,         404,         404),
    "ops:run_report_csv":      (("run",),        LOGIN,      404,         404,         404,         404),
    "ops:schedules":           ((),              LOGIN,      403,         403,         200,         200),
    "ops:schedule_new":        ((),              LOGIN,      403,         403,         403,         (200, 400)),
    "ops:schedule_edit":       (("schedule",),   LOGIN,      403,         403,         403,         (200, 400)),
    "ops:schedule_toggle":     (("schedule",),   LOGIN,      403,         403,         403,         (405, 302)),
    "ops:schedule_delete":     (("schedule",),   LOGIN,      403,         403,         403,         (405, 302)),
    "ops:plans":               ((),              LOGIN,      403,         403,         (200, 405),  (200, 405)),
    "ops:plan_new":            ((),              LOGIN,      403,         403,         200,         403),
    "ops:plan":                (("plan",),       LOGIN,      403,         403,         200,         (200, 403)),
    "ops:plan_decommission":   (("plan",),       LOGIN,      403,         403,         (405, 302),  403),
    "ops:plan_push":           (("plan",),       LOGIN,      403,         403,         (405, 302),  403),
    "ops:subscriptions":       ((),              LOGIN,      403,         403,         (200, 405),  (200, 405)),
    "ops:subscription_new":    ((),              LOGIN,      403,         403,         200,         403),
    "ops:subscription":        (("subscription",), LOGIN,    403,         403,         (200, 405),  (200, 405)),
    "ops:subscription_state":  (("subscription",), LOGIN,    403,         403,         (405, 302),  403),
    "ops:subscription_delete": (("subscription",), LOGIN,    403,         403,         (405, 302),  403),
    "ops:subscription_member_add": (("subscription",), LOGIN, 403,        403,         (405, 302),  403),
    "ops:subscription_member_remove": (("subscription", "member"), LOGIN, 403, 403,    (405, 302),  403),
    # what tenants click (portal/views/): A's VM is a 404 for B; admins see VMs but do not act on them
    "my_vms":                  ((),              LOGIN,      (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "vm_status":               ((),              LOGIN,      (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "activity":                ((),              LOGIN,      (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "vm":                      (("vm",),         LOGIN,      (200, 405),  (404, 405),  (200, 405),  (200, 405)),
    "vm_checkpoints":          (("vm",),         LOGIN,      (200, 405),  (404, 405),  (200, 405),  (200, 405)),
    "vm_checkpoint":           (("vm",),         LOGIN,      (200, 400),  404,         403,         (200, 400)),
    "vm_restore":              (("vm",),         LOGIN,      (200, 400),  404,         403,         (200, 400)),
    "vm_power":                (("vm",),         LOGIN,      400,         404,         403,         400),
    "vm_checkpoint_delete":    (("vm", "checkpoint"), LOGIN, (200, 302),  404,         403,         (200, 302)),
    "profile":                 ((),              LOGIN,      (200, 400),  (200, 400),  (200, 400),  (200, 400)),
    # the REST API (ops/api/): 401, not a login page; a role that may not act is refused before the run is
    # looked up (the same 403 whether it exists or not); this walk POSTs a form, which the JSON-only API
    # refuses with 415 once the role may
    "api:schema":              ((),              (200, 405), (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "api:docs":                ((),              (200, 405), (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "api:runbooks":            ((),              401,        403,         403,         403,         (200, 405)),
    "api:run-list":            ((),              401,        (200, 403),  (200, 403),  (200, 403),  (200, 415)),
    "api:run-detail":          (("run",),        401,        (200, 405),  (404, 405),  (200, 405),  (200, 405)),
    "api:run-events":          (("run",),        401,        (200, 405),  (404, 405),  (200, 405),  (200, 405)),
    "api:run-report":          (("run",),        401,        (404, 405),  (404, 405),  (404, 405),  (404, 405)),
    "api:vm-list":             ((),              401,        (200, 405),  (200, 405),  (200, 405),  (200, 405)),
    "api:vm-detail":           (("vm",),         401,        (200, 405),  (404, 405),  (200, 405),  (200, 405)),
    "api:vm-checkpoint":       (("vm",),         401,        (405, 415),  (405, 404),  (405, 403),  (405, 415)),
    "api:vm-restore":          (("vm",),         401,        (405, 415),  (405, 404),  (405, 403),  (405, 415)),
    "api:vm-power":            (("vm",),         401,        (405, 415),  (405, 404),  (405, 403),  (405, 415)),
    "api:run-cancel":          (("run",),        401,        (405, 403),  (405, 403),  (405, 403),         (405, 415)),
    "api:run-abort":           (("run",),        401,        (405, 403),  (405, 403),  (405, 403),         (405, 415)),
    "api:run-retry":           (("run",),        401,        (405, 403),  (405, 403),  (405, 403),         (405, 415)),
    "api:run-skip":            (("run",),        401,        (405, 403),  (405, 403),  (405, 403),         (405, 415)),
    "api:plan-list":           ((),              401,        (200, 403),  (200, 403),  (200, 415),  (200, 403)),
    "api:plan-detail":         (("plan",),       401,        (404, 405),  (404, 405),  (200, 405),  (200, 405)),
    "api:subscription-list":   ((),              401,        (200, 403),  (200, 403),  (200, 415),  (200, 403)),
    "api:subscription-detail": (("subscription",), 401,      (404, 405),  (404, 405),  (200, 405),  (200, 405)),
}


def walk(patterns, prefix="", namespace=""):
    """(url name, route) of every pattern the resolver knows, includes flattened."""
    for p in patterns:
        route = prefix + str(p.pattern)
        if any(route.startswith(x) for x in EXCLUDED_PREFIXES):
            continue
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            yield (f"{namespace}{p.name}" if p.name else route), route


def test_every_url_has_an_expectation():
    names = dict(walk(get_resolver().url_patterns))
    missing = sorted(set(names) - set(EXPECT))
    assert not missing, ("URL patterns without a row in EXPECT (tests/test_access_matrix.py): "
                         + ", ".join(f"{n} ({names[n]})" for n in missing)
                         + ". Add one saying what each role gets, so nobody ships a page without deciding who sees it.")
    stale = sorted(set(EXPECT) - set(names))
    assert not stale, f"EXPECT has rows for URLs that no longer exist: {', '.join(stale)}; remove them."


class World:
    """The objects URLs point at; fresh ones for every request, so an allowed change never leaks into the next."""

    def __init__(self, sim, operator, vm_a):
        self.sim, self.operator, self.vm_a, self.n = sim, operator, vm_a, itertools.count()

    def cluster(self):
        return HostCluster.objects.first().pk

    def host(self):
        return VMHost.objects.first().pk

    def connection(self):
        return make_connection(self.sim.server, name=f"doomed-{next(self.n)}", kind="scom").pk

    def run(self):
        run = Run.objects.create(kind="batch-checkpoint", title="Batch 3", created_by=self.operator, connection=self.sim.vmm,
                                 state=Run.State.WAITING, phase="stop")
        RunTarget.objects.create(run=run, vm=self.vm_a)
        self._step = Step.objects.create(run=run, index=0, phase="stop", action="stop-vm", target=self.vm_a.name,
                                         state=Step.State.FAILED, error="boom")
        return run.pk

    def step(self):
        return self._step.pk

    def vm(self):
        return self.vm_a.vmm_id

    def vm_pk(self):
        return self.vm_a.pk

    def checkpoint(self):
        return Checkpoint.objects.create(vm=self.vm_a, vmm_id=uuid.uuid4(), name=f"cp {next(self.n)}").vmm_id

    def plan(self):
        """A fresh plan on the simulator's VMM server, offering no cloud yet."""
        return Plan.objects.create(name=f"Bronze {next(self.n)}", connection=self.sim.vmm, state=Plan.State.PUBLIC).pk

    def subscription(self):
        """A fresh subscription without VMs (so that deleting it is allowed) and without a member."""
        return Subscription.objects.create(plan_id=self.plan(), name=f"Tailspin {next(self.n)}",
                                           user_role_id=str(uuid.uuid4()), user_role_name="Tailspin").pk

    def member(self):
        """A tenant user who is a member of the last subscription made."""
        sub = Subscription.objects.order_by("-pk").first()
        user = User.objects.create_user(f"member{next(self.n)}")
        SubscriptionMember.objects.create(subscription=sub, user=user, vmm_user=f"TAILSPIN\\{user.username}")
        return user.pk

    def schedule(self):
        return RunSchedule.objects.create(name=f"nightly {next(self.n)}", kind="batch-checkpoint", params={"batch": "3"},
                                          cron="0 2 * * *", created_by=self.operator).pk


def db_state() -> dict:
    models = [*apps.get_app_config("ops").get_models(), User, Group, Token, Schedule]
    return {m._meta.label: hashlib.sha256(repr(list(m.objects.order_by("pk").values_list())).encode()).hexdigest()
            for m in models}


def outcome(response) -> object:
    if response.status_code == 302 and response["Location"].startswith(reverse("login")):
        return LOGIN
    return response.status_code


@pytest.fixture
def users(tenant, other_tenant, admin_user, operator, subscription_a, subscription_b):
    return {"anonymous": AnonymousUser(), "tenant_a": tenant, "tenant_b": other_tenant, "admin": admin_user,
            "operator": operator}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_says_and_refusals_change_nothing(sim, users, operator, subscription_a,
                                                                         subscription_b, role):
    assert sync_connection(sim.vmm).ok
    vm_a, vm_b = VirtualMachine.objects.order_by("name")[:2]  # until the simulator reports user roles
    for vm, sub in ((vm_a, subscription_a), (vm_b, subscription_b)):
        VirtualMachine.objects.filter(pk=vm.pk).update(user_role_id=sub.user_role_id)
    world = World(sim, operator, vm_a)
    client = Client()
    wrong = []
    for name, (arg_names, *cells) in EXPECT.items():
        cell = cells[ROLES.index(role)]
        for i, method in enumerate(METHODS):
            expected = cell[i] if isinstance(cell, tuple) else cell
            url = reverse(name, args=[getattr(world, a)() for a in arg_names])
            if role != "anonymous":
                client.force_login(users[role])  # again: POST /logout/ ended the session
            before, fabric_before = db_state(), sim.state()
            got = outcome(getattr(client, method)(url))
            if got != expected:
                wrong.append(f"{method.upper()} {url} ({name}) as {role}: got {got}, expected {expected}")
            elif got in REFUSED and not (name == "logout" and method == "post" and role != "anonymous"):
                # (a signed-in POST /logout/ is not refused: it signs out, audited, and lands on the login page)
                changed = [t for t, h in db_state().items() if before[t] != h]
                if changed:
                    wrong.append(f"{method.upper()} {url} as {role} was refused ({got}) but changed {', '.join(changed)}")
                if sim.state() != fabric_before:
                    wrong.append(f"{method.upper()} {url} as {role} was refused ({got}) but changed the fabric")
    assert not wrong, "\n".join(wrong)
