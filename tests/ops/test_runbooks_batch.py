"""The batch checkpoint runbook against the simulated fabric (real pypsrp client)."""
import pytest

from ops.models import Run, Step
from ops.services.runs import start_run

from ._engine_support import batch_vms, driver, events  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_batch_checkpoints_every_vm_and_restores_power_states(sim, operator, driver):
    before = batch_vms(sim, 3)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    after = batch_vms(sim, 3)
    for name, vm in before.items():
        new = [c for c in after[name]["checkpoints"] if c not in vm["checkpoints"]]
        assert len(new) == 1, (name, after[name]["checkpoints"])
        assert after[name]["status"] == vm["status"], name  # running ones running again, off ones still off
    assert sim.state()["scom_maintenance"] == []
    assert run.progress == 100
    seqs = list(run.events.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert f"checkpointed {len(before)} of {len(before)} VMs" in run.message



def test_fault_on_one_checkpoint_compensates_and_names_the_vm(sim, operator, driver):
    before = batch_vms(sim, 3)
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "test05",
                 "message": "The disk of test05 is full."})
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert "New-SCVMCheckpoint on test05 failed: The disk of test05 is full. Done:" in run.message
    assert ".." not in run.message
    assert "VMM server vmm01" in run.message
    assert "no new checkpoint: test05" in run.message  # what was not done
    assert f"checkpointed {len(before) - 1} of {len(before)} VMs" in run.message  # what was done
    after = batch_vms(sim, 3)
    for name, vm in before.items():
        new = [c for c in after[name]["checkpoints"] if c not in vm["checkpoints"]]
        assert len(new) == (0 if name == "test05" else 1), name
        assert after[name]["status"] == vm["status"], name  # every stopped VM started again
    assert sim.state()["scom_maintenance"] == []
    assert any("test05" in m and "failed" in m for m in events(run))


def test_without_scom_maintenance_is_skipped_with_a_warning(sim, operator, driver):
    sim.scom.enabled = False
    sim.scom.save()
    run = start_run(operator, "batch-checkpoint", {"batch": "1"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    warnings = list(run.events.filter(level="warning").values_list("message", flat=True))
    assert any("No SCOM connection is configured" in w for w in warnings)
    assert not run.steps.filter(action__startswith="maintenance").exists()


def test_cancel_mid_run_runs_the_compensation(sim, operator, driver, settings):
    from ops.services.runs import cancel_run

    before = batch_vms(sim, 3)
    sim.vmm.max_concurrent_jobs = 2  # a longer checkpoint phase to cancel in
    sim.vmm.save()
    settings.SLIPWAY_ENGINE_SLICE_SECONDS = 0.05
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=lambda: run.steps.filter(action="new-checkpoint", state="succeeded").exists())
    cancel_run(operator, run)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED, run.message
    assert run.steps.filter(action="new-checkpoint", state="cancelled").exists()
    after = batch_vms(sim, 3)
    for name, vm in before.items():
        assert after[name]["status"] == vm["status"], name
    assert sim.state()["scom_maintenance"] == []
    assert any(m.startswith("Compensation (cancelled)") for m in events(run))
    assert run.message.startswith("Batch 3 cancelled")


def test_a_hung_job_fails_its_step_at_the_job_timeout_and_the_run_cleans_up(sim, operator, driver):
    from ops.models import ServerConnection

    before = batch_vms(sim, 3)
    off = sorted(n for n, v in before.items() if v["status"] != "Running")[0]
    ServerConnection.objects.filter(kind="vmm").update(job_timeout=3)
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": off, "mode": "hang"})
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert (f"VMM server vmm01: New-SCVMCheckpoint on {off} did not finish within the job timeout of 3 s"
            in run.message), run.message
    assert f"no new checkpoint: {off}" in run.message
    after = batch_vms(sim, 3)
    assert {n: v["status"] for n, v in after.items()} == {n: v["status"] for n, v in before.items()}
    assert sim.state()["scom_maintenance"] == []


def test_a_vmm_outage_pauses_the_run_which_resumes_when_the_server_answers(sim, operator, driver, settings):
    import threading

    from ops.models import ServerConnection

    from ops.engine import lease

    settings.SLIPWAY_ENGINE_PAUSE_SECONDS = 0.5
    settings.SLIPWAY_LEASE_SECONDS = 4   # shorter than a call to a server that does not answer
    ServerConnection.objects.update(operation_timeout=5)
    assert lease.lease_seconds() < 5   # the heartbeat keeps the lease through the call: the task pauses its run, never loses it
    before = batch_vms(sim, 3)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=lambda: run.steps.filter(phase="checkpoint").exists())
    sim.control({"op": "server_down", "value": True})
    came_back = threading.Timer(8, lambda: sim.control({"op": "server_down", "value": False}))
    came_back.start()
    try:
        driver.drive(timeout=120)
    finally:
        came_back.cancel()
        sim.control({"op": "server_down", "value": False})
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    log = events(run)
    paused = [m for m in log if "the run is paused: it tries again every 0.5 s" in m]
    assert len(paused) == 1 and "VMM server vmm01" in paused[0], log   # one line when it pauses, not one per try
    assert len([m for m in log if m.startswith("Run resumed")]) == 1, log   # one when it resumes
    assert not [m for m in log if "lease expired" in m], log
    after = batch_vms(sim, 3)
    for name, vm in before.items():   # one checkpoint each, power states as they were
        assert len([c for c in after[name]["checkpoints"] if c not in vm["checkpoints"]]) == 1, name
        assert after[name]["status"] == vm["status"], name


