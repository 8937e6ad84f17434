"""When a server a run needs does not answer, or cannot be used: pause, or wait for the operator.

Split from ``executor.py``; ``Increment`` mixes this in.

- An *outage* (``errors.is_outage``: no answer in time, connection refused or dropped) pauses the
  run: the task keeps the lease (its heartbeat renews it), waits ``SLIPWAY_ENGINE_PAUSE_SECONDS``
  and tries again. The log says so once when the pause begins and once when the server answers
  again; meanwhile the run row carries ``paused_since`` and ``next_try_at`` (the run page shows
  "paused since ..., next try in ...").
- An outage longer than the run's limit (``outage_minutes``, 15 by default), or an error that
  waiting cannot fix (a name that does not resolve, refused credentials, a connection deleted or
  disabled), puts the run in "waiting for the operator": retry (``services.runs.retry_run``) or
  abort.
- An aborted run does not wait for anything: a step that needs a server that cannot be reached
  fails with that server's error (``give_up``), the clean-up goes on with what it still can do, and
  the outcome names what was left undone.
"""
import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..fabric import errors
from ..models import Run, Step
from . import lease
from .events import Event, emit_many
from .steps import RESERVED

log = logging.getLogger("slipway.engine")
DEFAULT_OUTAGE_MINUTES = 15


def pause_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_ENGINE_PAUSE_SECONDS", 10.0))


def outage_limit(run) -> float:
    """Seconds a run waits out an outage before it waits for the operator (the run's ``outage_minutes``)."""
    minutes = run.params.get("outage_minutes") or getattr(settings, "SLIPWAY_OUTAGE_MINUTES", DEFAULT_OUTAGE_MINUTES)
    return float(minutes) * 60


def _hms(when) -> str:
    return f"{when:%H:%M:%S} UTC"


class Blocking:
    def blocked(self, exc: errors.FabricError) -> str:
        """A server the run needs did not answer or cannot be used: pause or wait for the operator."""
        try:
            run = self.load()
        except Run.DoesNotExist:
            return "gone"
        now = timezone.now()
        if not errors.is_outage(exc):
            return self.wait_for_operator(
                f"{exc}. Waiting does not fix this: correct it (the host name, the credentials, the connection), "
                "then retry the run; or abort it")
        since = run.paused_since or now
        limit = outage_limit(run)
        if (now - since).total_seconds() >= limit:
            return self.wait_for_operator(
                f"the server has not answered for {(now - since).total_seconds() / 60:.0f} min "
                f"(the run's outage limit is {limit / 60:g} min): {exc}. Retry the run when the server answers, "
                "or abort it")
        wait = pause_seconds()
        nxt = now + timezone.timedelta(seconds=wait)
        give_up_at = since + timezone.timedelta(seconds=limit)
        events = []
        if run.paused_since is None:   # one line when the pause begins, not one per try
            events.append(Event(f"{exc} — the run is paused: it tries again every {wait:g} s and waits for the "
                                f"operator if the server has not answered by {_hms(give_up_at)}", "warning"))
        run.state, run.paused_since, run.next_try_at = Run.State.PAUSED, since, nxt
        run.message = (f"Paused since {_hms(since)}: {exc}. Next try at {_hms(nxt)}; if the server has not "
                       f"answered by {_hms(give_up_at)} the run waits for the operator.")[:2000]
        try:
            with transaction.atomic():
                lease.renew(run.pk, self.token)
                self._unreserve(run)
                run.save(update_fields=["state", "paused_since", "next_try_at", "message"])
                emit_many(run, events)
            self._sleep_unless_steered(run.pk, wait)   # the heartbeat keeps the lease meanwhile
            self.hand_over()
        except lease.LeaseLost:
            return "lease-lost"
        return "paused"

    def wait_for_operator(self, why: str) -> str:
        run = self.run
        msg = f"Waiting for the operator: {why}"
        run.state, run.paused_since, run.next_try_at, run.message = Run.State.WAITING, None, None, msg[:2000]
        try:
            with transaction.atomic():
                lease.renew(run.pk, self.token)
                self._unreserve(run)
                run.save(update_fields=["state", "paused_since", "next_try_at", "message"])
                emit_many(run, [Event(msg, "warning")])
                lease.release(run.pk, self.token)
        except lease.LeaseLost:
            return "lease-lost"
        return "waiting"

    def engine_error(self, exc: Exception) -> str:
        """A bug must not hot-loop: the run pauses and the reaper resumes it after the pause (said once)."""
        try:
            run = self.load()
        except Run.DoesNotExist:
            return "gone"
        wait = pause_seconds()
        now = timezone.now()
        until = now + timezone.timedelta(seconds=wait)
        why = f"engine error: {exc.__class__.__name__}: {exc}"
        events = [] if run.paused_since else [Event(f"{why} — the run is paused and tries again every {wait:g} s", "warning")]
        run.state, run.paused_since, run.next_try_at = Run.State.PAUSED, run.paused_since or now, until
        run.message = f"Paused since {_hms(run.paused_since)}: {why}. Next try at {_hms(until)}."[:2000]
        try:
            with transaction.atomic():
                lease.renew(run.pk, self.token)
                self._unreserve(run)
                run.save(update_fields=["state", "paused_since", "next_try_at", "message"])
                emit_many(run, events)
                lease.release(run.pk, self.token, until=until)
        except lease.LeaseLost:
            return "lease-lost"
        return "error"

    def answered(self) -> None:
        """An increment went through while the run was paused: the pause is over (said once)."""
        run = self.run
        if run.state != Run.State.PAUSED or run.paused_since is None:
            return
        now = timezone.now()
        gone = (now - run.paused_since).total_seconds()
        run.state, run.paused_since, run.next_try_at, run.message = Run.State.RUNNING, None, None, ""
        run.started_at = run.started_at or now   # paused before its first step
        self.commit(run_fields=["state", "paused_since", "next_try_at", "message", "started_at"],
                    events=[Event(f"Run resumed: the servers answer again (paused for {gone:.0f} s)", "success")])

    def giving_up(self) -> bool:
        return bool(getattr(self, "run", None) is not None and self.run.abort_requested)

    def give_up(self, exc: errors.FabricError) -> None:
        """Aborting: the steps of this phase still open need a server that cannot be reached; they fail
        with its error and the run goes on to the rest of its clean-up."""
        run = self.run
        now = timezone.now()
        changed, events = [], []
        for s in run.steps.filter(phase=run.phase).exclude(state__in=Step.FINAL_STATES):
            s.state, s.job_id, s.finished_at, s.error = Step.State.FAILED, "", now, str(exc)
            changed.append((s, ("state", "job_id", "finished_at", "error")))
            events.append(Event(f"{s.target}: not done: {exc}", "error", s,
                                data={"step": s.pk, "state": s.state, "target": s.target, "action": s.action}))
        self.commit(steps=changed, events=events)

    @staticmethod
    def _sleep_unless_steered(run_id, seconds) -> None:
        """Wait out the pause, unless the operator acted meanwhile (an abort or cancel resumes the run
        at once: its row is no longer paused)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            if not Run.objects.filter(pk=run_id, state=Run.State.PAUSED).exists():
                return

    @staticmethod
    def _unreserve(run) -> None:
        """A reservation of a step that never reached the server is given back."""
        Step.objects.filter(run=run, state=Step.State.RUNNING, job_id=RESERVED).update(state=Step.State.PENDING, job_id="")
