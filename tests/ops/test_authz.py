"""ops/authz.py: who may do what, decided from roles and subscription data alone."""
import ast
import pathlib

import pytest
from django.core.exceptions import PermissionDenied

from ops import authz, roles
from ops.models import Checkpoint, CheckpointPermission, Plan, Run, RunTarget, Subscription, VirtualMachine

pytestmark = pytest.mark.django_db


def vms(user, action="vm.view"):
    return set(authz.restrict(VirtualMachine.objects.all(), user, action).values_list("name", flat=True))


def test_a_tenant_sees_the_vms_of_their_subscriptions_in_one_query(django_assert_num_queries, tenant, other_tenant,
                                                                     operator, admin_user, make_user, make_vm,
                                                                     vm_a, vm_b, subscription_a):
    make_vm("unowned-01")
    second = make_vm("contoso-app02", subscription_a)
    roles.role_names(tenant)  # roles are read once per request; the scope itself is one query
    with django_assert_num_queries(1):
        assert vms(tenant) == {vm_a.name, second.name}
    assert vms(other_tenant) == {vm_b.name}
    assert vms(operator) == vms(admin_user) == {vm_a.name, vm_b.name, second.name, "unowned-01"}
    assert vms(make_user("nora", "tenant")) == set()  # a tenant with no subscription
    assert vms(make_user("nobody")) == set()  # no role at all
    from django.contrib.auth.models import AnonymousUser
    assert vms(AnonymousUser()) == set()
    assert authz.allowed(tenant, "vm.view", vm_a) and not authz.allowed(tenant, "vm.view", vm_b)


def test_the_same_user_role_on_another_vmm_server_is_not_the_subscriptions(tenant, vm_a, subscription_a):
    from ops.models import ServerConnection
    other = ServerConnection.objects.create(name="vmm02", host="vmm02.invalid", username="slipway")
    VirtualMachine.objects.create(connection=other, vmm_id="12345678-1234-4234-8234-123456789abc", name="elsewhere",
                                  user_role_id=subscription_a.user_role_id)
    assert vms(tenant) == {vm_a.name}


@pytest.mark.parametrize("plan_perm,enforced,checkpoint,restore", [
    ("create_view_restore", "", True, True),
    ("view_restore", "", False, True),
    ("none", "", False, False),
    ("create_view_restore", "view_restore", False, True),  # the push of a wider permission has not succeeded yet
    ("view_restore", "create_view_restore", False, True),  # a narrowing is enforced at once, before VMM knows it
    ("create_view_restore", "none", False, False),
])
def test_checkpoint_and_restore_follow_the_stricter_of_plan_and_enforced(tenant, vm_a, plan, subscription_a,
                                                                         plan_perm, enforced, checkpoint, restore):
    Plan.objects.filter(pk=plan.pk).update(checkpoint_permission=plan_perm)
    Subscription.objects.filter(pk=subscription_a.pk).update(enforced_permission=enforced)
    assert authz.allowed(tenant, "vm.checkpoint", vm_a) is checkpoint
    assert authz.allowed(tenant, "vm.restore", vm_a) is restore
    assert (vm_a.name in vms(tenant, "vm.checkpoint")) is checkpoint
    assert authz.allowed(tenant, "vm.view", vm_a)  # always sees their VM
    sub = Subscription.objects.select_related("plan").get(pk=subscription_a.pk)
    assert (sub.checkpoint_permission == CheckpointPermission.CREATE_VIEW_RESTORE) is checkpoint


def test_a_suspended_subscription_views_but_does_not_act(tenant, vm_a, subscription_a):
    Subscription.objects.filter(pk=subscription_a.pk).update(state=Subscription.State.SUSPENDED)
    assert authz.allowed(tenant, "vm.view", vm_a)
    for action in ("vm.checkpoint", "vm.restore", "vm.power"):
        assert not authz.allowed(tenant, action, vm_a), action
    assert authz.power_actions(tenant, vm_a) == []


def test_power_actions_are_the_plans(tenant, other_tenant, operator, vm_a, vm_b, plan):
    assert authz.power_actions(tenant, vm_a) == ["start", "shutdown"]
    assert authz.power_actions(tenant, vm_b) == []  # not theirs
    assert authz.power_actions(operator, vm_b) == ["start", "shutdown", "stop", "save"]
    Plan.objects.filter(pk=plan.pk).update(allow_start=False, allow_shutdown=False)
    assert not authz.allowed(tenant, "vm.power", vm_a) and authz.power_actions(tenant, vm_a) == []


