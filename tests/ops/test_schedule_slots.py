"""A schedule never stops silently (issue 10 §4): it keeps the connection it was saved
with, and a slot it skips or refuses shows on its row, on the dashboard and in
`runbook list`."""
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from ops.models import AuditEntry, Run, RunSchedule, ServerConnection
from ops.services import schedules

from ..conftest import make_connection
from ._engine_support import Driver

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_vmm_connection_added_later_does_not_break_a_schedule(sim, operator, client_for, monkeypatch):
    Driver(monkeypatch)
    c = client_for(operator)
    # saved from the form as an operator does, with the one VMM connection there is
    form = c.get(reverse("ops:schedule_new"), {"kind": "batch-checkpoint"}).content.decode()
    assert '<option value="vmm01" selected>' in form
    resp = c.post(reverse("ops:schedule_new"), {"kind": "batch-checkpoint", "name": "Nightly 3", "cron": "0 2 * * *",
                                                "p_batch": "3", "p_connection": "vmm01"})
    assert resp.status_code == 302
    sched = RunSchedule.objects.get()
    make_connection(sim.server, "vmm02", "vmm")   # an admin adds a second VMM server
    run = Run.objects.get(pk=schedules.fire(sched.pk))
    assert run.connection.name == "vmm01" and run.schedule == sched
    sched.refresh_from_db()
    assert sched.last_slot_outcome == RunSchedule.SlotOutcome.STARTED and sched.last_run == run
    # the form now offers both, and asks which
    form = c.get(reverse("ops:schedule_new"), {"kind": "batch-checkpoint"}).content.decode()
    assert "— choose a VMM connection —" in form and '<option value="vmm02">' in form


