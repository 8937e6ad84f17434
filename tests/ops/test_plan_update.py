"""The plan update run (ops/runbooks/plan_update.py) over the simulator: the permission lands on the
subscription's VMM user role, is read back, and Slipway enforces the stricter one until then."""
import pytest

from ops.fabric import userroles
from ops.fabric.session import session_for
from django.core.exceptions import ValidationError

from ops.models import AuditEntry, Plan, Run, Subscription
from ops.runbooks import registry
from ops.services import plans, runs, subscriptions

from ..ops._engine_support import driver  # noqa: F401
from ..portal.conftest import demo  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _launch(admin, plan):
    subs = [{"id": s.pk, "name": s.name, "role_id": s.user_role_id, "role_name": s.user_role_name}
            for s in plan.subscriptions.all()]
    prep = registry.get("plan-update").prepare({
        "connection": plan.connection.name, "plan_id": plan.pk, "plan": plan.name,
        "permission": plan.checkpoint_permission, "clouds": [c.name for c in plan.clouds.all()],
        "dropped": [], "subscriptions": subs})
    return runs.launch(admin, "plan-update", prep)


def test_silver_gets_create_and_vmm_reads_it_back(demo, driver):
    plan = Plan.objects.get(name="Contoso Silver")
    sub = plan.subscriptions.get()
    plan.checkpoint_permission = "create_view_restore"
    plan.save()
    Subscription.objects.filter(pk=sub.pk).update(enforced_permission="view_restore")
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "view_restore"  # the stricter, until pushed
    run = _launch(demo.admin, plan)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    role = userroles.get_user_role(session_for(plan.connection), role_id=sub.user_role_id)
    assert role.checkpoint_permission("Silver") == "Checkpoint"
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "create_view_restore"
    assert run.message == "Plan Contoso Silver: 'Create, view and restore' confirmed in VMM for all 1 subscription(s)."


def test_update_plan_tightens_at_once_and_loosens_only_when_vmm_confirms(demo, driver):
    gold = Plan.objects.get(name="Contoso Gold")
    sub = gold.subscriptions.get()
    plan, run = plans.update_plan(demo.admin, gold, checkpoint_permission="view_restore")
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "view_restore"  # stricter at once
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    role = userroles.get_user_role(session_for(plan.connection), role_id=sub.user_role_id)
    assert role.checkpoint_permission("Gold") == "CheckpointRestoreOnly"
    plan, run = plans.update_plan(demo.admin, plan, checkpoint_permission="create_view_restore")
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "view_restore"  # until VMM carries it
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "create_view_restore"
    assert AuditEntry.objects.filter(action="plan.update").count() == 2
    # a change only Slipway enforces starts no run
    assert plans.update_plan(demo.admin, plan, checkpoints_kept=2)[1] is None


def test_new_subscription_gets_its_own_vmm_role_and_no_checkpoints_until_vmm_confirms(demo, driver, make_user):
    gold = Plan.objects.get(name="Contoso Gold")
    dave = make_user("dave", "tenant")
    s = session_for(gold.connection)
    with pytest.raises(ValidationError, match="already has a user role named Contoso Gold"):
        subscriptions.create_subscription(demo.admin, gold, "Northwind", [(dave, "NORTHWIND\\dave")],
                                          new_user_role="Contoso Gold")
    assert not Subscription.objects.filter(name="Northwind").exists()
    sub, run = subscriptions.create_subscription(demo.admin, gold, "Northwind", [(dave, "NORTHWIND\\dave")])
    role = userroles.get_user_role(s, name="Northwind")
    assert role.profile == "TenantAdmin" and role.members == ["NORTHWIND\\dave"] and role.clouds == ["Gold"]
    assert sub.user_role_id == role.id.lower() and run is not None
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "none"  # until the run reads it back
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert userroles.get_user_role(s, name="Northwind").checkpoint_permission("Gold") == "Checkpoint"
    assert Subscription.objects.get(pk=sub.pk).checkpoint_permission == "create_view_restore"


def _sessions_of_this_database():
    from django.db import connection
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cur.fetchone()[0]


@pytest.mark.skipif("not __import__('django.db').db.connection.vendor == 'postgresql'",
                    reason="counts PostgreSQL sessions (pg_stat_activity): CI's second pass")
def test_the_engine_s_threads_hold_no_database_session_once_their_step_is_done(demo, driver):
    """The plan update's step reads and writes the database from the engine's step threads
    (ops/engine/steps.py); a worker must not keep one idle session per thread for its lifetime."""
    before = _sessions_of_this_database()
    for permission in ("view_restore", "create_view_restore"):
        _, run = plans.update_plan(demo.admin, Plan.objects.get(name="Contoso Gold"), checkpoint_permission=permission)
        driver.drive()
        run.refresh_from_db()
        assert run.state == Run.State.SUCCEEDED, run.message
    assert _sessions_of_this_database() <= before, "an engine thread kept its database session"
