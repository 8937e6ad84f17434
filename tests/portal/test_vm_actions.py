"""Tenant actions through their one write path (ops/services/vm_actions.py), run by the real engine over
the simulator, on behalf of the member (VMM enforces the role as the second gate)."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ops.fabric import userroles
from ops.fabric.session import session_for
from ops.models import AuditEntry, Checkpoint, Plan, Run, Subscription
from ops.services import vm_actions

from ..ops._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _sim_checkpoints(demo, name):
    return list(demo.sim.vm(name)["checkpoints"])


def _done(driver, run):
    driver.drive()
    run.refresh_from_db()
    return run


def test_alice_checkpoints_a_gold_vm_the_new_one_replaces_the_old(demo, driver):
    vm = demo.vm("app01")  # Gold (keeps 1): has 'before-patch-09'
    decided = vm_actions.checkpoint_plan(vm, vm_actions.vm_plan(vm))
    assert decided.notice.startswith("This replaces checkpoint 'before-patch-09' made ")
    assert decided.notice.endswith("; a restore to it will no longer be possible.")
    run = _done(driver, vm_actions.request_checkpoint(demo.alice, vm, "before the upgrade", "alice's"))
    assert run.state == Run.State.SUCCEEDED, run.message
    assert run.message == "Checkpoint 'before the upgrade' of app01 created; it replaced 'before-patch-09'."
    assert _sim_checkpoints(demo, "app01") == ["before the upgrade"]
    # re-read at once, not at the next sync
    assert list(Checkpoint.objects.filter(vm=vm).values_list("name", "description")) == [("before the upgrade", "alice's")]
    assert demo.vm("app01").checkpoint_count == 1
    jobs = [j for j in demo.sim.state()["jobs"] if j["cmdlet"] in ("New-SCVMCheckpoint", "Remove-SCVMCheckpoint")]
    assert {j["owner"] for j in jobs} == {"CONTOSO\\alice"}  # on behalf of the member
    assert AuditEntry.objects.filter(action="vm.checkpoint", username="alice", detail__run=run.pk).exists()


def test_removal_failing_leaves_two_and_says_so(demo, driver):
    demo.sim.control({"op": "fault", "cmdlet": "Remove-SCVMCheckpoint", "message": "The disk chain is locked."})
    run = _done(driver, vm_actions.request_checkpoint(demo.alice, demo.vm("crm01"), "new one"))
    assert run.state == Run.State.FAILED
    assert run.message.startswith("Checkpoint 'new one' of crm01 was created, but removing 'before-patch-11' failed, "
                                  "so the VM keeps both: ")
    assert "The disk chain is locked." in run.message
    assert sorted(_sim_checkpoints(demo, "crm01")) == ["before-patch-11", "new one"]


def test_silver_restores_but_may_not_checkpoint(demo, driver):
    vm = demo.vm("web01")  # Silver: view and restore
    with pytest.raises(PermissionDenied):
        vm_actions.request_checkpoint(demo.bob, vm, "nope")
    cp = Checkpoint.objects.get(vm=vm, name="baseline")
    with pytest.raises(PermissionDenied):  # checkpoint first needs create
        vm_actions.request_restore(demo.bob, vm, cp, checkpoint_first=True)
    run = _done(driver, vm_actions.request_restore(demo.bob, vm, cp))
    assert run.state == Run.State.SUCCEEDED, run.message
    assert run.message == "web01 restored to 'baseline'."
    assert not Run.objects.filter(kind="vm-checkpoint").exists()


def test_restore_with_checkpoint_first(demo, driver):
    vm = demo.vm("build02")  # Fabrikam Dev: keeps 3, has 2
    cp = Checkpoint.objects.get(vm=vm, name="before-patch-09")
    run = _done(driver, vm_actions.request_restore(demo.carol, vm, cp, checkpoint_first=True))
    assert run.state == Run.State.SUCCEEDED, run.message
    assert "Before restoring to before-patch-09" in _sim_checkpoints(demo, "build02")


def test_other_tenant_and_suspended_subscription_are_refused(demo):
    with pytest.raises(PermissionDenied):
        vm_actions.request_checkpoint(demo.carol, demo.vm("app01"), "x")
    with pytest.raises(PermissionDenied):
        vm_actions.request_power(demo.carol, demo.vm("app01"), "stop")
    Subscription.objects.filter(name="Contoso Gold").update(state=Subscription.State.SUSPENDED)
    with pytest.raises(PermissionDenied):
        vm_actions.request_checkpoint(demo.alice, demo.vm("app01"), "x")
    with pytest.raises(PermissionDenied, match="Turn off"):  # Silver allows start and shut down only
        vm_actions.request_power(demo.alice, demo.vm("web01"), "stop")
    assert not Run.objects.exists()


def test_a_second_action_is_refused_naming_the_run(demo, driver):
    vm = demo.vm("app03")
    first = vm_actions.request_power(demo.alice, vm, "shutdown")
    with pytest.raises(vm_actions.VMInUse, match=f"run {first.pk} \\(Shut down app03\\) is queued on this VM"):
        vm_actions.request_checkpoint(demo.alice, vm, "x")
    run = _done(driver, first)
    assert run.state == Run.State.SUCCEEDED, run.message
    assert demo.vm("app03").status == "PowerOff"  # re-read at the end of the run


@pytest.mark.parametrize("name, field, message", [
    ("", "name", "name is required"),
    ("x" * 10_000, "name", "at most 100"),
    ("line\nbreak", "name", "U+000A"),
    ("evil\u202eexe.txt", "name", "U+202E RIGHT-TO-LEFT OVERRIDE"),
])
def test_bad_names_are_refused_naming_the_field(demo, name, field, message):
    with pytest.raises(ValidationError) as exc:
        vm_actions.request_checkpoint(demo.alice, demo.vm("app01"), name)
    assert field in exc.value.message_dict and message in exc.value.message_dict[field][0]
    assert not Run.objects.exists()


def test_hostile_but_visible_names_reach_vmm_literally(demo, driver):
    name = "it's \"$(Remove-Item C:\\)\"; Stop-Computer"
    run = _done(driver, vm_actions.request_checkpoint(demo.alice, demo.vm("build01"), name, "a\nb"))
    assert run.state == Run.State.SUCCEEDED, run.message
    assert _sim_checkpoints(demo, "build01") == [name]
    assert demo.sim.vm("build01")["status"] == "Running"


def test_keep_n_refuses_at_the_limit_naming_which_to_delete(demo, driver):
    plan = Plan.objects.get(name="Fabrikam Dev")
    plan.remove_oldest_when_full = False
    plan.save()
    vm = demo.vm("build02")  # 2 of 3
    assert _done(driver, vm_actions.request_checkpoint(demo.carol, vm, "third")).state == Run.State.SUCCEEDED
    with pytest.raises(vm_actions.PlanRefuses, match="keeps at most 3 checkpoints per VM and build02 has 3: delete one "
                                                     "first \\(the oldest: 'before-patch-09' made "):
        vm_actions.request_checkpoint(demo.carol, vm, "fourth")
    oldest = Checkpoint.objects.get(vm=vm, name="before-patch-09")
    assert _done(driver, vm_actions.request_remove_checkpoint(demo.carol, vm, oldest)).state == Run.State.SUCCEEDED
    assert sorted(_sim_checkpoints(demo, "build02")) == ["pre-upgrade", "third"]
    plan.remove_oldest_when_full = True
    plan.save()
    assert _done(driver, vm_actions.request_checkpoint(demo.carol, vm, "fourth")).state == Run.State.SUCCEEDED
    decided = vm_actions.checkpoint_plan(vm, plan)
    assert "once the new one exists, the oldest, 'pre-upgrade' made" in decided.notice
    run = _done(driver, vm_actions.request_checkpoint(demo.carol, vm, "fifth"))
    assert run.state == Run.State.SUCCEEDED, run.message
    assert sorted(_sim_checkpoints(demo, "build02")) == ["fifth", "fourth", "third"]


def test_vmm_refuses_on_behalf_of_a_role_whose_permission_was_removed(demo, driver):
    """The plan update pushed 'none' to VMM; Slipway's own check has not caught up: VMM is the second gate."""
    sub = Subscription.objects.get(name="Contoso Gold")
    s = session_for(demo.sim.vmm)
    job = userroles.remove_checkpoint_permission(s, sub.user_role_id, "Gold", "Checkpoint", label=sub.user_role_name)
    from ops.fabric import vmm
    vmm.wait_job(s, job, 30)
    run = _done(driver, vm_actions.request_checkpoint(demo.alice, demo.vm("app01"), "refused"))
    assert run.state == Run.State.FAILED
    step = run.steps.get(action="new-checkpoint")
    assert step.state == "failed" and "New-SCVMCheckpoint" in step.error
    assert _sim_checkpoints(demo, "app01") == ["before-patch-09"]  # nothing made, nothing removed
    assert "No checkpoint of app01 was made" in run.message and "Nothing was removed." in run.message


def test_an_operator_acts_as_slipway_and_the_tenant_watches(demo, driver, make_user):
    from ops import authz

    olga = make_user("olga", "operator")
    vm = demo.vm("build01")
    run = vm_actions.request_checkpoint(olga, vm, "by the operator")
    assert run.params["user"] == "" and run.params["role_id"] == ""
    assert authz.allowed(demo.alice, "run.view", run) and not authz.allowed(demo.carol, "run.view", run)
    run = _done(driver, run)
    assert run.state == Run.State.SUCCEEDED, run.message
    job = next(j for j in demo.sim.state()["jobs"] if j["cmdlet"] == "New-SCVMCheckpoint")
    assert job["owner"] != "CONTOSO\\alice"
    admin = demo.admin
    with pytest.raises(PermissionDenied):  # admins see VMs; operators act on them
        vm_actions.request_power(admin, vm, "start")
