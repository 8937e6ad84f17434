"""The one write path for runs: start, cancel, retry, skip, abort.

Each function checks that the user is an operator, writes in one transaction
(with the run's events and an audit entry) and wakes the engine on commit.
"""
import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import authz
from ..engine import executor, lease
from ..engine.events import emit
from ..engine.reaper import ensure_reaper_schedule
from ..models import Run, RunTarget, ServerConnection, Step, VirtualMachine
from ..runbooks import registry
from . import audit


class RunConflict(ValidationError):
    """Another active run of the same runbook works on the same VMs."""


def _who(user):
    return user.get_username() if getattr(user, "is_authenticated", False) else "the scheduler"


def prepare(kind, params, check_fabric=True):
    """Validate a runbook's parameters: returns ``Prepared`` or raises ValidationError."""
    rb = registry.get(kind)
    raw = {str(k): v for k, v in (params or {}).items()}
    return rb, rb.prepare(raw, check_fabric=check_fabric)


def start_run(user, kind, params, schedule=None) -> Run:
    """Validate, then create the run and queue it. Nothing is created when the
    parameters are bad or an active run of this runbook covers the same VMs.
    A run started by a schedule runs as the schedule's creator."""
    if schedule is None:
        authz.require(user, "run.start")
    rb, prep = prepare(kind, params)
    ensure_reaper_schedule()
    with transaction.atomic():
        # serialise starts per VMM server (PostgreSQL; SQLite's BEGIN IMMEDIATE already does)
        ServerConnection.objects.select_for_update().filter(pk=prep.connection.pk).first()
        claims = set(prep.claims)
        for other in Run.objects.filter(state__in=Run.ACTIVE_STATES, connection=prep.connection):
            _refuse_overlap(kind, prep, claims, other)
        token = lease.new_token()
        run = Run.objects.create(
            kind=kind, title=prep.title[:255], params=prep.params, context={"claims": sorted(claims), "engine": {}},
            connection=prep.connection, target_key=prep.target_key[:255], created_by=user if getattr(user, "pk", None) else None,
            schedule=schedule, lease_owner=token,
            lease_expires_at=timezone.now() + dt.timedelta(seconds=lease.lease_seconds()),
        )
        _record_targets(run, claims)
        by = f"schedule '{schedule.name}'" if schedule is not None else _who(user)
        emit(run, f"{prep.title} queued by {by}", data={"params": prep.params})
        audit.record(user if schedule is None else (user or "scheduler"), "run.start", run, kind=kind,
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
    raise RunConflict(f"run {other.pk} ({other.title}) is still {other.get_state_display().lower()} over {how}; "
                      "two runs never change the same VMs at once: wait for it or cancel it", code="conflict")


def _active(run):
    if run.state not in Run.ACTIVE_STATES:
        raise ValidationError(f"run {run.pk} has already ended ({run.get_state_display().lower()})", code="final")


def _resume(run) -> list[str]:
    """A run that waited for the operator goes on: its 'waiting' message no longer holds.
    Returns the fields it changed."""
    run.state = Run.State.RUNNING
    run.message = ""
    return ["state", "message"]


def cancel_run(user, run) -> Run:
    """Stop after the current steps, then run the runbook's compensation."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        if run.cancel_requested:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.state == Run.State.WAITING:
            fields += _resume(run)
        run.save(update_fields=fields)
        emit(run, f"Cancel requested by {_who(user)}: the run stops after the current steps, then cleans up", "warning")
        audit.record(user, "run.cancel", run)
        executor.wake(run.pk)
    return run


def abort_run(user, run) -> Run:
    """For a run waiting for the operator: give up, run the compensation, fail."""
    authz.require(user, "run.operate")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        _active(run)
        if run.state != Run.State.WAITING:
            raise ValidationError(f"run {run.pk} is {run.get_state_display().lower()}, not waiting for the operator; "
                                  "to stop it, cancel it", code="state")
        run.context.setdefault("engine", {}).update(abort=True, aborted_by=_who(user))
        run.save(update_fields=["context", *_resume(run)])
        emit(run, f"Aborted by {_who(user)}: cleaning up, then the run fails", "warning")
        audit.record(user, "run.abort", run)
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
            step.data.pop("later", None)
            step.data.pop("retry_at", None)
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