def test_on_error_wait_lets_the_operator_retry(sim, operator, driver):
    from ops.services.runs import retry_step

    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql02", "times": 1})
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "on_error": "wait"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING
    assert "Waiting for the operator" in events(run)[-1]
    assert run.message.startswith("Waiting for the operator: 1 step of 'Checkpoint every VM' failed (sql02)")
    assert batch_vms(sim, 3)["sql01"]["status"] == "PowerOff"  # still in the window, VMs stay stopped
    failed = run.steps.get(state=Step.State.FAILED)
    assert failed.target == "sql02"
    retry_step(operator, failed)
    run.refresh_from_db()
    assert run.state == Run.State.RUNNING and run.message == ""   # the page no longer says it waits
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert "Skipped by the operator" not in run.message
    assert all(len(vm["checkpoints"]) >= 1 for vm in batch_vms(sim, 3).values())


def test_on_error_wait_also_waits_when_a_vm_does_not_start_again(sim, operator, driver):
    from ops.services.runs import retry_step

    running = sorted(n for n, v in batch_vms(sim, 3).items() if v["status"] == "Running")[0]
    sim.control({"op": "fault", "cmdlet": "Start-SCVirtualMachine", "target": running, "times": 1})
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "on_error": "wait"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING and run.phase == "start", run.message
    assert batch_vms(sim, 3)[running]["status"] == "PowerOff"
    retry_step(operator, run.steps.get(state=Step.State.FAILED))
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert batch_vms(sim, 3)[running]["status"] == "Running"
    assert sim.state()["scom_maintenance"] == []


def test_a_skipped_failure_is_named_in_the_outcome(sim, operator, driver):
    from ops.services.runs import skip_step

    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql02"})
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "on_error": "wait"})
    driver.drive()
    skip_step(operator, run.steps.get(state=Step.State.FAILED))
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED
    assert "checkpointed 14 of 15 VMs" in run.message
    assert run.message.endswith("Skipped by the operator after failing: sql02 (new-checkpoint).")
    assert run.events.order_by("-seq").first().level == "warning"


def test_on_error_wait_then_abort_compensates_and_fails(sim, operator, driver):
    from ops.services.runs import abort_run

    before = batch_vms(sim, 3)
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql02"})
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "on_error": "wait"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING
    abort_run(operator, run)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert run.message.startswith("Aborted by olga")
    assert {n: v["status"] for n, v in batch_vms(sim, 3).items()} == {n: v["status"] for n, v in before.items()}


