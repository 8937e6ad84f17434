"""The one write path for hosting plans (issue 7, section 2): create, change, decommission, push.

``create_plan(actor, ...)``
    a plan: its VMM connection, the clouds it offers, the checkpoint settings and the
    power actions its tenants may take. Validated as the model says (``Plan.clean``).

``update_plan(actor, plan, **changes)``
    saves the changes (validated as the model says) and, when one needs VMM to know (the
    checkpoint permission, or the clouds offered), starts the plan update run
    (ops/runbooks/plan_update.py) in the same transaction. Until that run has confirmed a
    subscription's role, Slipway enforces the stricter of the old and the new permission for it
    (``Subscription.enforced_permission``). Returns ``(plan, run or None)``.
``push_plan(actor, plan, only=None)``
    a plan update run for every subscription of the plan ("Push to VMM again" after a failed one), or
    for ``only`` those (a new subscription's role, ops/services/subscriptions.py).

A change while a plan update of the same plan is still running is refused naming that run.
Each change is audited with the fields it changed (old and new).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from .. import authz
from ..models import Cloud, Plan, PowerAction, Subscription
from ..models.plans import stricter
from ..runbooks import registry
from . import audit, runs

FIELDS = ("name", "description", "state", "checkpoint_permission", "checkpoints_kept", "remove_oldest_when_full",
          "checkpoint_max_age_days")
VMM_FIELDS = ("checkpoint_permission", "clouds")  # what the subscriptions' user roles must carry


def create_plan(actor, *, name: str, connection, clouds, checkpoint_permission: str, checkpoints_kept: int = 1,
                remove_oldest_when_full: bool = False, checkpoint_max_age_days: int | None = None,
                power_actions=(PowerAction.START, PowerAction.SHUTDOWN), description: str = "",
                state: str = Plan.State.PUBLIC) -> Plan:
    """A new plan offering ``clouds`` (Cloud rows or names, on ``connection``); ValidationError naming the field."""
    authz.require(actor, "plan.change")
    cloud_rows = _clouds(connection, clouds)
    unknown = sorted(set(map(str, power_actions)) - set(PowerAction.values))
    if unknown:
        raise ValidationError({"power_actions": f"unknown power action {unknown[0]!r}; expected "
                                                f"{', '.join(PowerAction.values)}"})
    plan = Plan(name=name, description=description, connection=connection, state=state,
                checkpoint_permission=checkpoint_permission, checkpoints_kept=checkpoints_kept,
                remove_oldest_when_full=remove_oldest_when_full, checkpoint_max_age_days=checkpoint_max_age_days,
                **{f"allow_{a}": a in set(map(str, power_actions)) for a in PowerAction.values})
    plan.full_clean()
    with transaction.atomic():
        plan.save()
        plan.clouds.set(cloud_rows)
        audit.record(actor, "plan.create", plan, connection=connection.name, clouds=[c.name for c in cloud_rows],
                     checkpoint_permission=plan.checkpoint_permission, checkpoints_kept=plan.checkpoints_kept,
                     remove_oldest_when_full=plan.remove_oldest_when_full,
                     checkpoint_max_age_days=plan.checkpoint_max_age_days, power_actions=plan.power_actions)
    return plan


def _clouds(connection, clouds) -> list[Cloud]:
    rows, missing = [], []
    for c in clouds:
        if isinstance(c, Cloud):
            if c.connection_id != connection.pk:
                raise ValidationError({"clouds": f"cloud {c.name} is not on VMM server {connection.name}"})
            rows.append(c)
            continue
        found = Cloud.objects.filter(connection=connection, name__iexact=str(c)).first()
        (rows.append(found) if found else missing.append(str(c)))
    if missing:
        known = ", ".join(Cloud.objects.filter(connection=connection).values_list("name", flat=True)) or "none yet: sync the inventory"
        raise ValidationError({"clouds": f"VMM server {connection.name} has no cloud named {missing[0]!r} (clouds: {known})"})
    if not rows:
        raise ValidationError({"clouds": "a plan offers at least one cloud"})
    return rows


def update_plan(actor, plan: Plan, **changes):
    authz.require(actor, "plan.change")
    unknown = sorted(set(changes) - set(FIELDS) - {"clouds", "power_actions"})
    if unknown:
        raise ValidationError({unknown[0]: "not a field of a plan that can be changed"
                                           + (" (a plan's subscriptions live on its VMM server)"
                                              if unknown[0] == "connection" else "")})
    plan = Plan.objects.get(pk=plan.pk)
    old = {f: getattr(plan, f) for f in FIELDS}
    old_clouds = sorted(plan.clouds.values_list("name", flat=True))
    old_power = plan.power_actions
    for f in FIELDS:
        if f in changes:
            setattr(plan, f, changes[f])
    cloud_rows = _clouds(plan.connection, changes["clouds"]) if "clouds" in changes else None
    new_clouds = sorted(c.name for c in cloud_rows) if cloud_rows is not None else old_clouds
    if "power_actions" in changes:
        acts = set(map(str, changes["power_actions"]))
        bad = sorted(acts - set(PowerAction.values))
        if bad:
            raise ValidationError({"power_actions": f"unknown power action {bad[0]!r}; expected "
                                                    f"{', '.join(PowerAction.values)}"})
        for a in PowerAction.values:
            setattr(plan, f"allow_{a}", a in acts)
    plan.full_clean()
    diff = {f: [old[f], getattr(plan, f)] for f in FIELDS if old[f] != getattr(plan, f)}
    if new_clouds != old_clouds:
        diff["clouds"] = [old_clouds, new_clouds]
    if plan.power_actions != old_power:
        diff["power_actions"] = [old_power, plan.power_actions]
    if not diff:
        return plan, None
    run = None
    with transaction.atomic():
        plan.save()
        if cloud_rows is not None:
            plan.clouds.set(cloud_rows)
        if any(f in diff for f in VMM_FIELDS):
            for sub in Subscription.objects.select_for_update().filter(plan=plan).exclude(user_role_id=""):
                known = sub.enforced_permission or old["checkpoint_permission"]
                sub.enforced_permission = stricter(known, old["checkpoint_permission"])
                sub.save(update_fields=["enforced_permission", "updated_at"])
            run = _push(actor, plan, dropped=sorted(set(old_clouds) - set(new_clouds)))
        audit.record(actor, "plan.update", plan, changed=diff, run=run.pk if run else None)
    return plan, run


def decommission_plan(actor, plan: Plan) -> Plan:
    """No new subscriptions; the existing ones go on (as in Azure Pack)."""
    return update_plan(actor, plan, state=Plan.State.DECOMMISSIONED)[0]


def push_plan(actor, plan: Plan, only=None):
    """A plan update run for the plan's subscriptions (``only``: these of them); None if it has none."""
    authz.require(actor, "plan.change")
    with transaction.atomic():
        run = _push(actor, plan, dropped=[], only=only)
        audit.record(actor, "plan.push", plan, run=run.pk if run else None,
                     subscriptions=[s.name for s in only] if only else "all")
    return run


def _push(actor, plan, dropped, only=None):
    subs = plan.subscriptions.exclude(user_role_id="").order_by("name")
    if only is not None:
        subs = subs.filter(pk__in=[s.pk for s in only])
    subs = [{"id": s.pk, "name": s.name, "role_id": s.user_role_id, "role_name": s.user_role_name} for s in subs]
    if not subs:
        return None
    prep = registry.get("plan-update").prepare({
        "connection": plan.connection.name, "plan_id": plan.pk, "plan": plan.name,
        "permission": plan.checkpoint_permission, "clouds": sorted(plan.clouds.values_list("name", flat=True)),
        "dropped": dropped, "subscriptions": subs})
    try:
        return runs.launch(actor, "plan-update", prep)
    except runs.RunConflict as exc:
        raise ValidationError({"plan": ValidationError(f"plan {plan.name} is still being pushed to VMM by run "
                                                       f"{exc.run_id}: wait for it, then change the plan again",
                                                       code="conflict")}) from None
