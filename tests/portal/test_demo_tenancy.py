"""`make demo` sets up the demo's plans and subscriptions on the simulator's roles, once, and survives an old state."""
import io

from ops.fabric import userroles
from ops.fabric.session import session_for
from ops.inventory.sync import sync_connection
from ops.models import Plan, Subscription, SubscriptionMember
from portal.management.commands.demo import Command


def _demo(sim):
    out = io.StringIO()
    cmd = Command(stdout=out)
    cmd._users()
    assert sync_connection(sim.vmm).ok
    cmd._tenancy()
    return out.getvalue()


def test_demo_plans_and_subscriptions_are_made_once(sim):
    _demo(sim)
    _demo(sim)  # a restart finds them
    assert list(Plan.objects.values_list("name", "checkpoint_permission", "checkpoints_kept")) == [
        ("Contoso Gold", "create_view_restore", 1), ("Contoso Silver", "view_restore", 1),
        ("Fabrikam Dev", "create_view_restore", 3)]
    assert Plan.objects.get(name="Fabrikam Dev").checkpoint_max_age_days == 14
    members = sorted(SubscriptionMember.objects.values_list("subscription__name", "user__username", "vmm_user"))
    assert members == [("Contoso Gold", "alice", "CONTOSO\\alice"), ("Contoso Gold", "bob", "CONTOSO\\bob"),
                       ("Contoso Silver", "alice", "CONTOSO\\alice"), ("Contoso Silver", "bob", "CONTOSO\\bob"),
                       ("Fabrikam Dev", "carol", "FABRIKAM\\carol")]
    assert all(s.user_role_id for s in Subscription.objects.all())


def test_an_old_simulator_state_without_the_role_is_reported_not_fatal(sim):
    s = session_for(sim.vmm)
    role = userroles.get_user_role(s, name="Fabrikam Dev")
    userroles.remove_user_role(s, role.id)
    out = _demo(sim)
    assert "Demo plan Fabrikam Dev: not set up: VMM server vmm01 has no user role named 'Fabrikam Dev'" in out
    assert sorted(Subscription.objects.values_list("name", flat=True)) == ["Contoso Gold", "Contoso Silver"]
