"""The reaper: resumes runs nobody drives any more.

A run whose worker died keeps a lease that nobody renews (its heartbeat died
with it, ``lease.Heartbeat``); once it expires the reaper hands the run to a
new task. A run paused by an engine error is released with an expiry in the
future and resumed the same way (a server outage is waited out by the task
itself: ``executor.Increment.pause``).

Every django-q2 worker process runs the reaper in a loop thread
(``start_loop``, connected to django-q2's ``post_spawn`` signal in
``ops/apps.py``), every ``SLIPWAY_REAPER_SECONDS`` (2 s): a dead worker's run
is taken over within lease + 2 s, because django-q2's own scheduler only looks
every 30 s. Several loops racing for one run are harmless: a claim is a
compare-and-set, exactly one wins. The django-q2 Schedule (``slipway-reaper``)
stays as a backstop.
"""
import datetime as dt
import logging
import os
import threading
import time

from django import db
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Run
from . import executor, lease  # executor.enqueue is looked up at each call: tests replace it (tests/ops/_engine_support.py)
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


def reaper_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_REAPER_SECONDS", 2.0))


_loop = {"thread": None}
_loop_lock = threading.Lock()


def start_loop(**_signal) -> None:
    """Start this process's reaper loop (once). A django-q2 ``post_spawn`` receiver: every worker runs one."""
    with _loop_lock:
        if _loop["thread"] is not None and _loop["thread"].is_alive():
            return
        _loop["thread"] = threading.Thread(target=_reap_forever, name="slipway-reaper", daemon=True)
        _loop["thread"].start()
    log.info("reaper loop started in worker process %s (every %g s)", os.getpid(), reaper_seconds())


def _reap_forever() -> None:
    while True:
        time.sleep(reaper_seconds())
        try:
            db.close_old_connections()
            reap(reschedule=False)
        except Exception:   # a database hiccup must not end the loop: the next pass tries again
            log.exception("reaper loop pass failed")
            db.connections.close_all()


def reap(reschedule=True) -> list[int]:
    from django_q.models import Schedule  # noqa: PLC0415

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
                emit(run, "No worker has renewed this run's lease (its lease expired: the worker stopped, or "
                          "no worker was free to take its next task); another worker takes it over", "warning")
            transaction.on_commit(lambda rid=run.pk, t=token: executor.enqueue(rid, t))
        resumed.append(run.pk)
    if resumed:
        log.info("reaper resumed runs %s", resumed)
    if reschedule:   # due again on the scheduler's next pass
        Schedule.objects.filter(name=REAPER_NAME).update(next_run=now + dt.timedelta(seconds=5))
    return resumed
