"""Checkpoint expiry: a plan's maximum checkpoint age made real.

A plan's ``checkpoint_max_age_days`` (ops/models/plans.py) says how old a
tenant's checkpoint may get; the tenant sees each one's expiry date
(ops/services/vm_actions.py ``expires_at``). ``expire_checkpoints`` runs every
hour (ops/system_schedules.py) and, for every plan with a maximum age
(decommissioned plans included: their subscriptions go on) and each of its
subscriptions with a VMM user role, starts a checkpoint clean-up run
(ops/runbooks/checkpoint_cleanup.py) over that role's VMs in every cloud, for
the checkpoints older than the plan's maximum age. The run decides from the
fabric (its discover step reads VMM), so what it removes is what VMM holds.

No pile-up: while a clean-up run of the subscription's role is still active
(queued, running, waiting or paused) no other is started, and a run refused
because another run works on the same VMs is not retried until the next hour.
No empty runs: a subscription whose VMs have no checkpoint older than the limit
in Slipway's inventory (ops.models.Checkpoint, refreshed by the inventory sync)
gets no run.

Where an operator sees the outcome: every run started has its ``run.start``
audit entry and its run page (the audit log names the actor ``ACTOR``); every
subscription skipped or refused gets an audit entry (``checkpoint.expiry.skipped``
or ``checkpoint.expiry.refused``, on the subscription, with the reason and the
run that holds it) and a log line; and the function returns a one-line summary,
which django-q2 keeps as the scheduled task's result.
"""
import dataclasses
import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..models import Checkpoint, Plan, Run
from . import audit, runs

log = logging.getLogger(__name__)
KIND = "checkpoint-cleanup"
ACTOR = "system: checkpoint expiry"  # the audit log's name for what this does by itself


@dataclasses.dataclass
class Tally:
    started: list = dataclasses.field(default_factory=list)  # "Fabrikam #13"
    skipped: list = dataclasses.field(default_factory=list)  # "Contoso Silver, run #9 still running"
    refused: list = dataclasses.field(default_factory=list)  # "Contoso Gold: <why>"
    idle: int = 0  # subscriptions with nothing older than their plan's limit

    def summary(self) -> str:
        parts = []
        if self.started:
            parts.append(f"{_count(self.started, 'run')} started ({', '.join(self.started)})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped: " + "; ".join(self.skipped))
        if self.refused:
            parts.append(f"{len(self.refused)} refused: " + "; ".join(self.refused))
        if self.idle:
            parts.append(f"{_count(self.idle, 'subscription')} with no checkpoint past its plan's maximum age")
        return "Checkpoint expiry: " + ("; ".join(parts) if parts else "no subscription on a plan with a maximum "
                                                                       "checkpoint age has a VMM user role")


def _count(items, noun: str) -> str:
    n = items if isinstance(items, int) else len(items)
    return f"{n} {noun}{'' if n == 1 else 's'}"


def expire_checkpoints() -> str:
    """Start the clean-up runs the plans' maximum checkpoint ages call for; the summary of what happened."""
    plans = Plan.objects.filter(checkpoint_max_age_days__isnull=False).select_related("connection").order_by("name")
    if not plans:
        return "Checkpoint expiry: no plan has a maximum checkpoint age"
    tally, now = Tally(), timezone.now()
    for plan in plans:
        for sub in plan.subscriptions.exclude(user_role_id="").order_by("name"):
            _expire(plan, sub, now, tally)
    text = tally.summary()
    log.info("%s", text)
    return text


def active_expiry(plan, sub) -> Run | None:
    """The active clean-up run of the subscription's user role on the plan's VMM server, if any."""
    return (Run.objects.filter(kind=KIND, state__in=Run.ACTIVE_STATES, connection=plan.connection,
                               params__user_role=sub.user_role_id).order_by("pk").first())


def has_expired(plan, sub, now) -> bool:
    """Whether Slipway's inventory knows a checkpoint of the subscription's VMs older than the plan allows."""
    limit = now - dt.timedelta(days=plan.checkpoint_max_age_days)
    return Checkpoint.objects.filter(vm__connection=plan.connection, vm__user_role_id=sub.user_role_id,
                                     added_at__lt=limit).exists()


def _expire(plan, sub, now, tally: Tally) -> None:
    held = active_expiry(plan, sub)
    if held is not None:
        _skip(tally, sub, held.pk, f"run #{held.pk} still {held.get_state_display().lower()}")
        return
    if not has_expired(plan, sub, now):
        tally.idle += 1
        return
    params = {"cloud": "", "user_role": sub.user_role_id, "older_than_days": plan.checkpoint_max_age_days,
              "connection": plan.connection.name}
    try:
        # start_run without its operator check: the system starts this run, as plans.py starts plan updates
        _, prep = runs.prepare(KIND, params)
        run = runs.launch(ACTOR, KIND, prep)
    except runs.RunConflict as exc:
        _skip(tally, sub, exc.run_id, f"run #{exc.run_id} works on the same VMs", "; ".join(exc.messages))
    except ValidationError as exc:
        _refuse(tally, plan, sub, "; ".join(exc.messages))
    except Exception as exc:  # noqa: BLE001 - one subscription's failure is reported and the others go on
        log.exception("checkpoint expiry for subscription %s failed", sub.name)
        _refuse(tally, plan, sub, f"starting the run failed: {type(exc).__name__}: {exc}")
    else:
        tally.started.append(f"{sub.name} #{run.pk}")


def _skip(tally: Tally, sub, run_id, reason: str, detail: str = "") -> None:
    tally.skipped.append(f"{sub.name}, {reason}")
    log.warning("checkpoint expiry for subscription %s skipped: %s", sub.name, detail or reason)
    audit.record(ACTOR, "checkpoint.expiry.skipped", sub, reason=detail or reason, run=run_id)


def _refuse(tally: Tally, plan, sub, reason: str) -> None:
    text = f"subscription {sub.name} (plan {plan.name}, VMM server {plan.connection.name}): {reason}"
    tally.refused.append(f"{sub.name}: {reason}")
    log.warning("checkpoint expiry refused for %s", text)
    audit.record(ACTOR, "checkpoint.expiry.refused", sub, reason=text)
