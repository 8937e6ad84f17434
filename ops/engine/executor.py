"""The executor: advances one run by small increments under its lease.

One django-q2 task (``tasks.advance_run(run_id, token)``) takes the run's lease
and then loops over *increments* for up to ``SLIPWAY_ENGINE_SLICE_SECONDS``
(default 8 s, well under Q_CLUSTER's 120 s timeout): poll the run's in-flight
VMM jobs in one round trip, start more steps up to the VMM server's bound,
cross a junction when every step of the phase is final. Every increment that
changes anything commits the steps' new state together with their RunEvent
rows, and renews the lease first in that same transaction, so a worker that
lost its lease can never commit. At the end of the slice the task hands the
lease to a fresh token and enqueues the next task on commit. Keeping the lease
for a few seconds instead of one task per step keeps latency low (a finished
job is noticed within ``SLIPWAY_ENGINE_POLL_SECONDS``) without a queue round
trip per step; the durable unit is still the increment, so a worker killed at
any point loses nothing: the reaper hands the run to a new task once the lease
expires, and every action checks the fabric's real state before it acts.

Concurrency bound: a step that starts a VMM job first reserves a slot
(``job_id = 'reserved'``) in a transaction that counts the RUNNING job steps of
every active run on that connection, so at most ``max_concurrent_jobs`` jobs
that Slipway started run on one VMM server at once. A reservation found at
the start of an increment belongs to a crashed attempt: its action runs again
(it finds the checkpoint or the stopped VM and does not act twice).
"""
import datetime as dt
import logging
import os
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..dbutil import update_rows
from ..fabric import errors
from ..models import Run, ServerConnection, Step
from ..runbooks import registry
from ..runbooks.base import StepContext
from ..runbooks.registry import phases_of
from . import lease, waits
from .blocking import Blocking, pause_seconds  # noqa: F401 - re-exported for tests
from .events import Event, emit_many
from .junctions import Junctions
from .steps import GROUP_WINDOW, RESERVED, TRANSIENT, StepWork, poll_seconds  # noqa: F401 - re-exported for tests

log = logging.getLogger("slipway.engine")



def slice_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_ENGINE_SLICE_SECONDS", 8.0))


def enqueue(run_id: int, token: str) -> None:
    """Queue the next task of a run's chain (called on commit)."""
    from django_q.tasks import async_task  # noqa: PLC0415

    async_task("ops.engine.tasks.advance_run", run_id, token, task_name=f"run-{run_id}-{token[-6:]}", save=False)


def wake(run_id: int) -> bool:
    """Start a new chain for a run nobody drives (after an operator action).
    A live chain is left alone: it sees the change on its next increment."""
    token = lease.new_token()
    if lease.claim_free(run_id, token, released_ok=True):
        transaction.on_commit(lambda: enqueue(run_id, token))
        return True
    return False


def advance(run_id: int, token: str) -> str:
    if not lease.take(run_id, token):
        return "not-leased"
    log.debug("run %s: task %s runs in worker process %s", run_id, token, os.getpid())
    with lease.Heartbeat(run_id, token):
        return _advance(run_id, token)


def _advance(run_id: int, token: str) -> str:
    deadline = time.monotonic() + slice_seconds()
    engine = Increment(run_id, token)
    try:
        while True:
            try:
                delay = engine.step()
            except TRANSIENT as exc:
                if not engine.giving_up():
                    raise
                engine.give_up(exc)   # aborting: what needs that server is left undone, the rest goes on
                delay = 0
            else:
                if delay is not None:
                    engine.answered()
            if delay is None:
                return "stopped"
            if time.monotonic() + delay >= deadline:
                engine.hand_over()
                return "handed-over"
            if delay:
                time.sleep(delay)
    except lease.LeaseLost:
        log.warning("run %s: lease lost, stopping this task", run_id)
        return "lease-lost"
    except TRANSIENT as exc:
        return engine.blocked(exc)
    except Exception as exc:  # a bug must not hot-loop: pause, the reaper retries later
        log.exception("run %s: engine error", run_id)
        return engine.engine_error(exc)


