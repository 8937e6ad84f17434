"""The schedules Slipway keeps for itself in django-q2 (ops/system_schedules.py)."""
import pytest

pytestmark = pytest.mark.django_db


def test_the_lease_reaper_is_scheduled_once():
    from django_q.models import Schedule

    from ops.engine.reaper import REAPER_FUNC
    from ops.system_schedules import ensure_system_schedules

    Schedule.objects.create(name="slipway: resume runs whose lease expired", func=REAPER_FUNC,
                            schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)  # what older versions left
    ensure_system_schedules()
    ensure_system_schedules()
    assert Schedule.objects.filter(func=REAPER_FUNC).count() == 1
    assert Schedule.objects.filter(func="ops.inventory.sync.sync_all").count() == 1


def test_checkpoint_expiry_runs_every_hour_in_a_new_and_in_an_existing_database():
    import importlib
    import pydoc

    from django.apps import apps
    from django_q.models import Schedule

    from ops.services.expiry import expire_checkpoints
    from ops.system_schedules import ensure_system_schedules

    Schedule.objects.all().delete()
    importlib.import_module("ops.migrations.0010_checkpoint_expiry_schedule").create(apps, None)  # an existing database
    ensure_system_schedules()  # and again, as the demo does: still one
    sched = Schedule.objects.get(func="ops.services.expiry.expire_checkpoints")
    assert (sched.schedule_type, sched.minutes, sched.repeats) == (Schedule.MINUTES, 60, -1)
    assert pydoc.locate(sched.func) is expire_checkpoints  # how django-q2 finds the function