def test_checkpoints_plans_and_subscriptions_follow_the_vm_scope(tenant, other_tenant, vm_a, vm_b, subscription_a,
                                                                 subscription_b, admin_user):
    mine = Checkpoint.objects.create(vm=vm_a, vmm_id="11111111-1111-4111-8111-111111111111", name="baseline")
    Checkpoint.objects.create(vm=vm_b, vmm_id="22222222-2222-4222-8222-222222222222", name="theirs")
    assert list(authz.restrict(Checkpoint.objects.all(), tenant, "vm.view")) == [mine]
    assert list(authz.restrict(Subscription.objects.all(), tenant, "subscription.view")) == [subscription_a]
    assert list(authz.restrict(Plan.objects.all(), tenant, "plan.view")) == [subscription_a.plan]
    assert authz.restrict(Plan.objects.all(), tenant, "plan.change").count() == 0
    assert authz.restrict(Subscription.objects.all(), admin_user, "subscription.change").count() == 2


def test_a_tenant_watches_runs_on_their_vms_whoever_started_them(tenant, other_tenant, operator, vm_a, vm_b):
    on_a = Run.objects.create(kind="batch-checkpoint", created_by=operator)
    RunTarget.objects.create(run=on_a, vm=vm_a)
    on_both = Run.objects.create(kind="batch-checkpoint", created_by=operator)
    RunTarget.objects.bulk_create([RunTarget(run=on_both, vm=vm_a), RunTarget(run=on_both, vm=vm_b)])
    own_run_on_b = Run.objects.create(kind="vm-checkpoint", created_by=tenant)
    RunTarget.objects.create(run=own_run_on_b, vm=vm_b)
    assert set(authz.restrict(Run.objects.all(), tenant, "run.view")) == {on_a, on_both}
    assert set(authz.restrict(Run.objects.all(), other_tenant, "run.view")) == {on_both, own_run_on_b}
    assert not authz.allowed(tenant, "run.operate", on_a) and not authz.allowed(tenant, "run.list")


def test_start_run_records_the_vms_it_acts_on(sim, operator):
    from ops.inventory.sync import sync_connection
    from ops.services.runs import start_run
    assert sync_connection(sim.vmm).ok
    batch = next(v for v in VirtualMachine.objects.all() if v.custom.get("Custom1"))
    run = start_run(operator, "batch-checkpoint", {"batch": batch.custom["Custom1"]})
    expected = set(VirtualMachine.objects.filter(custom__Custom1=batch.custom["Custom1"]).values_list("pk", flat=True))
    assert expected and set(run.targets.values_list("vm_id", flat=True)) == expected


def test_refusals_say_who_may(tenant, operator, admin_user):
    with pytest.raises(PermissionDenied, match=r"^Only operators start runbooks\.$"):
        authz.require(tenant, "run.start")
    with pytest.raises(PermissionDenied, match=r"^Only admins manage server connections\.$"):
        authz.require(operator, "connection.change")
    authz.require(admin_user, "connection.change")
    with pytest.raises(ValueError, match="unknown action 'vm.delete'"):
        authz.allowed(operator, "vm.delete")
    with pytest.raises(ValueError, match="does not apply to Run rows"):
        authz.restrict(Run.objects.all(), operator, "vm.view")


def test_templates_ask_authz_through_can(operator, tenant):
    assert authz.Can(operator)["run"]["operate"] is True and authz.Can(tenant).run.operate is False
    with pytest.raises(KeyError):
        authz.Can(operator)["run"]["explode"]


def test_ops_never_imports_portal():
    root = pathlib.Path(__file__).resolve().parents[2] / "ops"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(root.parent)}: {n}" for n in names if n == "portal" or n.startswith("portal.")]
    assert not offenders, "ops must not import portal:\n" + "\n".join(offenders)


def test_a_subscription_adopting_a_vmm_user_role_sees_that_roles_vms_after_a_sync(sim, plan, tenant):
    from ops.inventory.sync import sync_connection
    role = next(r for r in sim.state()["user_roles"] if r["name"] == "Contoso Silver")
    expected = {vm["name"] for vm in sim.state()["vms"] if vm.get("user_role") == "Contoso Silver"}
    sub = Subscription.objects.create(plan=plan, name="Contoso Silver", user_role_id=role["id"].upper())
    sub.members.add(tenant)
    assert sync_connection(sim.vmm).ok
    assert expected and vms(tenant) == expected
    assert VirtualMachine.objects.get(name=next(iter(expected))).user_role_name == "Contoso Silver"


def test_the_allowed_template_tag_asks_authz_per_object(rf, tenant, other_tenant, vm_a):
    from django.template import Context, Template
    template = Template('{% load slipway %}{% allowed "vm.checkpoint" vm as ok %}{% if ok %}yes{% else %}no{% endif %}')
    for user, shown in ((tenant, "yes"), (other_tenant, "no")):
        request = rf.get("/")
        request.user = user
        assert template.render(Context({"request": request, "vm": vm_a})) == shown
