"""The admin pages for hosting plans and subscriptions (ops/views/plans.py, ops/views/subscriptions.py),
as an admin uses them over the simulated fabric: what each page says and what lands in Slipway and VMM."""
import pytest
from django.urls import reverse

from ops.inventory.sync import sync_connection
from ops.models import AuditEntry, Cloud, Plan, Run, Subscription

from ._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # runs are queued on commit, as in production


def _plan_post(synced, **over):
    data = {"name": "Bronze", "description": "Small VMs", "connection": synced.vmm.pk, "state": "public",
            "clouds": [Cloud.objects.get(connection=synced.vmm, name="Dev").pk],
            "checkpoint_permission": "view_restore", "checkpoints_kept": "3", "checkpoint_max_age_days": "14",
            "power_actions": ["start", "shutdown"]}
    data.update(over)
    return data


def _text(response) -> str:
    return response.content.decode()


def test_admin_creates_a_plan_gives_it_a_tenant_and_changes_it(client_for, admin_user, synced, alice, driver):
    c = client_for(admin_user)
    r = c.post(reverse("ops:plan_new"), _plan_post(synced), follow=True)
    plan = Plan.objects.get(name="Bronze")
    assert r.redirect_chain[-1][0] == reverse("ops:plan", args=[plan.pk])
    assert "Plan Bronze created" in _text(r) and "View and restore" in _text(r) and "removed after 14 days" in _text(r)
    assert [x.name for x in plan.clouds.all()] == ["Dev"] and plan.power_actions == ["start", "shutdown"]

    # a subscription with a new VMM user role: the role exists in VMM with the plan's cloud and the member
    r = c.post(reverse("ops:subscription_new"), {"name": "Tailspin", "plan": plan.pk, "role_mode": "new",
                                                 "user_role": "", "members": "alice TAILSPIN\\alice"}, follow=True)
    sub = Subscription.objects.get(name="Tailspin")
    role = next(x for x in synced.state()["user_roles"] if x["name"] == "Tailspin")
    assert role["members"] == ["TAILSPIN\\alice"] and role["clouds"] == ["Dev"]
    assert sub.user_role_id == role["id"].lower()
    push = Run.objects.get(kind="plan-update")
    assert f"run #{push.pk}" in _text(r) and "TAILSPIN\\alice" in _text(r)

    # the list pages show both, with the VM count and the member count
    assert "Tailspin" in _text(c.get(reverse("ops:subscriptions")))
    assert "Bronze" in _text(c.get(reverse("ops:plans")))

    # a change of the permission is a push to VMM: refused while the subscription's own push still runs ...
    change = _plan_post(synced, checkpoint_permission="create_view_restore")
    r = c.post(reverse("ops:plan", args=[plan.pk]), change)
    assert f"plan Bronze is still being pushed to VMM by run {push.pk}: wait for it" in _text(r)
    assert Plan.objects.get(pk=plan.pk).checkpoint_permission == "view_restore"
    # ... and once it has ended, it starts the next one, which VMM is read to carry
    driver.drive()
    assert Run.objects.get(pk=push.pk).state == "succeeded"
    r = c.post(reverse("ops:plan", args=[plan.pk]), change, follow=True)
    second = Run.objects.filter(kind="plan-update").latest("pk")
    assert second != push and "Plan Bronze saved. Pushing to VMM" in _text(r) and f">run #{second.pk}</a>" in _text(r)
    driver.drive()
    assert Run.objects.get(pk=second.pk).state == "succeeded"
    role = next(x for x in synced.state()["user_roles"] if x["name"] == "Tailspin")
    assert "Checkpoint" in role["permissions"]["Dev"]
    assert "Create, view and restore" in _text(c.get(reverse("ops:subscription", args=[sub.pk])))
    assert AuditEntry.objects.filter(action="plan.create").count() == 1


def test_bad_input_names_the_field_and_changes_nothing(client_for, admin_user, synced):
    c = client_for(admin_user)
    before = (Plan.objects.count(), AuditEntry.objects.count(), synced.state()["user_roles"])
    cases = [
        ({"name": "Gold\u202eplaN"}, "contains characters that hide or reorder text (U+202E"),
        ({"name": "x" * 10_000}, "at most 100 characters"),
        ({"clouds": []}, "Clouds: choose or fill this in"),
        ({"checkpoints_kept": "0"}, "greater than or equal to 1"),
        ({"checkpoints_kept": "$(Remove-SCVMHost)"}, "Enter a whole number"),
        ({"power_actions": ["reboot"]}, "Select a valid choice"),
        ({"checkpoint_permission": "everything"}, "Select a valid choice"),
    ]
    for over, message in cases:
        r = c.post(reverse("ops:plan_new"), _plan_post(synced, **over))
        assert r.status_code == 200 and message in _text(r), (over, _text(r)[:300])
    r = c.post(reverse("ops:subscription_new"), {"name": "Tailspin", "plan": "", "role_mode": "adopt",
                                                 "members": "alice; rm -rf /"})
    assert r.status_code == 200
    assert "name the VMM user role to adopt" in _text(r) and "line 1:" in _text(r)
    assert (Plan.objects.count(), AuditEntry.objects.count(), synced.state()["user_roles"]) == before


def test_a_subscription_with_vms_is_not_deleted_and_the_page_says_how_many(client_for, admin_user, synced, alice):
    c = client_for(admin_user)
    c.post(reverse("ops:plan_new"), _plan_post(synced, name="Gold", checkpoint_permission="create_view_restore",
                                               clouds=[Cloud.objects.get(connection=synced.vmm, name="Gold").pk]))
    plan = Plan.objects.get(name="Gold")
    r = c.post(reverse("ops:subscription_new"), {"name": "Contoso", "plan": plan.pk, "role_mode": "adopt",
                                                 "user_role": "Contoso Gold", "members": "alice CONTOSO\\alice"},
               follow=True)
    sub = Subscription.objects.get(name="Contoso")
    assert "Contoso Gold" in _text(r)
    assert sync_connection(synced.vmm).ok  # the role's VMs
    from ops.services.subscriptions import vm_count

    n = vm_count(sub)
    assert n > 0
    r = c.post(reverse("ops:subscription_delete", args=[sub.pk]), follow=True)
    assert f"still has {n} VMs" in _text(r) and Subscription.objects.filter(pk=sub.pk).exists()
    r = c.post(reverse("ops:subscription_state", args=[sub.pk]), {"state": "paused"}, follow=True)
    assert "state: expected one of active, suspended" in _text(r)
    assert Subscription.objects.get(pk=sub.pk).state == "active"
    r = c.post(reverse("ops:subscription_state", args=[sub.pk]), {"state": "suspended"}, follow=True)
    assert "suspended: its members see their VMs but cannot act" in _text(r)
    assert Subscription.objects.get(pk=sub.pk).state == "suspended"


def test_an_operator_reads_plans_but_has_no_form(client_for, admin_user, operator, synced):
    client_for(admin_user).post(reverse("ops:plan_new"), _plan_post(synced))
    plan = Plan.objects.get(name="Bronze")
    c = client_for(operator)
    page = _text(c.get(reverse("ops:plan", args=[plan.pk])))
    assert "Plan Bronze" in page and "Save plan" not in page and "Decommission" not in page
    assert c.post(reverse("ops:plan", args=[plan.pk]), _plan_post(synced, name="Hijacked")).status_code == 403
    assert Plan.objects.get(pk=plan.pk).name == "Bronze"
