"""The schedules Slipway itself needs: inventory sync and the lease reaper."""
from django_q.models import Schedule

SYSTEM_SCHEDULES = [
    # (name, func, minutes)
    ("slipway: inventory sync", "ops.inventory.sync.sync_all", 5),
]
# The lease reaper is owned by the engine (ops.engine.reaper, schedule "slipway-reaper"); an
# earlier version also created this second schedule for the same function, so the reaper ran twice.
LEGACY_SCHEDULES = ["slipway: resume runs whose lease expired"]


def ensure_system_schedules() -> None:
    from .engine.reaper import ensure_reaper_schedule  # noqa: PLC0415

    for name, func, minutes in SYSTEM_SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
    Schedule.objects.filter(name__in=LEGACY_SCHEDULES).delete()
    ensure_reaper_schedule()
