"""A run always has a way out (issue 10 §3), through the real pypsrp client against the simulator:
start checks reach every server, outages pause (said once each way) and then wait for the operator,
errors that waiting cannot fix wait for the operator at once, abort works in every active state and
names what it could not undo, and a connection in use cannot be deleted."""
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from ops.models import Run, RunSchedule, ServerConnection
from ops.services.runs import abort_run, cancel_run, retry_run, start_run

from ._engine_support import batch_vms, driver, events  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def short_slices(driver, settings):
    """One increment or so per task, so a test can change the fabric between two phases."""
    settings.SLIPWAY_ENGINE_SLICE_SECONDS = 0.05

UNRESOLVABLE = "scom-lab.invalid"   # RFC 2606: never resolves


def _point_at(conn, host):
    conn.refresh_from_db()
    conn.host = host
    conn.save()   # a new updated_at: the process's session for it is rebuilt


def _in_phase(run, phase):
    return lambda: Run.objects.get(pk=run.pk).phase == phase


def test_a_run_is_refused_when_its_scom_server_cannot_be_reached(sim, operator, driver):
    _point_at(sim.scom, UNRESOLVABLE)
    with pytest.raises(ValidationError) as exc:
        start_run(operator, "batch-checkpoint", {"batch": "3"})
    text = " ".join(exc.value.messages)
    assert text.startswith("scom: cannot use scom01: SCOM server scom01:"), text
    assert UNRESOLVABLE in text   # the server's own error, naming the host
    assert not Run.objects.exists() and not driver.queue


def test_a_name_that_does_not_resolve_waits_for_the_operator_and_abort_names_what_was_left(sim, operator, driver):
    before = batch_vms(sim, 3)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=_in_phase(run, "checkpoint"))
    _point_at(sim.scom, UNRESOLVABLE)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING, run.message   # not paused for good: waiting cannot fix a name
    assert run.message.startswith("Waiting for the operator: SCOM server scom01:"), run.message
    assert UNRESOLVABLE in run.message and "retry the run; or abort it" in run.message
    assert not [m for m in events(run) if "is paused" in m]
    abort_run(operator, run)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED, run.message
    assert run.message.startswith("Aborted by olga.")
    running = sorted(n for n, v in before.items() if v["status"] == "Running")
    for name in running:   # the VMs were started again (VMM answers); maintenance could not be ended
        assert batch_vms(sim, 3)[name]["status"] == "Running", name
        assert f"{name} left in SCOM maintenance mode: SCOM server scom01:" in run.message, run.message
    assert run.message.count("end maintenance by hand") == len(running)
    assert not [m for m in events(run) if "engine error" in m]
    # its VMs are released: a new run over the same batch is accepted
    _point_at(sim.scom, sim.server.host)
    start_run(operator, "batch-checkpoint", {"batch": "3"})


def test_an_outage_past_the_runs_limit_waits_for_the_operator_who_retries(sim, operator, driver, settings):
    settings.SLIPWAY_ENGINE_PAUSE_SECONDS = 0.3
    ServerConnection.objects.update(operation_timeout=2)
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "outage_minutes": "1"})
    assert run.params["outage_minutes"] == 1
    Run.objects.filter(pk=run.pk).update(params={**run.params, "outage_minutes": 0.05})  # 3 s, for the test
    driver.drive(until=_in_phase(run, "checkpoint"))
    sim.control({"op": "server_down", "value": True})
    try:
        driver.drive(timeout=120)
        run.refresh_from_db()
        assert run.state == Run.State.WAITING, run.message
        assert "the server has not answered for" in run.message and "outage limit is 0.05 min" in run.message
        assert "VMM server vmm01" in run.message
    finally:
        sim.control({"op": "server_down", "value": False})
    retry_run(operator, run)
    driver.drive(timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    log = events(run)
    assert len([m for m in log if "the run is paused: it tries again every 0.3 s" in m]) == 1, log
    assert "olga retried the run: it tries the servers again now" in log


@pytest.mark.parametrize("limit", ["0", "-1", "1441", "soon"])
def test_a_bad_outage_limit_is_refused(sim, operator, driver, limit):
    with pytest.raises(ValidationError, match="outage_minutes must be"):
        start_run(operator, "batch-checkpoint", {"batch": "3", "outage_minutes": limit})
    assert not Run.objects.exists()


def test_a_paused_run_is_aborted_from_the_cli_and_names_what_it_could_not_undo(sim, operator, driver, settings):
    settings.SLIPWAY_ENGINE_PAUSE_SECONDS = 0.3
    ServerConnection.objects.update(operation_timeout=2)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=_in_phase(run, "checkpoint"))
    sim.control({"op": "server_down", "value": True})
    try:
        driver.drive(until=lambda: Run.objects.get(pk=run.pk).state == Run.State.PAUSED, timeout=120)
        run.refresh_from_db()
        assert run.state == Run.State.PAUSED and run.paused_since and run.next_try_at
        call_command("runbook", "abort", str(run.pk), "--user", "olga")
        driver.drive(timeout=120)
    finally:
        sim.control({"op": "server_down", "value": False})
    run.refresh_from_db()
    assert run.state == Run.State.FAILED, run.message
    assert run.message.startswith("Aborted by olga.")
    assert "left stopped: VMM server vmm01" in run.message and "start it by hand" in run.message, run.message
    assert "left in SCOM maintenance mode: SCOM server scom01" in run.message, run.message
    assert run.lease_owner == "" and run.paused_since is None


