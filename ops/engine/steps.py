"""The step work of an increment: polling in-flight VMM jobs and starting steps.

Split from ``executor.py``; ``Increment`` mixes this in. See that module's
docstring for the design (lease, increments, the per-server bound).
"""
import concurrent.futures
import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..dbutil import in_pool_thread
from ..fabric import bulk, errors
from ..fabric.session import session_for
from ..models import Run, ServerConnection, Step
from ..runbooks.base import Outcome
from . import lease, waits
from .events import Event

log = logging.getLogger("slipway.engine")

RESERVED = "reserved"
# errors that stop the whole increment, not one step: the server (or its connection) cannot be used.
# The run pauses (an outage) or waits for the operator (ops/engine/blocking.py).
TRANSIENT = (errors.FabricUnreachable, errors.FabricTimeout, errors.FabricAuthError, errors.ConnectionUnusable)
MAX_LATER = 120  # a target still busy after this many tries fails the step
SYNC_PARALLEL = 4  # steps without a VMM job (SCOM calls, discovery) run at most this many at once
BATCH_SIZE = 500  # steps of a batchable action (runbook.batch_<action>) done together in one call
MAX_POLL_DELAY = 0.15  # a poll is one Get-SCJob -Running (plus the jobs that just ended): cheap, so look often
# Jobs submitted together end together, give or take the submission's own spread. When a poll
# sees some ended and the rest due within this window, the engine waits for them and starts
# the next steps in one submission: otherwise the latecomers wait for the first submission.
GROUP_WINDOW = 0.12
_threads = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="slipway-step")


def poll_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_ENGINE_POLL_SECONDS", 0.05))


