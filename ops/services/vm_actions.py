"""The one write path for what is done to one VM from its page or the API: checkpoint, remove a
checkpoint, restore, power. Each starts a small run (``ops/runbooks/vm_actions.py``).

Every function
- checks ``authz.require(user, "vm.<action>", vm)`` (a tenant: the VM is in one of their active
  subscriptions and the plan allows it; an operator: any VM);
- applies the plan's checkpoint rules (``checkpoint_plan``: what a new checkpoint replaces, or why
  it is refused) and validates the names typed (``CheckpointInput``);
- refuses with ``VMInUse`` (naming the run) while another run acts on the VM;
- acts on behalf of the tenant: the run's VMM calls carry the member's ``vmm_user`` and the
  subscription's user role (``SubscriptionMember.on_behalf_of``); an operator acts as Slipway;
- writes the audit record and queues the run on commit (``runs.launch``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import authz, roles
from ..models import Checkpoint, Plan, PowerAction, Run, SubscriptionMember
from ..runbooks import registry
from ..textcheck import refuse_hidden
from . import audit, runs

NAME_MAX, DESCRIPTION_MAX = 100, 1000
DEFAULT_NAME = "{vm} {date}"  # the name field's initial value: "web01 2026-12-02 14:05"


class VMInUse(ValidationError):
    """Another run is acting on the VM (the API answers 409); ``run`` is that run."""

    def __init__(self, run):
        self.run = run
        super().__init__(f"run {run.pk} ({run.title}) is {run.get_state_display().lower()} on this VM; "
                         "wait for it to end, then try again", code="conflict")


class PlanRefuses(ValidationError):
    """The plan's checkpoint rules refuse the request (e.g. at the limit): the message says what to do."""


def default_name(vm, now=None) -> str:
    now = timezone.localtime(now or timezone.now())
    return DEFAULT_NAME.format(vm=vm.name, date=now.strftime("%Y-%m-%d %H:%M"))


def clean_text(value, field: str, *, required: bool, limit: int, lines: bool = False) -> str:
    """``value`` stripped, or ValidationError naming the field (empty, too long, hidden characters)."""
    text = str(value or "").strip()
    if required and not text:
        raise ValidationError({field: f"{field} is required"})
    if len(text) > limit:
        raise ValidationError({field: f"{field} is {len(text)} characters long; at most {limit}"})
    bad = refuse_hidden(text.replace("\r\n", "\n").replace("\n", "") if lines else text, field)
    if bad:
        raise ValidationError({field: bad})
    return text


# -- who acts, under which plan ---------------------------------------------------------------

def membership(user, vm) -> SubscriptionMember | None:
    """The user's membership of the subscription owning ``vm`` (None for operators and admins)."""
    if not vm.user_role_id:
        return None
    return (SubscriptionMember.objects.select_related("subscription__plan")
            .filter(user=user, subscription__user_role_id=vm.user_role_id, subscription__plan__connection_id=vm.connection_id)
            .first())


def vm_plan(vm):
    """The plan of the subscription owning ``vm``, or None."""
    return Plan.objects.filter(subscriptions__user_role_id=vm.user_role_id, connection_id=vm.connection_id).first() \
        if vm.user_role_id else None


def _on_behalf(user, vm) -> tuple[str, str]:
    """The member's VMM identity when the user is a member of the VM's subscription; ('', '') for an
    operator acting on any other VM (Slipway's own account)."""
    member = membership(user, vm) if roles.is_tenant(user) else None
    if member is not None:
        return member.on_behalf_of()
    if roles.is_operator(user):
        return "", ""
    # authz passed, so this is a tenant in scope: a subscription without this member's row is a bug
    raise ValidationError(f"{user.get_username()} is not a member of the subscription of {vm.name}")


# -- the plan's checkpoint rules --------------------------------------------------------------

@dataclasses.dataclass
class CheckpointPlan:
    """What a new checkpoint of a VM will do under its plan."""

    replace: list  # Checkpoint rows removed once the new one exists
    refused: str = ""  # why a new one is refused now (at the limit; delete first)
    notice: str = ""  # what the tenant is told before submitting


def _when(cp) -> str:
    return timezone.localtime(cp.added_at).strftime("%Y-%m-%d") if cp.added_at else "at an unknown date"


def checkpoint_plan(vm, plan=None) -> CheckpointPlan:
    existing = list(Checkpoint.objects.filter(vm=vm).order_by("added_at", "id"))
    if plan is None:
        return CheckpointPlan([], notice=f"{vm.name} has {len(existing)} checkpoints; the new one is added to them.")
    kept = plan.checkpoints_kept
    if kept == 1:
        if not existing:
            return CheckpointPlan([], notice="Your plan keeps one checkpoint per VM; this will be it.")
        names = ", ".join(f"'{cp.name}' made {_when(cp)}" for cp in existing)
        return CheckpointPlan(existing, notice=f"This replaces checkpoint {names}; a restore to it will no longer be possible.")
    if len(existing) < kept:
        return CheckpointPlan([], notice=f"Your plan keeps up to {kept} checkpoints per VM; {vm.name} has {len(existing)}.")
    over = existing[:len(existing) - kept + 1]
    listed = ", ".join(f"'{cp.name}' made {_when(cp)}" for cp in over)
    if plan.remove_oldest_when_full:
        return CheckpointPlan(over, notice=f"Your plan keeps {kept} checkpoints per VM: once the new one exists, the oldest, "
                                           f"{listed}, is removed; a restore to it will no longer be possible.")
    return CheckpointPlan([], refused=f"Your plan keeps at most {kept} checkpoints per VM and {vm.name} has "
                                      f"{len(existing)}: delete one first (the oldest: {listed}).")


