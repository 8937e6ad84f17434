"""Plans and subscriptions through their one write path (ops/services/subscriptions.py), over the simulator."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ops.models import AuditEntry, Plan, Subscription, SubscriptionMember
from ops.services import plans, subscriptions


def _gold(admin_user, synced):
    return plans.create_plan(admin_user, name="Contoso Gold", connection=synced.vmm, clouds=["Gold"],
                                     checkpoint_permission="create_view_restore", checkpoints_kept=1,
                                     power_actions=("start", "stop"))


def test_plan_and_subscription_adopt_the_demo_role(admin_user, synced, alice):
    plan = _gold(admin_user, synced)
    assert [c.name for c in plan.clouds.all()] == ["Gold"] and plan.power_actions == ["start", "stop"]
    sub, _ = subscriptions.create_subscription(admin_user, plan, "Contoso Gold", [(alice, "CONTOSO\\alice")],
                                            adopt_user_role="Contoso Gold")
    role_id = next(r["id"] for r in synced.state()["user_roles"] if r["name"] == "Contoso Gold")
    assert sub.user_role_id == role_id.lower() and sub.user_role_name == "Contoso Gold"
    member = SubscriptionMember.objects.get(subscription=sub, user=alice)
    assert member.on_behalf_of() == ("CONTOSO\\alice", role_id.lower())
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == ["plan.create", "subscription.create"]
    # adopting by ID works too (a second subscription on the same role is refused: one role, one subscription)
    with pytest.raises(ValidationError, match="VMM user role Contoso Gold already belongs to subscription Contoso Gold"):
        subscriptions.create_subscription(admin_user, plan, "Other", [], adopt_user_role=role_id)


def test_refusals_name_the_cause_and_change_nothing(admin_user, synced, alice, operator):
    with pytest.raises(PermissionDenied):
        _gold(operator, synced)
    with pytest.raises(ValidationError, match="no cloud named 'Platinum'"):
        plans.create_plan(admin_user, name="P", connection=synced.vmm, clouds=["Platinum"],
                                  checkpoint_permission="none")
    plan = _gold(admin_user, synced)
    with pytest.raises(ValidationError, match="no user role named 'Nobody'"):
        subscriptions.create_subscription(admin_user, plan, "C", [(alice, "CONTOSO\\alice")], adopt_user_role="Nobody")
    with pytest.raises(ValidationError, match="mallory is not a member of VMM user role Contoso Gold"):
        subscriptions.create_subscription(admin_user, plan, "C", [(alice, "CONTOSO\\mallory")],
                                          adopt_user_role="Contoso Gold")
    with pytest.raises(PermissionDenied):
        subscriptions.create_subscription(operator, plan, "C", [], adopt_user_role="Contoso Gold")
    assert not Subscription.objects.exists() and Plan.objects.count() == 1


def test_suspend_delete_and_members(admin_user, synced, alice, make_user):
    from ops.fabric import userroles
    from ops.fabric.session import session_for

    plan = _gold(admin_user, synced)
    sub, _ = subscriptions.create_subscription(admin_user, plan, "Contoso Gold", [(alice, "CONTOSO\\alice")],
                                            adopt_user_role="Contoso Gold")
    assert subscriptions.set_state(admin_user, sub, "suspended").state == "suspended"
    assert subscriptions.set_state(admin_user, sub, "active").state == "active"
    n = subscriptions.vm_count(sub)
    assert n > 0
    with pytest.raises(ValidationError, match=rf"subscription Contoso Gold still has {n} VMs"):
        subscriptions.delete_subscription(admin_user, sub)
    dave = make_user("dave", "tenant")
    subscriptions.add_member(admin_user, sub, dave, "CONTOSO\\dave")
    role = userroles.get_user_role(session_for(synced.vmm), role_id=sub.user_role_id)
    assert "CONTOSO\\dave" in role.members
    subscriptions.remove_member(admin_user, sub, dave)
    role = userroles.get_user_role(session_for(synced.vmm), role_id=sub.user_role_id)
    assert "CONTOSO\\dave" not in role.members and not sub.memberships.filter(user=dave).exists()
    assert list(AuditEntry.objects.filter(action__startswith="subscription.").values_list("action", flat=True)
                .order_by("id")) == ["subscription.create", "subscription.suspend", "subscription.activate",
                                     "subscription.member_add", "subscription.member_remove"]
