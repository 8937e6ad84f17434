"""The one write path for runs: start, cancel, retry, skip, abort.

Each function checks that the user is an operator, writes in one transaction
(with the run's events and an audit entry) and wakes the engine on commit.
"""
import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import authz
from ..engine import executor, lease, waits
from ..engine.events import emit
from ..engine.reaper import ensure_reaper_schedule
from ..models import Run, RunTarget, ServerConnection, Step, VirtualMachine
from ..runbooks import registry
from ..runbooks.registry import phases_of
from . import audit


class RunConflict(ValidationError):
    """Another active run works on the same VMs; ``run_id`` is that run (pages link it)."""

    def __init__(self, message, code=None, run_id=None):
        super().__init__(message, code=code)
        self.run_id = run_id


def _who(user):
    return user.get_username() if getattr(user, "is_authenticated", False) else "the scheduler"


def prepare(kind, params, check_fabric=True):
    """Validate a runbook's parameters: returns ``Prepared`` or raises ValidationError."""
    rb = registry.get(kind)
    if not getattr(rb, "listed", True):
        raise ValidationError(f"runbook {kind!r} is started from a VM's page (ops/services/vm_actions.py), not directly",
                              code="unknown")
    raw = {str(k): v for k, v in (params or {}).items()}
    return rb, rb.prepare(raw, check_fabric=check_fabric)


def start_run(user, kind, params, schedule=None) -> Run:
    """Validate, then create the run and queue it. Nothing is created when the
    parameters are bad or an active run of this runbook covers the same VMs.
    A run started by a schedule runs as the schedule's creator."""
    if schedule is None:
        authz.require(user, "run.start")
    rb, prep = prepare(kind, params)
    return launch(user, kind, prep, schedule)


def launch(user, kind, prep, schedule=None) -> Run:
    """Create and queue a run from prepared parameters; the caller has checked who may.
    RunConflict when an active run changes the same VMs. ``start_run`` and ``ops/services/vm_actions.py`` use it."""
    ensure_reaper_schedule()
    with transaction.atomic():
        # serialise starts per VMM server (PostgreSQL; SQLite's BEGIN IMMEDIATE already does)
        ServerConnection.objects.select_for_update().filter(pk=prep.connection.pk).first()
        claims = set(prep.claims)
        for other in Run.objects.filter(state__in=Run.ACTIVE_STATES, connection=prep.connection):
            _refuse_overlap(kind, prep, claims, other)
        token = lease.new_token()
        context = {"claims": sorted(claims), "holds": sorted(set(prep.holds)), "engine": {}, "runbook": {}}
        run = Run.objects.create(
            kind=kind, title=prep.title[:255], params=prep.params, context=context,
            connection=prep.connection, target_key=prep.target_key[:255], created_by=user if getattr(user, "pk", None) else None,
            schedule=schedule, lease_owner=token,
            lease_expires_at=timezone.now() + dt.timedelta(seconds=lease.lease_seconds()),
        )
        # the plan is made when the run starts and kept with it (ops/engine/junctions.py)
        run.context["engine"]["phases"] = [p.as_dict() for p in registry.get(kind).make_phases(run)]
        run.save(update_fields=["context"])
        _record_targets(run, claims)
        by = f"schedule '{schedule.name}'" if schedule is not None else _who(user)
        emit(run, f"{prep.title} queued by {by}", data={"params": prep.params})
        audit.record(user if schedule is None else audit.schedule_actor(schedule), "run.start", run, kind=kind,
                     params=prep.params, schedule=schedule.name if schedule is not None else None)
        transaction.on_commit(lambda: executor.enqueue(run.pk, token))
    return run


def _record_targets(run, claims) -> None:
    """The inventory VMs the run acts on, as rows: who may watch it follows them (ops/authz.py)."""
    claims = sorted(claims)
    for i in range(0, len(claims), 2000):
        vms = VirtualMachine.objects.filter(connection=run.connection, vmm_id__in=claims[i:i + 2000]).values_list("pk", flat=True)
        RunTarget.objects.bulk_create([RunTarget(run=run, vm_id=pk) for pk in vms])


def _refuse_overlap(kind, prep, claims: set, other: Run) -> None:
    """Two runs that change the same VMs never run at once, whatever their runbooks (a clean-up
    would merge away the checkpoints a batch run is making). Runs that claim VMs are compared by
    VM; a run that claims none (a dry run changes nothing) conflicts only with its own double."""
    held = set(prep.holds) & set(other.context.get("holds") or [])
    if held:
        names = ", ".join(sorted(h.split(":", 1)[1] for h in held)[:5])
        raise RunConflict(f"Run {other.pk} ({other.title}) is still {other.get_state_display().lower()} and holds "
                          f"{names}; no two runs drain or patch the same host or cluster at once: wait for it or "
                          "cancel it", code="conflict", run_id=other.pk)
    theirs = set(other.context.get("claims") or [])
    if claims and theirs:
        shared = claims & theirs
        if not shared:
            return
        how = "the same VMs" if shared == claims else f"{len(shared)} of the same VMs"
    elif other.kind == kind and other.target_key == prep.target_key:
        how = "the same targets"
    else:
        return
    raise RunConflict(f"Run {other.pk} ({other.title}) is still {other.get_state_display().lower()} over {how}; "
                      "two runs never change the same VMs at once: wait for it or cancel it", code="conflict",
                      run_id=other.pk)


def _active(run):
    if run.state not in Run.ACTIVE_STATES:
        raise ValidationError(f"run {run.pk} has already ended ({run.get_state_display().lower()})", code="final")


