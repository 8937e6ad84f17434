"""The schedules Slipway itself needs: inventory sync and the lease reaper."""
from django_q.models import Schedule

SYSTEM_SCHEDULES = [
    # (name, func, minutes)
    ("slipway: inventory sync", "ops.inventory.sync.sync_all", 5),
    ("slipway: resume runs whose lease expired", "ops.engine.tasks.reap_expired_leases", 1),
]


def ensure_system_schedules() -> None:
    for name, func, minutes in SYSTEM_SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
