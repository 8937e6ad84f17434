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
import logging
import os
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..dbutil import update_rows
from ..fabric import errors
from ..inventory.refresh import refresh_run_targets
from ..models import Run, ServerConnection, Step
from ..runbooks import registry
from ..runbooks.base import StepContext
from . import lease
from .blocking import Blocking, pause_seconds  # noqa: F401 - re-exported for tests
from .events import Event, emit_many
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


class Increment(Blocking, StepWork):
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
        return self.run

    def phase_obj(self, name):
        return next(p for p in self.rb.phases if p.name == name)

    def scom_connection(self):
        name = self.run.params.get("scom")
        if not name:
            return None
        if name not in self._conns:
            self._conns[name] = ServerConnection.objects.filter(kind="scom", name=name).first()
        return self._conns[name]

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
        return StepContext(self.run.pk, self.run.params, self.run.context, step.pk, step.action, step.target,
                           step.target_id, step.data, self.run.connection, self.scom_connection(), self.run.created_at,
                           cache=self.shared, run_uid=str(self.run.uid), scom_name=self.run.params.get("scom") or "")

    def progress(self):
        total = self.rb.expected_steps(self.run) or 0
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
            return self.begin_phase(self.rb.phases[0])
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
        if any(s.state == Step.State.RUNNING for s in steps):
            return self.poll_delay
        return min(0.5, self.next_retry(steps))

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
                if s.state == Step.State.PENDING or (s.state == Step.State.RUNNING and s.job_id == RESERVED):
                    s.state, s.job_id, s.finished_at = Step.State.CANCELLED, "", timezone.now()
                    changed.append((s, ("state", "job_id", "finished_at")))
        running = sum(1 for s in steps if s.state == Step.State.RUNNING)
        verb = "Aborting" if self.run.abort_requested else "Cancelling"
        msg = f"{verb}: {len(changed)} steps of phase '{phase.title}' will not run"
        if running:
            msg += (f"; waiting for {running} running step{'s' if running != 1 else ''} to finish (a VMM job "
                    f"that does not end fails after the job timeout, {getattr(self.run.connection, 'job_timeout', 3600)} s)")
        self.commit(run_fields=["context"], steps=changed, events=[Event(msg, "warning")])

    # -- junctions and the end -----------------------------------------------------------
    def junction(self, steps):
        run, eng = self.run, self.eng
        phase = self.phase_obj(run.phase)
        failed = [s for s in steps if s.state == Step.State.FAILED]
        # with on_error=wait every failure waits for the operator, the clean-up phases' too (a VM not
        # started again is the failure most worth a retry); not once the operator said stop or abort
        waits = self.rb.on_error(run) == "wait" and not run.cancel_requested and not run.abort_requested and (
            phase.always or not eng.get("failure"))
        if failed and waits:
            run.state = Run.State.WAITING
            names = ", ".join(s.target for s in failed[:10])
            steps = "1 step" if len(failed) == 1 else f"{len(failed)} steps"
            msg = (f"Waiting for the operator: {steps} of '{phase.title}' failed ({names}): "
                   f"{failed[0].error.rstrip('.')}. Retry or skip the failed steps, or abort the run.")
            run.message = msg[:2000]
            self.commit(run_fields=["state", "context", "message"], events=[Event(msg, "warning")], release=True,
                        progress=False)
            return None
        if failed and not eng.get("failure"):
            eng["failure"] = failed[0].error
            eng["failed_targets"] = [s.target for s in failed]
        stopping = bool(eng.get("failure")) or run.cancel_requested or run.abort_requested
        names = [p.name for p in self.rb.phases]
        rest = self.rb.phases[names.index(run.phase) + 1:]
        notes = []
        if stopping:
            rest = [p for p in rest if p.always]
            if rest and not eng.get("compensating"):
                eng["compensating"] = True
                why = "aborted" if run.abort_requested else "cancelled" if run.cancel_requested else "a step failed"
                notes.append(Event(f"Compensation ({why}): " + ", then ".join(p.title for p in rest), "warning"))
        return self.begin_phase(rest[0] if rest else None, notes)

    def refresh_targets(self) -> list:
        """Re-read the VMs the run acted on before it is final, so what a watcher reloads shows the result."""
        try:
            refresh_run_targets(self.run)
        except errors.FabricError as exc:
            return [Event(f"The VMs this run acted on could not be re-read; the next inventory sync shows them: {exc}",
                          "warning")]
        return []

    def begin_phase(self, phase, notes=()):
        run = self.run
        if phase is None:
            return self.finish(list(notes))
        plan = self.rb.plan(phase, run)
        base = (run.steps.order_by("-index").values_list("index", flat=True).first() or 0) + 1
        comp = bool(self.eng.get("compensating"))
        new = [Step(run=run, index=base + i, phase=phase.name, action=sp.action, target=sp.target[:255],
                    target_id=sp.target_id, data=sp.data, compensation=comp) for i, sp in enumerate(plan.steps)]
        run.phase = phase.name
        k = [p.name for p in self.rb.phases].index(phase.name) + 1
        events = list(notes) + [Event(f"Phase {k}/{len(self.rb.phases)}: {phase.title} — {len(new)} step{'' if len(new) == 1 else 's'}", "info",
                                      data={"phase": phase.name, "steps": len(new)})]
        events += [Event(msg, level) for level, msg in plan.notes]
        self.commit(run_fields=["phase", "context"], new_steps=new, events=events)
        return 0

    def finish(self, notes):
        run, eng = self.run, self.eng
        notes = list(notes) + self.refresh_targets()
        if run.abort_requested:
            state = Run.State.FAILED
        elif run.cancel_requested:
            state = Run.State.CANCELLED
        elif eng.get("failure"):
            state = Run.State.FAILED
        else:
            state = Run.State.SUCCEEDED
        run.state, run.finished_at = state, timezone.now()
        steps = list(run.steps.order_by("index"))
        run.message = self.rb.summarize(run, steps, state)
        if run.abort_requested:
            run.message = f"Aborted by {run.abort_by or 'the operator'}. {run.message}"
        # a failure the operator chose to skip is not a success to keep quiet about
        passed_over = [s for s in steps if s.state == Step.State.SKIPPED and s.result.get("errors")]
        if passed_over:
            names = ", ".join(f"{s.target} ({s.action})" for s in passed_over[:20])
            run.message += f" Skipped by the operator after failing: {names}{' …' if len(passed_over) > 20 else ''}."
        if state == Run.State.SUCCEEDED:
            run.progress = 100
        level = {"succeeded": "warning" if passed_over else "success", "cancelled": "warning"}.get(state, "error")
        run.paused_since = run.next_try_at = None
        self.commit(run_fields=["state", "finished_at", "message", "progress", "context", "phase", "paused_since",
                                "next_try_at"],
                    events=notes + [Event(run.message, level, data={"state": state, "final": True})],
                    release=True, progress=False)
        return None