def test_a_paused_run_can_be_cancelled_and_shows_cancelling(sim, operator, driver, settings, client_for):
    settings.SLIPWAY_ENGINE_PAUSE_SECONDS = 0.3
    ServerConnection.objects.update(operation_timeout=2)
    before = batch_vms(sim, 3)
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=_in_phase(run, "checkpoint"))
    sim.control({"op": "server_down", "value": True})
    try:
        driver.drive(until=lambda: Run.objects.get(pk=run.pk).state == Run.State.PAUSED, timeout=120)
        page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
        assert "Paused since " in page and "next try in" in page
        cancel_run(operator, run)
        page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
        assert ">Cancelling</span>" in page
        cancel_form = page[page.index('data-when-cancellable'):].split(">", 1)[0]
        assert "hidden" in cancel_form   # no second cancel
    finally:
        sim.control({"op": "server_down", "value": False})
    driver.drive(timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED, run.message
    assert {n: v["status"] for n, v in batch_vms(sim, 3).items()} == {n: v["status"] for n, v in before.items()}


def test_a_deleted_scom_connection_waits_for_the_operator_naming_it(sim, operator, driver):
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=_in_phase(run, "checkpoint"))
    ServerConnection.objects.filter(pk=sim.scom.pk).delete()   # behind the service's back (the service refuses)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING, run.message
    assert "SCOM server scom01: no SCOM connection of that name exists any more" in run.message
    assert not [m for m in events(run) if "AttributeError" in m]
    abort_run(operator, run)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert "left in SCOM maintenance mode: SCOM server scom01: no SCOM connection of that name exists any more; " \
           "end maintenance by hand" in run.message, run.message


def test_a_disabled_connection_waits_for_the_operator_then_retry_finishes(sim, operator, driver):
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    driver.drive(until=_in_phase(run, "checkpoint"))
    ServerConnection.objects.filter(pk=sim.vmm.pk).update(enabled=False)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING
    assert "VMM server vmm01: the connection is disabled; enable it, then retry the run" in run.message
    ServerConnection.objects.filter(pk=sim.vmm.pk).update(enabled=True)
    out = io.StringIO()
    call_command("runbook", "retry", str(run.pk), "--user", "olga", stdout=out)   # no step: the run itself
    assert out.getvalue().strip() == f"run {run.pk}: tries its servers again"
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message


def test_retry_run_is_refused_unless_the_run_waits_on_a_server(sim, operator, driver):
    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    with pytest.raises(ValidationError, match="not waiting for the operator; there is nothing to retry"):
        retry_run(operator, run)


def test_a_connection_in_use_cannot_be_deleted(sim, operator, admin_user, driver, client_for):
    from ops.services.connections import delete_connection

    run = start_run(operator, "batch-checkpoint", {"batch": "3"})
    RunSchedule.objects.create(name="nightly", kind="batch-checkpoint", params={"batch": "2", "scom": "scom01"},
                               cron="0 2 * * *")
    with pytest.raises(ValidationError) as exc:
        delete_connection(admin_user, sim.scom)
    text = " ".join(exc.value.messages)
    assert text.startswith("scom01 cannot be deleted: ")
    assert f"run {run.pk} (Batch checkpoint: batch 3" in text and "schedule 'nightly'" in text
    page = client_for(admin_user).post(reverse("ops:connection_delete", args=[sim.vmm.pk]), follow=True).content.decode()
    assert "vmm01 cannot be deleted: " in page and f"run {run.pk}" in page
    assert ServerConnection.objects.filter(pk__in=[sim.vmm.pk, sim.scom.pk]).count() == 2
    abort_run(operator, run)   # a queued run stops before it begins; then the connection may go
    driver.drive()
    assert Run.objects.get(pk=run.pk).state == Run.State.FAILED
    RunSchedule.objects.all().delete()
    delete_connection(admin_user, sim.scom)
    assert not ServerConnection.objects.filter(pk=sim.scom.pk).exists()
