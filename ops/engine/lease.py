"""Leases on runs: at most one worker advances a run at a time.

Every lease operation is one compare-and-set UPDATE on the run row, so it is
atomic on SQLite and PostgreSQL alike. A lease has an owner (a *token*) and an
expiry. The token travels with the django-q2 task (``advance_run(run_id,
token)``): the task that ends a slice hands the lease to a fresh token and
enqueues the next task with it, so exactly one chain of tasks drives a run; a
duplicate or stale task cannot take the lease and simply returns.
"""
import datetime as dt
import os
import socket
import time
import uuid

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Run, ServerConnection


class LeaseLost(Exception):
    """This worker no longer holds the run's lease; it must stop touching the run."""


_longest_call = {"at": 0.0, "seconds": 0}


def lease_seconds() -> int:
    """How long a lease lasts: SLIPWAY_LEASE_SECONDS, and always longer than two of the slowest
    connection's calls (its operation timeout), so a task waiting on a server that stopped
    answering still holds its run when the call gives up, and pauses it instead of losing it."""
    return max(int(getattr(settings, "SLIPWAY_LEASE_SECONDS", 30)), 2 * _longest_operation_timeout() + 10)


def _longest_operation_timeout() -> int:
    now = time.monotonic()
    if now - _longest_call["at"] > 30:   # read at most every 30 s per process
        found = ServerConnection.objects.filter(enabled=True).order_by("-operation_timeout").values_list(
            "operation_timeout", flat=True).first()
        _longest_call.update(at=now, seconds=int(found or 0))
    return _longest_call["seconds"]


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


def claim_free(run_id: int, token: str) -> bool:
    """Take the lease for a new chain only when nobody drives the run
    (used by operator actions and the reaper; a live chain is left alone)."""
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    return Run.objects.filter(pk=run_id).filter(free).update(lease_owner=token, lease_expires_at=_expiry()) == 1
