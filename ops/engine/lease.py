"""Leases on runs: at most one worker advances a run at a time.

Every lease operation is one compare-and-set UPDATE on the run row, so it is
atomic on SQLite and PostgreSQL alike. A lease has an owner (a *token*) and an
expiry. The token travels with the django-q2 task (``advance_run(run_id,
token)``): the task that ends a slice hands the lease to a fresh token and
enqueues the next task with it, so exactly one chain of tasks drives a run; a
duplicate or stale task cannot take the lease and simply returns.

The lease is short (``SLIPWAY_LEASE_SECONDS``, 8 s) and a ``Heartbeat`` thread
renews it every quarter of that while the task lives, even while the task waits
on a slow server. A worker that dies stops beating: its lease expires within
8 s and the reaper loop of any live worker (``reaper.start_loop``, every 2 s)
hands the run to a new task. Every renewal is a compare-and-set on the owner,
so a task whose lease was taken over can never renew or commit again.
"""
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid

from django import db
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from ..models import Run


class LeaseLost(Exception):
    """This worker no longer holds the run's lease; it must stop touching the run."""


log = logging.getLogger("slipway.engine")


def lease_seconds() -> float:
    """How long a lease lasts without a heartbeat: SLIPWAY_LEASE_SECONDS (8 s)."""
    return float(getattr(settings, "SLIPWAY_LEASE_SECONDS", 8))


def task_budget() -> float:
    """How long a task's heartbeat keeps its lease at most: a task stuck longer than any slice, pause
    and call could take loses its run (and django-q2 kills it at its ``timeout``)."""
    return max(10.0, float(settings.Q_CLUSTER.get("timeout", 120)) - 10)


class Heartbeat:
    """Renews a task's lease every quarter of ``lease_seconds`` while the task lives, from a thread
    (so a task blocked in a call to a slow server keeps its run). Stops when the lease is no longer
    this token's (handed over, released, taken over) or after ``task_budget``."""

    def __init__(self, run_id: int, token: str):
        self.run_id, self.token = run_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"slipway-lease-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self):
        end = time.monotonic() + task_budget()
        try:
            while not self._stop.wait(lease_seconds() / 4) and time.monotonic() < end:
                try:
                    if Run.objects.filter(pk=self.run_id, lease_owner=self.token).update(lease_expires_at=_expiry()) != 1:
                        return   # not ours any more: nothing to keep
                except DatabaseError as exc:   # a busy database: the next beat tries again, well inside the lease
                    log.warning("run %s: lease heartbeat failed: %s", self.run_id, exc)
        finally:
            db.connections.close_all()


def new_token() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _expiry(seconds=None):
    return timezone.now() + dt.timedelta(seconds=seconds if seconds is not None else lease_seconds())


def take(run_id: int, token: str) -> bool:
    """Take the lease if it is free, expired, or already ours."""
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=token)
    return Run.objects.filter(pk=run_id).filter(free).update(lease_owner=token, lease_expires_at=_expiry()) == 1


def renew(run_id: int, token: str) -> None:
    """Extend our lease; raise LeaseLost if it is not ours any more.

    Called first in every transaction that commits a step, so a worker that
    lost its lease (it stalled past the expiry and another took over) can never
    commit anything: on PostgreSQL the UPDATE also locks the run row until commit.
    """
    if Run.objects.filter(pk=run_id, lease_owner=token).update(lease_expires_at=_expiry()) != 1:
        raise LeaseLost(f"run {run_id}: lease {token} lost")


def hand_over(run_id: int, token: str, new: str) -> None:
    """Pass our lease to the next task of the chain (``new`` token)."""
    if Run.objects.filter(pk=run_id, lease_owner=token).update(lease_owner=new, lease_expires_at=_expiry()) != 1:
        raise LeaseLost(f"run {run_id}: lease {token} lost")


def release(run_id: int, token: str, *, until=None) -> bool:
    """Give the lease up. With ``until`` the run stays unclaimed until then
    (a paused run: the reaper resumes it once that time has passed)."""
    return Run.objects.filter(pk=run_id, lease_owner=token).update(lease_owner="", lease_expires_at=until) == 1


def claim_free(run_id: int, token: str, released_ok: bool = False) -> bool:
    """Take the lease for a new chain only when nobody drives the run
    (used by operator actions and the reaper; a live chain is left alone).
    ``released_ok``: also a run released until later (paused after an engine error): an
    operator's action does not wait for that pause to end."""
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    if released_ok:
        free |= Q(lease_owner="")
    return Run.objects.filter(pk=run_id).filter(free).update(lease_owner=token, lease_expires_at=_expiry()) == 1
