"""The schedules Slipway itself needs: inventory sync, checkpoint expiry and the lease reaper.

Migrations create them in a database (``ops/migrations/0002_system_schedules.py``,
``ops/migrations/0010_checkpoint_expiry_schedule.py``, each with its own frozen copy:
a migration must do the same whatever this list becomes); ``ensure_system_schedules``
brings a database up to this list (the demo calls it).
"""
from django_q.models import Schedule

from .engine.reaper import ensure_reaper_schedule

SYSTEM_SCHEDULES = [
    # (name, func, minutes)
    ("slipway: inventory sync", "ops.inventory.sync.sync_all", 5),
    # plans' maximum checkpoint age: clean-up runs per subscription (ops/services/expiry.py)
    ("slipway: checkpoint expiry", "ops.services.expiry.expire_checkpoints", 60),
]
# The lease reaper is owned by the engine (ops.engine.reaper, schedule "slipway-reaper"); an
# earlier version also created this second schedule for the same function, so the reaper ran twice.
LEGACY_SCHEDULES = ["slipway: resume runs whose lease expired"]


def ensure_system_schedules() -> None:
    for name, func, minutes in SYSTEM_SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
    Schedule.objects.filter(name__in=LEGACY_SCHEDULES).delete()
    ensure_reaper_schedule()