class StepWork:
    def vmm_connection(self):
        """The run's VMM connection; gone (deleted) is a typed error naming it, never an AttributeError."""
        if self.run.connection is None:
            raise errors.ConnectionUnusable(self.run.params.get("connection") or "?",
                                            "no VMM connection of that name exists any more")
        return self.run.connection

    # -- jobs in flight ------------------------------------------------------------------
    def poll(self, steps):
        """Look at the run's in-flight jobs. Jobs that left ``Get-SCJob -Running`` free their
        slots at once (``self.ended``): the next steps start before the ended ones are judged
        (``settle_ended``), so reading their results costs no slot time."""
        self.ended, self.imminent = [], None
        inflight = [s for s in steps if s.state == Step.State.RUNNING and s.job_id not in ("", RESERVED, waits.WAIT)]
        if not inflight:
            return False
        t = time.perf_counter()
        running = self.rb.running_jobs(self.vmm_connection(), [s.job_id for s in inflight])
        if running is None:
            jobs = self.rb.check_jobs(self.run.connection, {s.job_id: self.ctx(s) for s in inflight})
        else:
            jobs = running
            self.ended = [s for s in inflight if s.job_id not in running]
            inflight = [s for s in inflight if s.job_id in running]
        log.debug("run %s: polled %d jobs in %.3f s (%d ended)", self.run_id, len(inflight) + len(self.ended),
                  time.perf_counter() - t, len(self.ended))
        updates, events, progressed = [], [], []
        now, etas = timezone.now(), []
        for s in inflight:
            job = jobs.get(s.job_id)
            if isinstance(job, Outcome):
                self.apply(s, job, updates, events)
                continue
            if job is None:
                # the server no longer knows the job: run the action again (it checks the real state)
                s.job_id = RESERVED
                updates.append((s, ("job_id",)))
            elif job.finished:
                self.apply(s, self.rb.job_finished(self.ctx(s), job), updates, events)
            else:
                # when will the first job end? progress is linear in time on VMM and the simulator
                elapsed = (now - s.started_at).total_seconds() if s.started_at else 0.0
                if elapsed > self.run.connection.job_timeout:
                    self.apply(s, Outcome.failed(self.overdue(s, job, elapsed)), updates, events)
                    continue
                if job.progress > 0:
                    etas.append(elapsed * (100 - job.progress) / job.progress)
            if job is not None and not job.finished and job.progress != s.progress:
                progressed.append((s, job.progress))
        # job progress is written (and shown) at most once a second: polls come every 0.15 s
        if progressed and time.monotonic() - self.last_progress_event >= 1.0:
            for s, value in progressed:
                s.progress = value
                updates.append((s, ("progress",)))
            progressed = [s for s, _ in progressed]
            self.last_progress_event = time.monotonic()
            shown = ", ".join(f"{s.target} {s.progress}%" for s in progressed[:8])
            events.append(Event(f"{len(progressed)} job{'s' if len(progressed) != 1 else ''} progressing: {shown}{' …' if len(progressed) > 8 else ''}",
                                "debug", data={"steps": {str(s.pk): s.progress for s in progressed}}))
        self.imminent = min(etas) if etas else None
        # poll again when the first job should end, and at least every MAX_POLL_DELAY; a job just
        # started has shown no progress yet: look again soon, its first progress says when it ends
        # (a short job, a host's restart or resume, is then seen ending at once, not up to 0.15 s late)
        young = any(s.started_at and (now - s.started_at).total_seconds() < MAX_POLL_DELAY for s in inflight)
        if etas:
            self.poll_delay = min(MAX_POLL_DELAY, max(poll_seconds(), min(etas) * 0.9))
        else:
            self.poll_delay = poll_seconds() if young or not inflight else MAX_POLL_DELAY
        if updates or events:
            self.commit(run_fields=self.context_field(), steps=updates, events=events)
        return any(f != ("progress",) for _, f in updates)

    def overdue(self, s, job, elapsed: float) -> str:
        """Why a step whose VMM job outlived the connection's job timeout failed."""
        conn = self.run.connection
        cmdlet = s.data.get("cmdlet") or s.action
        return (f"VMM server {conn.name}: {cmdlet} on {s.target} did not finish within the job timeout of "
                f"{conn.job_timeout} s: job {job.id} is still {job.status} at {job.progress}% after {elapsed:.0f} s "
                "(it may still finish in VMM; look at the job there before retrying)")

    def settle_ended(self):
        """Judge the jobs ``poll`` saw end (their steps succeed or fail)."""
        ended, self.ended = self.ended, []
        if not ended:
            return False
        t = time.perf_counter()
        verdicts = self.rb.judge_ended(self.run.connection, {s.job_id: self.ctx(s) for s in ended})
        updates, events = [], []
        for s in ended:
            verdict = verdicts.get(s.job_id)
            if verdict is None:
                # the server no longer knows the job: run the action again (it checks the real state)
                s.job_id = RESERVED
                updates.append((s, ("job_id",)))
            elif isinstance(verdict, Outcome):
                self.apply(s, verdict, updates, events)
            else:
                self.apply(s, self.rb.job_finished(self.ctx(s), verdict), updates, events)
        log.debug("run %s: judged %d ended jobs in %.3f s", self.run_id, len(ended), time.perf_counter() - t)
        self.commit(run_fields=self.context_field(), steps=updates, events=events)
        return True

    # -- starting steps ------------------------------------------------------------------
    def start(self, steps):
        now = time.time()
        orphans = [s for s in steps if s.state == Step.State.RUNNING and s.job_id == RESERVED]
        pending = [s for s in steps if s.state == Step.State.PENDING and s.data.get("retry_at", 0) <= now]
        syncs, batched = self.pick_syncs(pending)
        due = waits.due(steps, now)  # steps waiting for a condition whose next look is due
        busy = {s.target_id for s in steps if s.state == Step.State.RUNNING and s.target_id}
        wanted = []
        for s in pending:
            if s.action in self.rb.job_actions and not (s.target_id and s.target_id in busy):
                wanted.append(s)
                busy.add(s.target_id)
        granted = self.reserve(wanted) if wanted else []
        singles = orphans + granted + syncs + due
        if not singles and not batched:
            return False
        t = time.perf_counter()
        contexts = {s.pk: self.ctx(s) for s in singles + batched}
        if len(singles) > 1:
            self.shared.update(self.prefetch([contexts[s.pk] for s in singles]))
        futures = {s.pk: _threads.submit(in_pool_thread, self.act, contexts[s.pk]) for s in singles}
        batch_future = (_threads.submit(in_pool_thread, self.act_batch, [contexts[s.pk] for s in batched])
                        if batched else None)
        for s in syncs + batched:
            s.state, s.started_at, s.attempts = Step.State.RUNNING, timezone.now(), s.attempts + 1
        transient = None
        outcomes = {}
        for s in singles:
            try:
                outcomes[s.pk] = futures[s.pk].result()
            except TRANSIENT as exc:
                transient = transient or exc
        if batch_future is not None:
            try:
                outcomes.update(zip([s.pk for s in batched], batch_future.result()))
            except TRANSIENT as exc:
                transient = transient or exc
        t_act = time.perf_counter()
        if transient is None:
            try:
                self.submit([s for s in singles if s.pk in outcomes], outcomes)
            except TRANSIENT as exc:
                transient = exc
        log.debug("run %s: started %d steps (%d batched): read+act %.3f s, submit %.3f s", self.run_id, len(singles),
                  len(batched), t_act - t, time.perf_counter() - t_act)
        updates, events = [], []
        for s in singles + batched:
            if s.pk in outcomes and outcomes[s.pk].kind != "submit":
                self.apply(s, outcomes[s.pk], updates, events)
        if updates or events:
            self.commit(run_fields=self.context_field(), steps=updates, events=events)
        if transient is not None:
            raise transient
        return True

    def prefetch(self, ctxs):
        try:
            return self.rb.prefetch(ctxs)
        except TRANSIENT:
            raise
        except errors.FabricError as exc:  # the actions read what they need themselves
            log.warning("run %s: prefetch failed, steps read the fabric one by one: %s", self.run_id, exc)
            return {}

    def pick_syncs(self, pending):
        """Steps without a VMM job: a few single ones, or many of one batchable action at once."""
        syncs, batched = [], []
        for s in pending:
            if s.action in self.rb.job_actions:
                continue
            if self.rb.batch_action(s.action):
                if not batched or (batched[0].action == s.action and len(batched) < BATCH_SIZE):
                    batched.append(s)
            elif len(syncs) < SYNC_PARALLEL:
                syncs.append(s)
        return syncs, batched

    def act_batch(self, ctxs):
        try:
            outcomes = self.rb.batch_action(ctxs[0].action)(ctxs)
        except TRANSIENT as exc:
            if self.giving_up():
                return [Outcome.failed(str(exc)) for _ in ctxs]
            raise
        except errors.FabricError:
            return [self.act(c) for c in ctxs]  # one bad object must not fail the others: one at a time
        return outcomes

    def submit(self, steps, outcomes):
        """Start the VMM jobs the actions asked for, all in one round trip."""
        asked = [s for s in steps if outcomes[s.pk].kind == "submit"]
        if not asked:
            return
        results = bulk.submit_jobs(session_for(self.vmm_connection()), [outcomes[s.pk].request for s in asked])
        for s, result in zip(asked, results):
            message = outcomes[s.pk].message
            if isinstance(result, TRANSIENT):
                raise result
            if isinstance(result, errors.VMBusy):
                outcomes[s.pk] = Outcome.later(f"{result}; will try again", 2.0)
            elif isinstance(result, errors.FabricError):
                outcomes[s.pk] = Outcome.failed(str(result))
            else:
                outcomes[s.pk] = Outcome.started(result, message)

    def act(self, ctx):
        try:
            return self.rb.act(ctx)
        except TRANSIENT as exc:
            if self.giving_up():   # aborting: what needs that server is left undone, named in the outcome
                return Outcome.failed(str(exc))
            raise
        except errors.VMBusy as exc:
            return Outcome.later(f"{exc}; will try again", 2.0)
        except errors.FabricError as exc:
            return Outcome.failed(str(exc))
        except Exception as exc:  # a bug in an action fails its step, naming it
            log.exception("step %s (%s on %s) raised", ctx.step_id, ctx.action, ctx.target)
            return Outcome.failed(f"{ctx.action} on {ctx.target} failed: {exc.__class__.__name__}: {exc}")

    def reserve(self, wanted):
        run = self.run
        self.vmm_connection()
        with transaction.atomic():
            lease.renew(run.pk, self.token)
            conn = ServerConnection.objects.select_for_update().get(pk=run.connection_id)
            busy = (Step.objects.filter(run__connection_id=conn.pk, run__state__in=Run.ACTIVE_STATES,
                                        state=Step.State.RUNNING).exclude(job_id__in=("", waits.WAIT)).count())
            # jobs this increment saw end no longer run on the server: their slots are free
            busy -= len(getattr(self, "ended", ()))
            granted = wanted[:max(0, conn.max_concurrent_jobs - busy)]
            now = timezone.now()
            if granted:
                Step.objects.filter(pk__in=[s.pk for s in granted]).update(
                    state=Step.State.RUNNING, job_id=RESERVED, attempts=F("attempts") + 1, started_at=now)
        for s in granted:
            s.state, s.job_id, s.attempts, s.started_at = Step.State.RUNNING, RESERVED, s.attempts + 1, now
        return granted

    def apply(self, s, outcome, updates, events):
        """Put an outcome on its step (in memory) and queue its event."""
        now = timezone.now()
        data = {"step": s.pk, "target": s.target, "action": s.action, "phase": s.phase}
        fields = {"state", "job_id", "result", "error", "started_at", "finished_at", "progress", "data", "attempts"}
        s.result.update(outcome.result)
        if outcome.context:  # the runbook's own namespace; the engine's is run.context["engine"]
            self.run.context.setdefault("runbook", {}).update(outcome.context)
            self.dirty = True
        if outcome.kind == "wait":
            failure = waits.apply_wait(s, outcome)
            if failure is None:
                updates.append((s, fields))
                if s.data.pop("wait_news", False):
                    events.append(Event(outcome.message, "info", s, data={**data, "state": s.state, "waiting": True}))
                return
            outcome = failure
            if outcome.context:
                self.run.context.setdefault("runbook", {}).update(outcome.context)
                self.dirty = True
        elif s.job_id == waits.WAIT or "wait_since" in s.data:
            waits.clear(s)
        if outcome.kind == "failed" and self.auto_retry(s, outcome, updates, events, fields, data):
            return
        level = outcome.level
        if outcome.kind == "done":
            s.state, s.finished_at, s.progress = Step.State.SUCCEEDED, now, 100
        elif outcome.kind == "job":
            s.state, s.job_id, s.progress = Step.State.RUNNING, outcome.job.id, outcome.job.progress or 0
            data["job_id"] = outcome.job.id
        elif outcome.kind == "skipped":
            s.state, s.finished_at = Step.State.SKIPPED, now
        elif outcome.kind == "later":
            tries = int(s.data.get("later", 0)) + 1
            if tries > MAX_LATER:
                outcome = Outcome.failed(f"{outcome.message}: still busy after {MAX_LATER} tries")
                level = "error"
            else:
                s.state, s.job_id = Step.State.PENDING, ""
                s.data.update(later=tries, retry_at=time.time() + outcome.delay)
                updates.append((s, fields))
                if tries == 1:
                    events.append(Event(outcome.message, "info", s, data={**data, "state": s.state}))
                return
        if outcome.kind == "failed":
            s.state, s.finished_at, s.error = Step.State.FAILED, now, outcome.message
            level = "error"
        if s.job_id in (RESERVED, waits.WAIT):
            s.job_id = ""  # a final step's real job id stays for the record; only RUNNING ones count as in flight
        data["state"] = s.state
        updates.append((s, fields))
        events.append(Event(outcome.message, level, s, data=data))

    def auto_retry(self, s, outcome, updates, events, fields, data) -> bool:
        """A step planned with ``data['retries']`` tries again by itself (after ``retry_delay`` s)
        before its failure counts; True when it will."""
        allowed = int(s.data.get("retries") or 0)
        used = int(s.data.get("retried") or 0)
        if used >= allowed:
            return False
        delay = float(s.data.get("retry_delay", 5.0))
        s.data.update(retried=used + 1, retry_at=time.time() + delay)
        s.data.pop("later", None)
        s.state, s.job_id, s.progress = Step.State.PENDING, "", 0
        s.result.setdefault("errors", []).append(outcome.message)
        updates.append((s, fields))
        events.append(Event(f"{outcome.message.rstrip('.')}; trying again ({used + 1} of {allowed}) in {delay:.0f} s",
                            "warning", s, data={**data, "state": s.state}))
        return True
