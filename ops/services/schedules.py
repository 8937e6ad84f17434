"""Operators' cron schedules for runbooks, with django-q2's Schedule underneath.

A RunSchedule is enabled exactly when it has a django-q2 Schedule (CRON,
``ops.engine.tasks.start_scheduled_run``, args = the RunSchedule's id); pausing
deletes that Schedule, resuming makes a fresh one. A missed slot does not pile
up runs: Q_CLUSTER ``catch_up`` is False, and ``fire`` skips a slot (with an
audit entry) while the schedule's previous run is still active.
"""
from croniter import CroniterError, croniter
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import authz
from ..models import Run, RunSchedule
from ..textcheck import refuse_hidden
from . import audit
from .runs import prepare, start_run

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
        elif RunSchedule.objects.filter(name=name).exclude(pk=getattr(instance, "pk", None)).exists():
            errors["name"] = f"a schedule named {name!r} exists already"
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
    """What the operator gave, without the empty fields: a schedule keeps its operator's words
    (an empty connection stays "the only enabled one"), and each firing checks them again."""
    out = {}
    for key, value in (params or {}).items():
        value = value.strip() if isinstance(value, str) else value
        if value not in (None, ""):
            out[key] = value
    return out


def _arm(sched):
    from django_q.models import Schedule  # noqa: PLC0415

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
    name, cron, _ = _clean(kind, params, cron, name)
    with transaction.atomic():
        sched = RunSchedule.objects.create(name=name, kind=kind, params=params, cron=cron, enabled=enabled,
                                           created_by=user)
        _arm(sched)
        audit.record(user, "schedule.create", sched, kind=kind, cron=cron, params=params)
    return sched


def update_schedule(user, sched, *, name=None, params=None, cron=None, enabled=None) -> RunSchedule:
    authz.require(user, "schedule.change")
    params = sched.params if params is None else _as_typed(params)
    name, cron, _ = _clean(sched.kind, params, sched.cron if cron is None else cron,
                           sched.name if name is None else name, sched)
    with transaction.atomic():
        sched.name, sched.cron, sched.params = name, cron, params
        if enabled is not None:
            sched.enabled = bool(enabled)
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
        _arm(sched)
        audit.record(user, action, sched)
    return sched


def delete_schedule(user, sched) -> None:
    from django_q.models import Schedule  # noqa: PLC0415

    authz.require(user, "schedule.change")
    with transaction.atomic():
        if sched.q_schedule_id:
            Schedule.objects.filter(pk=sched.q_schedule_id).delete()
        audit.record(user, "schedule.delete", sched, kind=sched.kind, cron=sched.cron)
        sched.delete()


def fire(schedule_id: int):
    """A slot of a schedule has come (called by django-q2): start its run,
    unless its previous run is still active (the slot is skipped, audited)."""
    sched = RunSchedule.objects.filter(pk=schedule_id).select_related("last_run", "created_by").first()
    if sched is None or not sched.enabled:
        return None
    prev = sched.last_run
    if prev is not None and prev.state in Run.ACTIVE_STATES:
        audit.record("scheduler", "schedule.skipped", sched, reason=f"run {prev.pk} is still {prev.state}", run=prev.pk)
        return None
    try:
        run = start_run(sched.created_by, sched.kind, sched.params, schedule=sched)
    except ValidationError as exc:
        audit.record("scheduler", "schedule.refused", sched, reason="; ".join(exc.messages))
        return None
    RunSchedule.objects.filter(pk=sched.pk).update(last_run=run)
    return run.pk
