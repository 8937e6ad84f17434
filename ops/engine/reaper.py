"""The reaper: resumes runs nobody drives any more.

A run whose worker died keeps a lease that nobody renews; once it expires the
reaper hands the run to a new task. A run paused by an engine error is released
with an expiry in the future and resumed the same way (a server outage is
waited out by the task itself: ``executor.Increment.pause``). The reaper is a
django-q2 Schedule (``slipway-reaper``); django-q2's scheduler looks at
schedules every 30 s, and each reaping makes the schedule due again at once,
so it runs on every scheduler pass (about every 30 s), not once a minute.
"""
import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Run
from . import lease
from .events import emit

log = logging.getLogger("slipway.engine")
REAPER_NAME = "slipway-reaper"
REAPER_FUNC = "ops.engine.tasks.reap_expired_leases"


def ensure_reaper_schedule() -> None:
    from django_q.models import Schedule  # noqa: PLC0415

    Schedule.objects.get_or_create(
        name=REAPER_NAME,
        defaults={"func": REAPER_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1,
                  "next_run": timezone.now()},
    )


def reap() -> list[int]:
    from django_q.models import Schedule  # noqa: PLC0415

    from .executor import enqueue  # noqa: PLC0415

    now = timezone.now()
    resumed = []
    stale = Run.objects.filter(state__in=(Run.State.QUEUED, Run.State.RUNNING, Run.State.PAUSED)).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    for run in stale.only("pk", "state", "lease_owner", "last_seq"):
        token = lease.new_token()
        with transaction.atomic():
            if not lease.claim_free(run.pk, token):
                continue
            if run.state != Run.State.PAUSED and run.lease_owner:
                emit(run, "The worker driving this run stopped answering (its lease expired); resuming", "warning")
            transaction.on_commit(lambda rid=run.pk, t=token: enqueue(rid, t))
        resumed.append(run.pk)
    if resumed:
        log.info("reaper resumed runs %s", resumed)
    # due again on the scheduler's next pass
    Schedule.objects.filter(name=REAPER_NAME).update(next_run=now + dt.timedelta(seconds=5))
    return resumed