def _resume(run) -> list[str]:
    """A run that waited for the operator goes on: its 'waiting' message no longer holds, and a new
    outage starts a new pause (with its own limit). Returns the fields it changed."""
    run.state = Run.State.RUNNING
    run.message = ""
    run.paused_since = run.next_try_at = None
    return ["state", "message", "paused_since", "next_try_at"]


def cancel_run(user, run) -> Run:
    """Stop after the current steps, then run the runbook's compensation. Works in every state that
    is not final: a paused run keeps trying its clean-up until its outage limit, then waits for the
    operator (who can abort it)."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        if run.cancel_requested or run.abort_requested:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.state in (Run.State.WAITING, Run.State.PAUSED):
            fields += _resume(run)
        run.save(update_fields=fields)
        emit(run, f"Cancel requested by {_who(user)}: the run stops after the current steps, then cleans up", "warning")
        audit.record(user, "run.cancel", run)
        executor.wake(run.pk)
    return run


def abort_run(user, run) -> Run:
    """Give up, in any state that is not final: nothing more of the plan runs; the clean-up does what
    it still can (a step that needs a server that cannot be reached fails at once, with that
    server's error) and the run fails, its outcome naming what was left undone."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        if run.abort_requested:
            return run
        run.abort_requested, run.abort_by = True, _who(user)
        fields = ["abort_requested", "abort_by"]
        if run.state in (Run.State.WAITING, Run.State.PAUSED):
            fields += _resume(run)
        run.save(update_fields=fields)
        emit(run, f"Aborted by {_who(user)}: cleaning up what can still be undone, then the run fails", "warning")
        audit.record(user, "run.abort", run)
        executor.wake(run.pk)
    return run


def retry_run(user, run) -> Run:
    """A run waiting for the operator because a server could not be used (an outage past its limit,
    a name that does not resolve, refused credentials, a disabled connection): try again now.
    Failed steps are retried or skipped one by one instead (``retry_step``, ``skip_step``)."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        if run.state != Run.State.WAITING:
            raise ValidationError(f"run {run.pk} is {run.get_state_display().lower()}, not waiting for the operator; "
                                  "there is nothing to retry", code="state")
        failed = list(run.steps.filter(phase=run.phase, state=Step.State.FAILED).values_list("index", flat=True)[:10])
        if failed:
            raise ValidationError(f"run {run.pk} waits on failed steps ({', '.join(map(str, failed))}): retry or skip "
                                  "each of them, or abort the run", code="state")
        run.save(update_fields=_resume(run))
        emit(run, f"{_who(user)} retried the run: it tries the servers again now", "info")
        audit.record(user, "run.retry", run)
        executor.wake(run.pk)
    return run


def _steer_step(user, step, new_state, verb):
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=step.run_id)
        step = Step.objects.get(pk=step.pk)
        if run.state != Run.State.WAITING or step.state != Step.State.FAILED:
            raise ValidationError(f"only a failed step of a run waiting for the operator can be {verb}; "
                                  f"step '{step}' is {step.get_state_display().lower()} and run {run.pk} is "
                                  f"{run.get_state_display().lower()}", code="state")
        history = step.result.setdefault("errors", [])
        history.append(step.error)
        step.state = new_state
        step.finished_at = None if new_state == Step.State.PENDING else timezone.now()
        if new_state == Step.State.PENDING:
            step.error, step.job_id, step.progress = "", "", 0
            for key in ("later", "retry_at", "retried") + waits.KEYS:
                step.data.pop(key, None)
        step.save()
        left = run.steps.filter(phase=run.phase, state=Step.State.FAILED).count()
        emit(run, f"{_who(user)} {verb} '{step}'" + (f"; {left} failed steps still wait" if left else ""), "info",
             step=step, data={"step": step.pk, "state": step.state})
        audit.record(user, f"step.{'retry' if new_state == Step.State.PENDING else 'skip'}", step, run=run.pk)
        if not left:
            run.save(update_fields=_resume(run))
            executor.wake(run.pk)
    return step


def retry_step(user, step):
    return _steer_step(user, step, Step.State.PENDING, "retried")


def skip_step(user, step):
    return _steer_step(user, step, Step.State.SKIPPED, "skipped")


def skip_block(user, run) -> Run:
    """A run waiting on a failed step of a block (a patch run's node): leave that block, unfinished,
    and run its clean-up (the node is resumed unpatched and its VMs come home), then go on with the
    next block. The failed steps are kept as skipped after failing; the outcome names the block."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        phase = next((p for p in phases_of(run) if p.name == run.phase), None)
        if run.state != Run.State.WAITING or phase is None or not phase.block or phase.always:
            raise ValidationError(f"run {run.pk} is not waiting on a failed step of a node; there is no node to skip",
                                  code="state")
        failed = list(run.steps.filter(phase=run.phase, state=Step.State.FAILED))
        if not failed:
            raise ValidationError(f"run {run.pk} waits on no failed step", code="state")
        now = timezone.now()
        for step in failed:
            step.result.setdefault("errors", []).append(step.error)
            step.state, step.finished_at = Step.State.SKIPPED, now
            step.save(update_fields=["state", "finished_at", "result"])
        eng = run.context.setdefault("engine", {})
        for key in ("abandoned_blocks", "skipped_blocks"):
            if phase.block not in eng.setdefault(key, []):
                eng[key].append(phase.block)
        eng.setdefault("block_errors", {})[phase.block] = failed[0].error
        run.save(update_fields=["context"] + _resume(run))
        emit(run, f"{_who(user)} skipped {phase.block}: it is resumed unpatched and its VMs come home; then the "
                  "run goes on with the next", "warning", data={"block": phase.block})
        audit.record(user, "run.skip_block", run, block=phase.block)
        executor.wake(run.pk)
    return run
