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