@pytest.mark.parametrize("params, message", [
    ({"batch": "99"}, "no such batch"),
    ({"batch": "3", "cloud": "Platinum"}, "no cloud named 'Platinum'"),
    ({"batch": "3", "shutdown": "pull-the-plug"}, "shutdown must be one of"),
    ({"batch": "3", "maintenance_minutes": "-5"}, "maintenance_minutes must be at least 1"),
    ({"batch": "3", "checkpoint_name": "{nope}"}, "{nope} is not a field"),
    ({"batch": "3", "checkpoint_name": "{vm.__class__}"}, "{vm.__class__} is not a field"),
    ({"batch": "3", "checkpoint_name": "{batch[0]}"}, "{batch[0]} is not a field"),
    ({"batch": "3", "checkpoint_name": "{batch:>1000000000000}"}, "{batch:>1000000000000} is not a field"),
    ({"batch": "3", "checkpoint_name": "{vm!r}"}, "{vm!r} is not a field"),
    ({"batch": "3", "checkpoint_name": "{batch"}, "is not a valid template"),
    ({"batch": "3", "checkpoint_name": "x" * 201}, "at most 200"),
    ({"batch": "3", "checkpoint_name": "Batch {batch}\u202e"}, "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ({"bacth": "3"}, "unknown parameter 'bacth'"),
    ({}, "batch is required"),
])
def test_bad_parameters_are_refused_before_anything_runs(sim, operator, driver, params, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        start_run(operator, "batch-checkpoint", params)
    assert message in " ".join(exc.value.messages)
    assert not Run.objects.exists()
    assert not driver.queue
    assert not [j for j in sim.state()["jobs"]]


def test_checkpoint_names_from_the_template():
    from ops.runbooks.batch_checkpoint import render_name

    assert render_name("{{{batch}}} {vm}-{date} r{run}", batch="3", vm="web01", date="2026-11-29", run=7) == \
        "{3} web01-2026-11-29 r7"


def test_every_bad_parameter_is_reported_at_once(sim, operator, driver):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        start_run(operator, "batch-checkpoint", {"shutdown": "pull-the-plug", "maintenance_minutes": "-5",
                                                 "checkpoint_name": "{nope}", "scom": "scom99"})
    text = " | ".join(exc.value.messages)
    for part in ("batch is required", "shutdown must be one of", "maintenance_minutes must be at least 1",
                 "checkpoint_name '{nope}' is not a valid template", "no enabled SCOM connection is named 'scom99'"):
        assert part in text
    assert len(exc.value.messages) == 5
    assert not Run.objects.exists() and not sim.state()["jobs"]


def test_two_runs_over_the_same_vms_never_overlap(sim, operator, driver):
    from ops.services.runs import RunConflict

    first = start_run(operator, "batch-checkpoint", {"batch": "3"})
    with pytest.raises(RunConflict, match=rf"\bRun {first.pk} \("):   # a sentence: capital first
        start_run(operator, "batch-checkpoint", {"batch": "3", "cloud": "Dev"})
    assert Run.objects.count() == 1
    start_run(operator, "batch-checkpoint", {"batch": "2"})  # other VMs: fine


def test_runs_of_different_runbooks_never_change_the_same_vms_at_once(sim, operator, driver):
    from ops.services.runs import RunConflict

    batch = start_run(operator, "batch-checkpoint", {"batch": "3"})
    with pytest.raises(RunConflict, match=rf"Run {batch.pk} \(Batch checkpoint: batch 3.*\) is still queued over \d+ of the same VMs"):
        start_run(operator, "checkpoint-cleanup", {"older_than_days": "0"})   # every VM: it would merge batch 3's
    start_run(operator, "checkpoint-cleanup", {"older_than_days": "0", "dry_run": "true"})  # changes nothing
    assert Run.objects.count() == 2


def test_batches_in_different_clouds_do_not_conflict(sim, operator, driver):
    from ops.services.runs import RunConflict

    clouds = {v["cloud"] for v in batch_vms(sim, 3).values()}
    assert len(clouds) >= 2
    first, second = sorted(clouds)[:2]
    start_run(operator, "batch-checkpoint", {"batch": "3", "cloud": first})
    start_run(operator, "batch-checkpoint", {"batch": "3", "cloud": second})   # disjoint VMs
    with pytest.raises(RunConflict, match="over the same VMs"):
        start_run(operator, "batch-checkpoint", {"batch": "3", "cloud": first})
    assert Run.objects.count() == 2


def test_only_operators_start_runbooks(sim, tenant, admin_user, driver):
    from django.core.exceptions import PermissionDenied

    for user in (tenant, admin_user):
        with pytest.raises(PermissionDenied):
            start_run(user, "batch-checkpoint", {"batch": "3"})
    assert not Run.objects.exists()


def _forget_every_run():
    """What a fresh database looks like to the fabric: no runs, and ids start at 1 again."""
    from django.core.management.color import no_style
    from django.db import connection

    Run.objects.all().delete()   # with their steps and events
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_by_name_sql(no_style(), [{"table": "ops_run", "column": "id"}]):
            cursor.execute(sql)


def test_a_fresh_database_over_an_old_fabric_makes_new_checkpoints(sim, operator, driver):
    """Issue 10 §1: a second Slipway (or a reset database) over a fabric where an earlier run 1
    left its checkpoints: the new run 1 makes its own and says so."""
    from ops.fabric import vmm
    from ops.fabric.session import session_for

    _forget_every_run()
    old = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive()
    old.refresh_from_db()
    assert old.state == Run.State.SUCCEEDED, old.message
    _forget_every_run()
    before = batch_vms(sim, 3)
    # and what the old code left: a checkpoint named as the new run names its own, marked with "run 1"
    legacy = sorted(before)[0]
    s = session_for(sim.vmm)
    vmm.wait_job(s, vmm.new_checkpoint(s, before[legacy]["id"], f"Batch 3 {old.created_at:%Y-%m-%d}",
                                       "Batch 3 checkpoint by Slipway [slipway-run:1]", legacy), timeout=60)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    assert run.pk == old.pk == 1 and run.uid != old.uid  # the same number in a new database
    # a checkpoint carrying this run's own marker but not the name the step asks for is not its work either
    other = sorted(before)[1]
    vmm.wait_job(s, vmm.new_checkpoint(s, before[other]["id"], "Someone else's",
                                       f"copied description [slipway-run:{run.uid}]", other), timeout=60)
    before = batch_vms(sim, 3)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    after = batch_vms(sim, 3)
    for name, vm in before.items():   # names repeat (same batch, same day): count them
        assert len(after[name]["checkpoints"]) == len(vm["checkpoints"]) + 1, (name, after[name]["checkpoints"])
    assert not [m for m in events(run) if "already has checkpoint" in m]
    assert f"checkpointed {len(before)} of {len(before)} VMs" in run.message
