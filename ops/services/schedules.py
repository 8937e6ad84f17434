"""Operators' cron schedules for runbooks, with django-q2's Schedule underneath.

A RunSchedule is enabled exactly when it has a django-q2 Schedule (CRON,
``ops.engine.tasks.start_scheduled_run``, args = the RunSchedule's id); pausing
deletes that Schedule, resuming makes a fresh one. A missed slot does not pile
up runs: Q_CLUSTER ``catch_up`` is False, and ``fire`` skips a slot (with an
audit entry) while the schedule's previous run is still active.

A schedule keeps the connections its parameters resolved to when it was saved
(``RunSchedule.connection`` / ``scom_connection``): a second VMM connection added
later does not make "the only enabled one" ambiguous, and a renamed connection is
still found. Every slot's outcome (started, skipped, refused and why) is written on
the schedule, so the Schedules page, the dashboard and ``runbook list`` show it.
"""
import logging

from croniter import CroniterError, croniter
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from .. import authz
from ..models import Run, RunSchedule, ServerConnection
from ..textcheck import refuse_hidden
from . import audit
from .runs import prepare, start_run

log = logging.getLogger(__name__)
TASK = "ops.engine.tasks.start_scheduled_run"


def validate_cron(cron: str) -> str:
    cron = " ".join(str(cron or "").split())
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValidationError({"cron": f"cron: {cron!r} is not a valid five-field cron expression "
                                       "(minute hour day-of-month month day-of-week, e.g. '0 2 * * *')"})
    try:
        next_run(cron)
    except CroniterError:   # e.g. '0 2 30 2 *': valid fields, but no such day
        raise ValidationError({"cron": f"cron: {cron!r} never matches a date (no month has that day)"}) from None
    return cron


def next_run(cron: str):
    return croniter(cron, timezone.now()).get_next(type(timezone.now()))


def _clean(kind, params, cron, name=None, instance=None):
    errors = {}
    if name is not None:
        name = str(name).strip()
        if not name:
            errors["name"] = "name is required"
        elif len(name) > 100:
            errors["name"] = f"name is {len(name)} characters long, at most 100"
        elif refuse_hidden(name, "name"):
            errors["name"] = refuse_hidden(name, "name")
        else:
            same = RunSchedule.objects.filter(name__iexact=name).exclude(pk=getattr(instance, "pk", None)).first()
            if same is not None:
                errors["name"] = (f"a schedule named {same.name!r} exists already" if same.name == name else
                                  f"a schedule named {same.name!r} exists already; names differing only in "
                                  "upper and lower case would be confused")
    try:
        cron = validate_cron(cron)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        _, prep = prepare(kind, params)
    except ValidationError as exc:
        errors["params"] = exc.messages
        prep = None
    if errors:
        raise ValidationError(errors)
    return name, cron, prep


def _as_typed(params) -> dict:
    """What the operator gave, without the empty fields; each firing checks them again."""
    out = {}
    for key, value in (params or {}).items():
        value = value.strip() if isinstance(value, str) else value
        if value not in (None, ""):
            out[key] = value
    return out


def _pin_connections(sched, params: dict, prep) -> dict:
    """The connections the parameters resolved to now ("the only enabled one" included) are
    kept on the schedule, and by name in its parameters."""
    params = dict(params)
    sched.connection = prep.connection
    params["connection"] = prep.connection.name
    sched.scom_connection = None
    scom_name = prep.params.get("scom") if "scom" in prep.params else None
    if scom_name:
        sched.scom_connection = ServerConnection.objects.filter(kind=ServerConnection.Kind.SCOM, name=scom_name).first()
        params["scom"] = scom_name
    if prep.params.get("configmgr"):  # a patch run's ConfigMgr site, by name (a second site added later changes nothing)
        params["configmgr"] = prep.params["configmgr"]
    return params


def _slot_params(sched) -> dict:
    """The parameters a slot runs with: the saved connections under their names of today."""
    params = dict(sched.params or {})
    if sched.connection is not None:
        params["connection"] = sched.connection.name
    if sched.scom_connection is not None:
        params["scom"] = sched.scom_connection.name
    return params


def _clear_slot(sched) -> None:
    """The operator saved or resumed the schedule (its parameters checked now): an old refusal no longer holds."""
    if sched.last_slot_outcome != RunSchedule.SlotOutcome.STARTED:
        sched.last_slot_outcome, sched.last_slot_message = "", ""