def expires_at(cp, plan) -> dt.datetime | None:
    if plan is None or not plan.checkpoint_max_age_days or cp.added_at is None:
        return None
    return cp.added_at + dt.timedelta(days=plan.checkpoint_max_age_days)


# -- starting the runs ------------------------------------------------------------------------

def active_run(vm) -> Run | None:
    """The active run acting on ``vm`` (its claims name the VM), if any."""
    vm_id = str(vm.vmm_id).lower()
    for run in Run.objects.filter(state__in=Run.ACTIVE_STATES, connection_id=vm.connection_id).order_by("pk"):
        if vm_id in (run.context.get("claims") or []):
            return run
    return None


def _start(user, vm, kind, params, audit_action, **detail) -> Run:
    busy = active_run(vm)
    if busy is not None:
        raise VMInUse(busy)
    vmm_user, role_id = _on_behalf(user, vm)
    raw = {"connection": vm.connection.name, "vm_id": str(vm.vmm_id), "vm": vm.name, "user": vmm_user,
           "role_id": role_id, **params}
    rb = registry.get(kind)
    prep = rb.prepare(raw)
    with transaction.atomic():
        try:
            run = runs.launch(user, kind, prep)
        except runs.RunConflict:
            busy = active_run(vm)
            if busy is None:
                raise
            raise VMInUse(busy) from None
        audit.record(user, audit_action, vm, run=run.pk, on_behalf_of=vmm_user or None, **detail)
    return run


def request_checkpoint(user, vm, name, description="") -> Run:
    authz.require(user, "vm.checkpoint", vm)
    name = clean_text(name, "name", required=True, limit=NAME_MAX)
    description = clean_text(description, "description", required=False, limit=DESCRIPTION_MAX, lines=True)
    decided = checkpoint_plan(vm, vm_plan(vm))
    if decided.refused:
        raise PlanRefuses({"name": decided.refused}, code="limit")
    replace = [{"id": str(cp.vmm_id), "name": cp.name} for cp in decided.replace]
    before = [str(i) for i in Checkpoint.objects.filter(vm=vm).values_list("vmm_id", flat=True)]
    return _start(user, vm, "vm-checkpoint", {"name": name, "description": description, "before": before,
                                              "replace": replace}, "vm.checkpoint", name=name,
                  replaces=[r["name"] for r in replace])


def request_remove_checkpoint(user, vm, checkpoint) -> Run:
    """Delete one checkpoint (what a tenant at the plan's limit is told to do first)."""
    authz.require(user, "vm.checkpoint", vm)
    _own(vm, checkpoint)
    return _start(user, vm, "vm-checkpoint-remove", {"checkpoint_id": str(checkpoint.vmm_id), "checkpoint": checkpoint.name},
                  "vm.checkpoint.remove", checkpoint=checkpoint.name)


def request_restore(user, vm, checkpoint, checkpoint_first=False) -> Run:
    authz.require(user, "vm.restore", vm)
    _own(vm, checkpoint)
    first_name = ""
    if checkpoint_first:
        authz.require(user, "vm.checkpoint", vm)
        decided = checkpoint_plan(vm, vm_plan(vm))
        if decided.replace or decided.refused:
            raise PlanRefuses({"checkpoint_first": "your plan would have to remove a checkpoint to make room for one "
                                                   "first; restore without it, or delete a checkpoint first"})
        first_name = f"Before restoring to {checkpoint.name}"[:NAME_MAX]
    before = [str(i) for i in Checkpoint.objects.filter(vm=vm).values_list("vmm_id", flat=True)]
    return _start(user, vm, "vm-restore", {"checkpoint_id": str(checkpoint.vmm_id), "checkpoint": checkpoint.name,
                                           "first_name": first_name, "before": before},
                  "vm.restore", checkpoint=checkpoint.name, checkpoint_first=bool(first_name))


def request_power(user, vm, action) -> Run:
    authz.require(user, "vm.power", vm)
    if action not in PowerAction.values:
        raise ValidationError({"action": f"action must be one of {', '.join(PowerAction.values)}, not {str(action)[:40]!r}"})
    if action not in authz.power_actions(user, vm):
        raise PermissionDenied(f"Your plan does not allow '{PowerAction(action).label}' for {vm.name}.")
    return _start(user, vm, "vm-power", {"action": action}, "vm.power", power=action)


def _own(vm, checkpoint) -> None:
    if checkpoint.vm_id != vm.pk:
        raise ValidationError({"checkpoint": f"checkpoint {checkpoint.name} is not a checkpoint of {vm.name}"})