class Increment(Blocking, StepWork, Junctions):
    def __init__(self, run_id, token):
        self.run_id = run_id
        self.token = token
        self.last_progress_event = 0.0
        self.dirty = False
        self.poll_delay = poll_seconds()
        self._conns = {}
        self.shared = {}
        self.ended = []
        self.imminent = None

    # -- helpers ---------------------------------------------------------------
    def load(self):
        self.run = Run.objects.select_related("connection").get(pk=self.run_id)
        self.rb = registry.get(self.run.kind)
        self.eng = self.run.context.setdefault("engine", {})
        self.phases = phases_of(self.run)
        return self.run

    def phase_obj(self, name):
        return next(p for p in self.phases if p.name == name)

    def other_connections(self) -> tuple[dict, dict]:
        """The run's other connections by kind, as its runbook names them (``connection_params``):
        kind -> ServerConnection or None (gone), and kind -> the name the run was started with."""
        names = {kind: self.run.params.get(param) or "" for kind, param in self.rb.connection_params.items()}
        for kind, name in names.items():
            if name and (kind, name) not in self._conns:
                self._conns[(kind, name)] = ServerConnection.objects.filter(kind=kind, name=name).first()
        return {k: self._conns.get((k, n)) for k, n in names.items() if n}, names

    def scom_connection(self):
        return self.other_connections()[0].get("scom")

    def check_connections(self):
        """The VMM connection the run uses must still exist and be enabled: else it waits for the
        operator, saying which and why (a deleted or disabled connection never pauses a run silently).
        The SCOM connection is checked by the steps that use it (``StepContext.scom``)."""
        conn = self.run.connection
        name = self.run.params.get("connection") or "?"
        if conn is None:
            raise errors.ConnectionUnusable(name, "no VMM connection of that name exists any more")
        if not conn.enabled:
            raise errors.ConnectionUnusable(conn.name, "the connection is disabled; enable it, then retry the run")

    def ctx(self, step):
        """A step's context; every step of one increment shares ``cache``: what this increment
        read from the fabric (e.g. the poll's reading of the VMs serves the next steps' checks)."""
        conns, names = self.other_connections()
        return StepContext(self.run.pk, self.run.params, self.run.context, step.pk, step.action, step.target,
                           step.target_id, step.data, self.run.connection, conns.get("scom"), self.run.created_at,
                           cache=self.shared, run_uid=str(self.run.uid), scom_name=names.get("scom", ""),
                           connections=conns, connection_names=names)

    def progress(self):
        total = self.rb.expected_steps(self.run)
        names = [p.name for p in self.phases]
        if total is None and len(names) > 1 and self.run.phase in names:
            # steps are planned phase by phase (a patch run's nodes): count phases, not the steps known so far
            here = self.run.steps.filter(phase=self.run.phase)
            planned, final = here.count(), here.filter(state__in=Step.FINAL_STATES).count()
            return min(99, int(100 * (names.index(self.run.phase) + (final / planned if planned else 0)) / len(names)))
        total = total or 0
        done = self.run.steps.filter(state__in=Step.FINAL_STATES).count()
        total = max(total, self.run.steps.count(), 1)
        return min(99, int(100 * done / total))

    def commit(self, *, run_fields=(), steps=(), new_steps=(), events=(), release=False, until=None, hand_to=None,
               progress=True):
        run = self.run
        with transaction.atomic():
            lease.renew(run.pk, self.token)
            if new_steps:
                Step.objects.bulk_create(new_steps)
            groups = {}
            for step, fields in steps:  # one UPDATE per set of fields, not one per step
                groups.setdefault(tuple(sorted(fields)), {})[step.pk] = step
            for fields, by_pk in groups.items():
                update_rows(Step, list(by_pk.values()), fields)
            fields = set(run_fields)
            if progress and run.state == Run.State.RUNNING:
                run.progress = self.progress()
                fields.add("progress")
            if fields:
                run.save(update_fields=sorted(fields))
            emit_many(run, [Event(e.message, e.level, e.step, run.progress if e.progress is None else e.progress, e.data)
                            for e in events])
            if hand_to:
                lease.hand_over(run.pk, self.token, hand_to)
                transaction.on_commit(lambda: enqueue(run.pk, hand_to))
            elif release:
                lease.release(run.pk, self.token, until=until)

    def context_field(self):
        dirty, self.dirty = self.dirty, False
        return ["context"] if dirty else []

    def hand_over(self):
        new = lease.new_token()
        with transaction.atomic():
            lease.hand_over(self.run_id, self.token, new)
            transaction.on_commit(lambda: enqueue(self.run_id, new))

    # -- one increment -----------------------------------------------------------------
    def step(self):
        """Do one increment; return the delay before the next (0: at once), or None to stop."""
        self.shared = {}
        run = self.load()
        if run.state in Run.FINAL_STATES or run.state == Run.State.WAITING:
            lease.release(run.pk, self.token)
            return None
        if not run.phase and (run.cancel_requested or run.abort_requested):
            return self.finish([Event("Stopped before it began: nothing was done", "warning")])
        if not run.abort_requested:
            self.check_connections()
        if run.state == Run.State.QUEUED or (run.state == Run.State.PAUSED and run.paused_since is None):
            first = run.state == Run.State.QUEUED
            run.state = Run.State.RUNNING
            fields = ["state"]
            if first and not run.started_at:
                run.started_at = timezone.now()
                fields.append("started_at")
            self.commit(run_fields=fields, events=[Event("Run started" if first else "Run resumed")])
            return 0
        if not run.phase:
            return self.begin_phase(self.next_phase(None))
        steps = list(run.steps.filter(phase=run.phase).order_by("index"))
        if (run.cancel_requested or run.abort_requested) and not self.eng.get("cancel_seen"):
            self.cancel_pending(steps)
            return 0
        changed = self.poll(steps)
        if self.ended and self.imminent is not None and self.imminent <= GROUP_WINDOW:
            time.sleep(self.imminent + 0.01)
            changed = self.poll(steps) or changed
        changed = self.start(steps) or changed
        changed = self.settle_ended() or changed
        if all(s.state in Step.FINAL_STATES for s in steps):
            return self.junction(steps)
        if changed:
            return 0
        if any(s.state == Step.State.RUNNING and not waits.is_waiting(s) for s in steps):
            return self.poll_delay
        delay = self.next_retry(steps) if any(s.state == Step.State.PENDING for s in steps) else None
        wait = waits.next_due_in(steps)
        if wait is not None:
            delay = wait if delay is None else min(delay, wait)
            if delay > waits.HOLD_WORKER_SECONDS:
                return self.rest_until(delay)
        return min(0.5, delay if delay is not None else 0.5)

    def rest_until(self, delay: float):
        """Only waits are left, none due soon: give the worker back until the first is due (the reaper
        hands the run to a worker then; an operator's cancel or abort wakes it at once)."""
        with transaction.atomic():
            lease.renew(self.run.pk, self.token)
            lease.release(self.run.pk, self.token, until=timezone.now() + dt.timedelta(seconds=delay))
        return None

    def next_retry(self, steps):
        now = time.time()
        waits = [s.data.get("retry_at", 0) - now for s in steps if s.state == Step.State.PENDING]
        return max(poll_seconds(), min(waits)) if waits else 0.5

    def cancel_pending(self, steps):
        self.eng["cancel_seen"] = True
        phase = self.phase_obj(self.run.phase)
        changed = []
        if not phase.always and not self.eng.get("compensating"):
            for s in steps:
                if s.state == Step.State.PENDING or (s.state == Step.State.RUNNING and s.job_id in (RESERVED, waits.WAIT)):
                    s.state, s.job_id, s.finished_at = Step.State.CANCELLED, "", timezone.now()
                    changed.append((s, ("state", "job_id", "finished_at")))
        running = sum(1 for s in steps if s.state == Step.State.RUNNING)
        verb = "Aborting" if self.run.abort_requested else "Cancelling"
        msg = f"{verb}: {len(changed)} steps of phase '{phase.title}' will not run"
        if running:
            msg += (f"; waiting for {running} running step{'s' if running != 1 else ''} to finish (a VMM job "
                    f"that does not end fails after the job timeout, {getattr(self.run.connection, 'job_timeout', 3600)} s)")
        self.commit(run_fields=["context"], steps=changed, events=[Event(msg, "warning")])

