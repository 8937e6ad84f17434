"""Runbook schedules: django-q2 Schedule underneath, validation, no pile-up."""
import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django_q.models import Schedule

from ops.models import AuditEntry, Run, RunSchedule
from ops.services import schedules

from ._engine_support import Driver

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_arms_a_cron_schedule(sim, operator):
    sched = schedules.create_schedule(operator, "nightly batch 3", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    q = Schedule.objects.get(pk=sched.q_schedule_id)
    assert (q.func, q.schedule_type, q.cron, q.args) == ("ops.engine.tasks.start_scheduled_run", Schedule.CRON,
                                                          "0 2 * * *", str(sched.pk))
    assert q.next_run.hour == 2 and q.next_run.minute == 0
    # what the operator gave, with the connections it resolved to now; the other defaults apply when it fires
    assert sched.params == {"batch": "3", "connection": "vmm01", "scom": "scom01"}
    assert sched.connection.name == "vmm01" and sched.scom_connection.name == "scom01"
    assert AuditEntry.objects.filter(action="schedule.create", object_id=str(sched.pk)).exists()


@pytest.mark.parametrize("cron", ["every night", "61 2 * * *", "0 2 * *", ""])
def test_malformed_cron_is_refused_naming_it(sim, operator, cron):
    with pytest.raises(ValidationError) as exc:
        schedules.create_schedule(operator, "bad", "batch-checkpoint", {"batch": "3"}, cron)
    assert "cron" in exc.value.message_dict
    assert "not a valid five-field cron expression" in " ".join(exc.value.message_dict["cron"])
    assert not RunSchedule.objects.exists() and not Schedule.objects.filter(func=schedules.TASK).exists()


def test_bad_parameters_are_refused(sim, operator):
    with pytest.raises(ValidationError) as exc:
        schedules.create_schedule(operator, "bad", "checkpoint-cleanup", {"older_than_days": "-1"}, "0 3 * * *")
    assert "older_than_days must be at least 0" in " ".join(exc.value.message_dict["params"])
    assert not RunSchedule.objects.exists()


def test_a_schedule_keeps_the_connection_it_was_saved_with_even_renamed(sim, operator, monkeypatch):
    from ops.models import ServerConnection

    Driver(monkeypatch)
    sched = schedules.create_schedule(operator, "n", "batch-checkpoint", {"batch": " 3 ", "connection": "", "cloud": ""},
                                      "0 2 * * *")
    assert sched.params["batch"] == "3" and "cloud" not in sched.params   # empty fields are left out
    ServerConnection.objects.filter(name="vmm01").update(name="vmm-new")
    run = Run.objects.get(pk=schedules.fire(sched.pk))
    assert run.connection.name == "vmm-new" and run.schedule == sched


def test_only_operators_manage_schedules(sim, tenant):
    with pytest.raises(PermissionDenied):
        schedules.create_schedule(tenant, "x", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")


def test_pause_resume_update_delete(sim, operator):
    sched = schedules.create_schedule(operator, "n", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    schedules.pause_schedule(operator, sched)
    assert not sched.enabled and sched.q_schedule_id is None and not Schedule.objects.filter(func=schedules.TASK).exists()
    schedules.resume_schedule(operator, sched)
    assert Schedule.objects.get(func=schedules.TASK).cron == "0 2 * * *"
    schedules.update_schedule(operator, sched, cron="30 4 * * 1", params={"batch": "2"})
    q = Schedule.objects.get(func=schedules.TASK)
    assert q.cron == "30 4 * * 1" and sched.params["batch"] == "2"
    schedules.delete_schedule(operator, sched)
    assert not RunSchedule.objects.exists() and not Schedule.objects.filter(func=schedules.TASK).exists()
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"schedule.pause", "schedule.resume", "schedule.update", "schedule.delete"} <= actions


def test_a_slot_starts_a_run_that_shows_its_schedule_and_never_piles_up(sim, operator, monkeypatch):
    from ops.engine.tasks import start_scheduled_run

    driver = Driver(monkeypatch)
    sched = schedules.create_schedule(operator, "nightly", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    run_id = start_scheduled_run(sched.pk)
    run = Run.objects.get(pk=run_id)
    assert run.schedule == sched and run.created_by == operator
    assert "queued by schedule 'nightly'" in run.events.first().message
    # the next slot comes while the run is still active: skipped, audited
    assert start_scheduled_run(sched.pk) is None
    assert Run.objects.count() == 1
    assert AuditEntry.objects.filter(action="schedule.skipped", object_id=str(sched.pk)).exists()
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED
    assert start_scheduled_run(sched.pk) is not None  # the run ended: the next slot runs
    assert settings.Q_CLUSTER["catch_up"] is False  # missed slots are not replayed


@pytest.mark.parametrize("cron", ["0 2 30 2 *", "0 2 31 4 *"])
def test_cron_that_never_fires_is_refused_on_create_and_edit(sim, operator, cron):
    with pytest.raises(ValidationError, match="never matches a date"):
        schedules.create_schedule(operator, "never", "batch-checkpoint", {"batch": "3"}, cron)
    assert not RunSchedule.objects.exists()
    sched = schedules.create_schedule(operator, "nightly", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    schedules.pause_schedule(operator, sched)
    with pytest.raises(ValidationError, match="never matches a date"):
        schedules.update_schedule(operator, sched, cron=cron)
    sched.refresh_from_db()
    assert sched.cron == "0 2 * * *"
    schedules.resume_schedule(operator, sched)   # still resumable
    assert Schedule.objects.get(pk=sched.q_schedule_id).next_run.hour == 2


@pytest.mark.parametrize("name,message", [
    ("nightly \u202egpj.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("night\x00ly", "U+0000"),
    ("n" * 101, "at most 100"),
])
def test_schedule_names_that_would_mislead_or_overflow_are_refused(sim, operator, name, message):
    with pytest.raises(ValidationError) as exc:
        schedules.create_schedule(operator, name, "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    assert message in " ".join(exc.value.message_dict["name"])
    assert not RunSchedule.objects.exists()
