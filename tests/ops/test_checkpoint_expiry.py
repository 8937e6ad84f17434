"""A plan's maximum checkpoint age (ops/services/expiry.py): hourly clean-up runs per subscription,
over the demo fabric. Fabrikam's build02 has a 53-day-old and a 13-hour-old checkpoint; file06 a
20-day-old one; dc04 (Dev cloud, in no user role) a 129-day-old one; Contoso Gold's oldest is 52
days, Contoso Silver's web01 292 days (ops/simulator/scenarios/demo.yaml)."""
import pytest

from ops.models import AuditEntry, Plan, Run, Subscription, VirtualMachine
from ops.services.expiry import expire_checkpoints
from ops.services.runs import start_run

from ._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def role_id(sim, name):
    return next(r["id"] for r in sim.state()["user_roles"] if r["name"] == name)


def subscribe(sim, name, role, max_age=None, state=Plan.State.PUBLIC):
    plan = Plan.objects.create(name=f"{name} plan", connection=sim.vmm, checkpoint_max_age_days=max_age, state=state)
    return Subscription.objects.create(plan=plan, name=name, user_role_id=role_id(sim, role), user_role_name=role)


@pytest.fixture
def tenants(synced):
    """Fabrikam: at most 30 days; Contoso Gold: at most 60 (none of its checkpoints is that old); Contoso Silver: no limit."""
    return {"fabrikam": subscribe(synced, "Fabrikam", "Fabrikam Dev", 30),
            "gold": subscribe(synced, "Contoso Gold", "Contoso Gold", 60),
            "silver": subscribe(synced, "Contoso Silver", "Contoso Silver")}


def checkpoints(sim):
    return {vm["name"]: vm["checkpoints"] for vm in sim.state()["vms"]}


def test_checkpoints_past_the_plans_age_go_and_every_other_stays(synced, tenants, driver):
    before = checkpoints(synced)
    summary = expire_checkpoints()
    run = Run.objects.get()
    assert summary == (f"Checkpoint expiry: 1 run started (Fabrikam #{run.pk}); "
                       "1 subscription with no checkpoint past its plan's maximum age")
    assert run.title == "Checkpoint clean-up: all clouds, VMs of user role Fabrikam Dev, older than 30 days"

    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    after = checkpoints(synced)
    assert after["build02"] == ["pre-upgrade"]  # 53 days old: gone; 13 hours old: stays
    assert after["web02"] == [] and after["web08"] == []  # 385 and 323 days
    assert after["file06"] == before["file06"] == ["before-patch-02", "pre-upgrade"]  # 20 days: not yet
    assert after["dc04"] == before["dc04"] == ["baseline"]  # Fabrikam's cloud, but no subscription's VM
    assert after["crm01"] == before["crm01"] == ["before-patch-11"]  # Contoso Gold: 50 days, its limit is 60
    assert after["web01"] == before["web01"] == ["baseline"]  # Contoso Silver: 292 days, its plan has no limit
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"build02", "web02", "web08", "app04", "crm04", "web06"}

    # the run refreshed what it touched in the inventory: the next hour finds nothing to start
    assert expire_checkpoints() == "Checkpoint expiry: 2 subscriptions with no checkpoint past its plan's maximum age"
    assert Run.objects.count() == 1


def test_while_a_subscriptions_run_is_active_no_second_one_starts(synced, tenants, driver):
    expire_checkpoints()
    run = Run.objects.get()
    assert run.state == Run.State.QUEUED

    summary = expire_checkpoints()
    assert summary == (f"Checkpoint expiry: 1 skipped: Fabrikam, run #{run.pk} still queued; "
                       "1 subscription with no checkpoint past its plan's maximum age")
    assert Run.objects.count() == 1
    note = AuditEntry.objects.get(action="checkpoint.expiry.skipped")
    assert note.object_repr == "Fabrikam" and note.detail["run"] == run.pk
    assert note.username == "system: checkpoint expiry"


def test_a_run_of_another_runbook_over_the_same_vms_holds_the_expiry_back(synced, tenants, operator, driver):
    batch = start_run(operator, "batch-checkpoint", {"batch": "2"})  # build02 and app04 among them
    summary = expire_checkpoints()
    assert f"1 skipped: Fabrikam, run #{batch.pk} works on the same VMs" in summary
    assert list(Run.objects.values_list("pk", flat=True)) == [batch.pk]
    assert f"Run {batch.pk} (" in AuditEntry.objects.get(action="checkpoint.expiry.skipped").detail["reason"]


def test_a_decommissioned_plans_subscriptions_still_expire(synced):
    sub = subscribe(synced, "Fabrikam", "Fabrikam Dev", 30, state=Plan.State.DECOMMISSIONED)
    summary = expire_checkpoints()
    run = Run.objects.get()
    assert summary == f"Checkpoint expiry: 1 run started (Fabrikam #{run.pk})"
    assert run.params["user_role"] == sub.user_role_id and run.params["older_than_days"] == 30


def test_a_plan_without_a_maximum_age_starts_nothing(synced):
    subscribe(synced, "Contoso Silver", "Contoso Silver")
    before = checkpoints(synced)
    assert expire_checkpoints() == "Checkpoint expiry: no plan has a maximum checkpoint age"
    assert not Run.objects.exists()
    assert checkpoints(synced) == before


def test_a_subscription_whose_role_vmm_no_longer_has_is_refused_and_said(synced):
    sub = subscribe(synced, "Fabrikam", "Fabrikam Dev", 30)
    Subscription.objects.filter(pk=sub.pk).update(user_role_id="0badc0de-0000-4000-8000-000000000000")
    VirtualMachine.objects.filter(user_role_id=sub.user_role_id).update(user_role_id="0badc0de-0000-4000-8000-000000000000")

    summary = expire_checkpoints()
    assert summary == ("Checkpoint expiry: 1 refused: Fabrikam: user_role: VMM server vmm01 has no user role "
                       "with the ID 0badc0de-0000-4000-8000-000000000000")
    assert not Run.objects.exists()
    note = AuditEntry.objects.get(action="checkpoint.expiry.refused")
    assert note.object_repr == "Fabrikam" and "plan Fabrikam plan, VMM server vmm01" in note.detail["reason"]
