"""The one write path for hosting plans and subscriptions (issue 7, section 2).

``create_plan(actor, ...)``
    a plan: its VMM connection, the clouds it offers, the checkpoint settings and the
    power actions its tenants may take. Validated as the model says (``Plan.clean``).
``create_subscription(actor, plan, account_name, members, adopt_user_role=...)``
    a tenant account on a plan that adopts a VMM user role which already exists (the
    demo's roles, or a role an administrator made in VMM): the role is read from the
    fabric (``ops/fabric/userroles.py`` ``get_user_role``) and its ID and name are stored;
    the subscription's VMs are then the inventory VMs of that role.

Members are ``(user, vmm_user)`` pairs: the Django user who signs in and the same person as
VMM lists them in the role (``CONTOSO\\alice``); every VMM call made for the member carries
``-OnBehalfOfUser <vmm_user>`` (``SubscriptionMember.on_behalf_of``). A member VMM does not
list in the adopted role is refused here, since VMM would refuse every call made for them.

Each function checks ``plan.change`` / ``subscription.change`` (``ops/authz.py``), writes in one
transaction and records an audit entry. Creating a new VMM role, member changes and pushing a
changed plan to VMM (the plan update run) build on these.
"""
from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction

from .. import authz, roles
from ..fabric import errors
from ..fabric.session import session_for
from ..fabric.userroles import UserRoleDetail, get_user_role
from ..models import Cloud, Plan, PowerAction, Subscription, SubscriptionMember
from . import audit


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


def read_user_role(connection, role: str) -> UserRoleDetail:
    """The VMM user role named ``role``, or with that ID (a GUID); ValidationError naming the cause."""
    try:
        role_id = str(uuid.UUID(str(role)))
    except ValueError:
        role_id = None
    try:
        s = session_for(connection)
        return get_user_role(s, role_id=role_id) if role_id else get_user_role(s, name=str(role))
    except errors.NotFound:
        raise ValidationError({"user_role": f"VMM server {connection.name} has no user role "
                                            f"{'with the ID' if role_id else 'named'} {role!r}"}) from None
    except errors.FabricError as exc:
        raise ValidationError({"user_role": f"cannot read the user role {role!r}: {exc}"}) from exc


def create_subscription(actor, plan: Plan, account_name: str, members, *, adopt_user_role: str) -> Subscription:
    """A subscription on ``plan`` adopting the existing VMM user role ``adopt_user_role`` (its name or ID).

    ``members``: ``(user, vmm_user)`` pairs; each user must have the tenant role and each ``vmm_user``
    must be a member of the role as VMM lists it (compared without regard to case, as Windows does)."""
    authz.require(actor, "subscription.change")
    if plan.state == Plan.State.DECOMMISSIONED:
        raise ValidationError({"plan": f"plan {plan.name} is decommissioned: it takes no new subscriptions"})
    account_name = (account_name or "").strip()
    if not account_name:
        raise ValidationError({"name": "the tenant account name is required"})
    members = [(user, (vmm_user or "").strip()) for user, vmm_user in members]
    role = read_user_role(plan.connection, adopt_user_role)
    listed = {m.lower() for m in role.members}
    for user, vmm_user in members:
        if not roles.is_tenant(user):
            raise ValidationError({"members": f"{user.get_username()} does not have the tenant role"})
        if not vmm_user:
            raise ValidationError({"members": f"{user.get_username()}: the account as VMM knows it (DOMAIN\\name) is required"})
        if vmm_user.lower() not in listed:
            raise ValidationError({"members": f"{vmm_user} is not a member of VMM user role {role.name} "
                                              f"(members: {', '.join(role.members) or 'none'}); VMM would refuse "
                                              "every call made for them"})
    taken = Subscription.objects.filter(user_role_id=role.id.lower()).first()
    if taken is not None:
        raise ValidationError({"user_role": f"VMM user role {role.name} already belongs to subscription {taken.name}; "
                                            "a role is one subscription's"})
    sub = Subscription(plan=plan, name=account_name, user_role_id=role.id.lower(), user_role_name=role.name)
    sub.full_clean(exclude=["members"])
    with transaction.atomic():
        sub.save()
        SubscriptionMember.objects.bulk_create(
            [SubscriptionMember(subscription=sub, user=user, vmm_user=vmm_user) for user, vmm_user in members])
        audit.record(actor, "subscription.create", sub, plan=plan.name, user_role=role.name, user_role_id=role.id,
                     adopted=True, members=[vmm_user for _, vmm_user in members])
    return sub
