"""The one write path for subscriptions (issue 7, section 2); plans are ops/services/plans.py.

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
from ..fabric import errors, userroles
from ..fabric.session import session_for
from ..fabric.userroles import UserRoleDetail, get_user_role
from ..models import Plan, Subscription, SubscriptionMember, VirtualMachine
from . import audit


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


def set_state(actor, sub: Subscription, state: str) -> Subscription:
    """Suspend (members see their VMs but cannot act) or activate a subscription."""
    authz.require(actor, "subscription.change")
    if state not in Subscription.State.values:
        raise ValidationError({"state": f"expected one of {', '.join(Subscription.State.values)}, not {state!r}"})
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
        if sub.state == state:
            return sub
        was, sub.state = sub.state, state
        sub.save(update_fields=["state", "updated_at"])
        audit.record(actor, "subscription.suspend" if state == Subscription.State.SUSPENDED else "subscription.activate",
                     sub, was=was)
    return sub


def vm_count(sub: Subscription) -> int:
    """The subscription's VMs as inventory reads them (the VMs of its user role on the plan's server)."""
    if not sub.user_role_id:
        return 0
    return VirtualMachine.objects.filter(connection_id=sub.plan.connection_id, user_role_id=sub.user_role_id).count()


def delete_subscription(actor, sub: Subscription) -> None:
    """Refused while the subscription has VMs (saying how many). The VMM user role is left as it is."""
    authz.require(actor, "subscription.change")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().select_related("plan").get(pk=sub.pk)
        n = vm_count(sub)
        if n:
            raise ValidationError({"subscription": f"subscription {sub.name} still has {n} VM{'s' if n != 1 else ''} "
                                                   f"(VMM user role {sub.user_role_name}); move or remove "
                                                   f"{'them' if n != 1 else 'it'} in VMM first, then sync"})
        audit.record(actor, "subscription.delete", sub, plan=sub.plan.name, user_role=sub.user_role_name,
                     members=list(sub.memberships.values_list("vmm_user", flat=True)))
        sub.delete()


def add_member(actor, sub: Subscription, user, vmm_user: str) -> SubscriptionMember:
    """``user`` (a tenant) joins: VMM's user role lists ``vmm_user`` first (Set-SCUserRole -AddMember)."""
    authz.require(actor, "subscription.change")
    vmm_user = (vmm_user or "").strip()
    if not roles.is_tenant(user):
        raise ValidationError({"user": f"{user.get_username()} does not have the tenant role"})
    if not vmm_user:
        raise ValidationError({"vmm_user": "the account as VMM knows it (DOMAIN\\name) is required"})
    if SubscriptionMember.objects.filter(subscription=sub, user=user).exists():
        raise ValidationError({"user": f"{user.get_username()} is already a member of {sub.name}"})
    try:
        role = userroles.add_member(session_for(sub.plan.connection), sub.user_role_id, vmm_user, sub.user_role_name)
    except errors.FabricError as exc:
        raise ValidationError({"vmm_user": f"VMM did not add {vmm_user} to user role {sub.user_role_name}: {exc}"}) from exc
    if vmm_user.lower() not in {m.lower() for m in role.members}:
        raise ValidationError({"vmm_user": f"VMM user role {sub.user_role_name} does not list {vmm_user} after "
                                           "Set-SCUserRole -AddMember; nothing was changed in Slipway"})
    with transaction.atomic():
        member = SubscriptionMember.objects.create(subscription=sub, user=user, vmm_user=vmm_user)
        audit.record(actor, "subscription.member_add", sub, member=user.get_username(), vmm_user=vmm_user)
    return member


def remove_member(actor, sub: Subscription, user) -> None:
    """``user`` leaves: Slipway stops them at once, then VMM's role drops them (Set-SCUserRole -RemoveMember)."""
    authz.require(actor, "subscription.change")
    member = SubscriptionMember.objects.filter(subscription=sub, user=user).first()
    if member is None:
        raise ValidationError({"user": f"{user.get_username()} is not a member of {sub.name}"})
    with transaction.atomic():
        member.delete()
        audit.record(actor, "subscription.member_remove", sub, member=user.get_username(), vmm_user=member.vmm_user)
    try:
        userroles.remove_member(session_for(sub.plan.connection), sub.user_role_id, member.vmm_user, sub.user_role_name)
    except errors.FabricError as exc:
        raise ValidationError({"vmm_user": f"{user.get_username()} no longer has access through Slipway, but VMM did "
                                           f"not remove {member.vmm_user} from user role {sub.user_role_name}: {exc}. "
                                           "Remove them in VMM."}) from exc