def _arm(sched):
    if sched.q_schedule_id:
        Schedule.objects.filter(pk=sched.q_schedule_id).delete()
        sched.q_schedule = None
    if sched.enabled:
        sched.q_schedule = Schedule.objects.create(
            name=f"runbook schedule {sched.pk}: {sched.name}"[:100], func=TASK, args=repr(sched.pk),
            schedule_type=Schedule.CRON, cron=sched.cron, repeats=-1, next_run=next_run(sched.cron))
    sched.save(update_fields=["q_schedule", "enabled", "updated_at"])


def create_schedule(user, name, kind, params, cron, enabled=True) -> RunSchedule:
    authz.require(user, "schedule.change")
    params = _as_typed(params)
    name, cron, prep = _clean(kind, params, cron, name)
    with transaction.atomic():
        sched = RunSchedule(name=name, kind=kind, cron=cron, enabled=enabled, created_by=user)
        params = sched.params = _pin_connections(sched, params, prep)
        sched.save()
        _arm(sched)
        audit.record(user, "schedule.create", sched, kind=kind, cron=cron, params=params)
    return sched


def update_schedule(user, sched, *, name=None, params=None, cron=None, enabled=None) -> RunSchedule:
    authz.require(user, "schedule.change")
    params = _slot_params(sched) if params is None else _as_typed(params)
    name, cron, prep = _clean(sched.kind, params, sched.cron if cron is None else cron,
                              sched.name if name is None else name, sched)
    with transaction.atomic():
        sched.name, sched.cron = name, cron
        params = sched.params = _pin_connections(sched, params, prep)
        if enabled is not None:
            sched.enabled = bool(enabled)
        _clear_slot(sched)
        sched.save()
        _arm(sched)
        audit.record(user, "schedule.update", sched, cron=cron, params=params, enabled=sched.enabled)
    return sched


def pause_schedule(user, sched) -> RunSchedule:
    return _set_enabled(user, sched, False, "schedule.pause")


def resume_schedule(user, sched) -> RunSchedule:
    return _set_enabled(user, sched, True, "schedule.resume")


def _set_enabled(user, sched, enabled: bool, action: str) -> RunSchedule:
    authz.require(user, "schedule.change")
    with transaction.atomic():
        sched.enabled = enabled
        if enabled:
            _clear_slot(sched)
            sched.save(update_fields=["last_slot_outcome", "last_slot_message"])
        _arm(sched)
        audit.record(user, action, sched)
    return sched


def delete_schedule(user, sched) -> None:
    authz.require(user, "schedule.change")
    with transaction.atomic():
        if sched.q_schedule_id:
            Schedule.objects.filter(pk=sched.q_schedule_id).delete()
        audit.record(user, "schedule.delete", sched, kind=sched.kind, cron=sched.cron)
        sched.delete()


def fire(schedule_id: int):
    """A slot of a schedule has come (called by django-q2): start its run, unless its
    previous run is still active (the slot is skipped) or the run is refused. Whatever
    happens is written on the schedule and in the audit log."""
    sched = (RunSchedule.objects.filter(pk=schedule_id)
             .select_related("last_run", "created_by", "connection", "scom_connection").first())
    if sched is None or not sched.enabled:
        return None
    prev = sched.last_run
    if prev is not None and prev.state in Run.ACTIVE_STATES:
        reason = f"Run {prev.pk} is still {prev.get_state_display().lower()}; this slot was skipped"
        _note_slot(sched, RunSchedule.SlotOutcome.SKIPPED, reason)
        audit.record(audit.schedule_actor(sched), "schedule.skipped", sched, reason=reason, run=prev.pk)
        return None
    try:
        run = start_run(sched.created_by, sched.kind, _slot_params(sched), schedule=sched)
    except ValidationError as exc:
        reason = "; ".join(exc.messages)
    except Exception as exc:  # noqa: BLE001 - a slot that fails for any reason is shown, never lost in a worker log
        log.exception("schedule %s: starting its run failed", sched.pk)
        reason = f"starting the run failed: {type(exc).__name__}: {exc}"
    else:
        _note_slot(sched, RunSchedule.SlotOutcome.STARTED, "", last_run=run)
        return run.pk
    _note_slot(sched, RunSchedule.SlotOutcome.REFUSED, reason)
    audit.record(audit.schedule_actor(sched), "schedule.refused", sched, reason=reason)
    return None


def _note_slot(sched, outcome, message, **extra) -> None:
    RunSchedule.objects.filter(pk=sched.pk).update(last_slot_at=timezone.now(), last_slot_outcome=outcome,
                                                   last_slot_message=message[:2000], **extra)
