"""A monthly patch window (issue 9 §3): a schedule of patch-cluster through the schedules service and
django-q2's slot function, over the simulator. Saving it runs the preflight (the VMs the drain saves
must be confirmed by name); a slot starts a run that patches CLU-B; a slot while that run is active
is skipped; a slot while another run holds the cluster is refused naming it; each is written on the
schedule where the operator looks."""
import pytest
from django.core.exceptions import ValidationError
from django_q.models import Schedule

from ops.models import Run, RunSchedule
from ops.services import runs as run_service
from ops.services import schedules

from ._engine_support import driver  # noqa: F401 - fixture
from .test_patch_cluster import patching  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
MONTHLY = "0 2 8-14 * 6"  # 02:00 on the second Saturday of the month (a day-of-month range and a weekday)


def test_a_monthly_patch_window(patching, operator, driver, configmgr):
    with pytest.raises(ValidationError) as refused:
        schedules.create_schedule(operator, "CLU-B monthly", "patch-cluster", {"cluster": "CLU-B"}, MONTHLY)
    assert "confirm: web06 on hv-b01 is not highly available" in " ".join(refused.value.message_dict["params"])
    assert not RunSchedule.objects.exists()

    sched = schedules.create_schedule(operator, "CLU-B monthly", "patch-cluster",
                                      {"cluster": "CLU-B", "confirm": "web06,app04"}, MONTHLY)
    assert sched.params == {"cluster": "CLU-B", "confirm": "web06,app04", "connection": "vmm01", "scom": "scom01",
                            "configmgr": "cm01"}  # the deployment stays "the only enabled one": next month's
    assert Schedule.objects.get(pk=sched.q_schedule_id).cron == MONTHLY

    run_id = schedules.fire(sched.pk)  # the slot comes
    run = Run.objects.get(pk=run_id)
    assert run.kind == "patch-cluster" and run.schedule_id == sched.pk and run.title == "Patch CLU-B"
    assert schedules.fire(sched.pk) is None  # the next slot while it is active: skipped, no pile-up
    sched.refresh_from_db()
    assert sched.last_slot_outcome == RunSchedule.SlotOutcome.SKIPPED
    assert sched.last_slot_message == f"Run {run.pk} is still queued; this slot was skipped"
    assert Run.objects.count() == 1

    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED and "3 of 3 nodes patched" in run.message, run.message

    # an operator's own patch of CLU-B holds the cluster: the slot is refused, naming that run
    manual = run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "confirm": "web06,app04"})
    assert schedules.fire(sched.pk) is None
    sched.refresh_from_db()
    assert sched.last_slot_outcome == RunSchedule.SlotOutcome.REFUSED
    assert f"run {manual.pk} (Patch CLU-B) holds CLU-B" in sched.last_slot_message
    assert Run.objects.count() == 2