def test_a_refused_slot_shows_on_the_schedules_page_the_dashboard_and_runbook_list(sim, operator, admin_user,
                                                                                   client_for, capsys):
    # a schedule from before schedules kept their connection: "the only enabled one"
    sched = schedules.create_schedule(operator, "Nightly 3", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    RunSchedule.objects.filter(pk=sched.pk).update(connection=None, scom_connection=None, params={"batch": "3"})
    make_connection(sim.server, "vmm02", "vmm")
    assert schedules.fire(sched.pk) is None
    assert not Run.objects.exists()
    why = "several VMM connections are enabled; name one with connection=NAME"
    sched.refresh_from_db()
    assert sched.refusing and why in sched.last_slot_message and sched.last_slot_at is not None
    entry = AuditEntry.objects.get(action="schedule.refused")
    assert entry.username == "schedule Nightly 3" and why in entry.detail["reason"]

    for user in (operator, admin_user):
        page = client_for(user).get(reverse("ops:schedules")).content.decode()
        row = page[page.index(f'id="schedule-{sched.pk}"'):]
        row = row[:row.index("</tr>")]
        assert ">refusing<" in row and "Last slot refused just now" in row and why in row
        home = client_for(user).get(reverse("home")).content.decode()
        card = home[home.index('id="dash-schedules"'):]
        card = card[:card.index("</section>")]
        assert "Nightly 3" in card and why in card and f"#schedule-{sched.pk}" in card

    call_command("runbook", "list")
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["RUN", "STATE", "DONE", "CREATED", "(UTC)", "STARTED", "BY", "TITLE"]
    assert "schedule 'Nightly 3' refused its slot at" in out and why in out

    # the operator names the connection: saved, the refusal no longer holds, the next slot runs
    schedules.update_schedule(operator, sched, params={"batch": "3", "connection": "vmm02"})
    assert not RunSchedule.objects.get().refusing
    run = Run.objects.get(pk=schedules.fire(sched.pk))
    assert run.connection.name == "vmm02"


def test_a_disabled_connection_refuses_the_slot_naming_it(sim, operator):
    sched = schedules.create_schedule(operator, "n", "checkpoint-cleanup", {"older_than_days": "30"}, "0 3 * * *")
    ServerConnection.objects.filter(name="vmm01").update(enabled=False)
    assert schedules.fire(sched.pk) is None
    sched.refresh_from_db()
    assert sched.refusing and "no enabled VMM connection is named 'vmm01'" in sched.last_slot_message


def test_a_skipped_slot_says_which_run_still_works(sim, operator, client_for, monkeypatch):
    Driver(monkeypatch)
    sched = schedules.create_schedule(operator, "n", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    first = schedules.fire(sched.pk)
    assert schedules.fire(sched.pk) is None
    sched.refresh_from_db()
    assert sched.last_slot_outcome == "skipped" and f"Run {first} is still queued" in sched.last_slot_message
    assert not sched.refusing   # a skipped slot is the schedule working as meant
    page = client_for(operator).get(reverse("ops:schedules")).content.decode()
    assert "Last slot skipped just now" in page and ">active<" in page


def test_a_paused_schedule_is_listed_as_needing_care(sim, operator, client_for, capsys):
    sched = schedules.create_schedule(operator, "Weekly clean-up", "checkpoint-cleanup", {"older_than_days": "30"}, "0 3 * * 0")
    schedules.pause_schedule(operator, sched)
    home = client_for(operator).get(reverse("home")).content.decode()
    card = home[home.index('id="dash-schedules"'):home.index('id="dash-hosts"')]
    assert "Weekly clean-up" in card and ">paused<" in card
    call_command("runbook", "list")
    assert "schedule 'Weekly clean-up' is paused" in capsys.readouterr().out


@pytest.mark.parametrize("second", ["nightly 3", "NIGHTLY 3", "Nightly 3"])
def test_two_schedule_names_differing_only_in_case_are_refused(sim, operator, second):
    schedules.create_schedule(operator, "Nightly 3", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    with pytest.raises(ValidationError) as exc:
        schedules.create_schedule(operator, second, "batch-checkpoint", {"batch": "3"}, "0 4 * * *")
    assert "a schedule named 'Nightly 3' exists already" in " ".join(exc.value.message_dict["name"])
    assert RunSchedule.objects.count() == 1


def test_scheduled_runs_are_credited_to_their_schedule(sim, operator, monkeypatch, capsys):
    Driver(monkeypatch)
    sched = schedules.create_schedule(operator, "Nightly 3", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    run_id = schedules.fire(sched.pk)
    entry = AuditEntry.objects.get(action="run.start", object_id=str(run_id))
    assert entry.username == "schedule Nightly 3" and entry.user is None
    call_command("runbook", "list")
    row = next(line for line in capsys.readouterr().out.splitlines() if line.split()[0] == str(run_id))
    assert "schedule:Nightly 3" in row and "olga" not in row


def test_the_forms_offer_what_exists(sim, operator, client_for):
    from ops.inventory.sync import sync_connection

    sync_connection(sim.vmm)
    c = client_for(operator)
    for url, prefix in ((reverse("ops:run_start"), ""), (reverse("ops:schedule_new"), "p_")):
        page = c.get(url, {"kind": "batch-checkpoint"}).content.decode()
        for name in ("connection", "scom", "cloud", "batch"):
            assert f'<select name="{prefix}{name}"' in page, (url, name)
        batch = page[page.index(f'<select name="{prefix}batch"'):]
        batch = batch[:batch.index("</select>")]
        assert '<option value="3">3 (' in batch and "VMs)" in batch
        cloud = page[page.index(f'<select name="{prefix}cloud"'):]
        assert "— every cloud —" in cloud[:cloud.index("</select>")]
    # a value the list does not hold is judged by the runbook, with its own message
    resp = c.post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "99", "connection": "vmm01"})
    assert resp.status_code == 400 and "no such batch" in resp.content.decode()


def test_admins_read_the_schedules_page_without_its_controls(sim, operator, admin_user, client_for):
    sched = schedules.create_schedule(operator, "Nightly 3", "batch-checkpoint", {"batch": "3"}, "0 2 * * *")
    c = client_for(admin_user)
    page = c.get(reverse("ops:schedules")).content.decode()
    assert "Nightly 3" in page and "0 2 * * *" in page and "Only operators change schedules" in page
    for control in (reverse("ops:schedule_new"), reverse("ops:schedule_edit", args=[sched.pk]),
                    reverse("ops:schedule_toggle", args=[sched.pk]), reverse("ops:schedule_delete", args=[sched.pk])):
        assert control not in page
    assert c.post(reverse("ops:schedule_toggle", args=[sched.pk])).status_code == 403
    assert RunSchedule.objects.get().enabled
