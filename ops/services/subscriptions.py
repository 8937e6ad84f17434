"""The one write path for subscriptions (issue 7, section 2); plans are ops/services/plans.py.

``create_subscription(actor, plan, account_name, members, adopt_user_role=... | new_user_role=...)``
    a tenant account on a plan, with a new VMM user role (TenantAdmin profile, scoped to the
    plan's clouds, the members added, its checkpoint permission pushed by a plan update run)
    or adopting one which already exists (the demo's roles, or a role an administrator made in
    VMM): the role is read from the fabric (``ops/fabric/userroles.py``) and its ID and name are
    stored; the subscription's VMs are then the inventory VMs of that role.

Members are ``(user, vmm_user)`` pairs: the Django user who signs in and the same person as
VMM lists them in the role (``CONTOSO\\alice``); every VMM call made for the member carries
``-OnBehalfOfUser <vmm_user>`` (``SubscriptionMember.on_behalf_of``). A member VMM does not
list in the adopted role is refused here, since VMM would refuse every call made for them.

Each function checks ``plan.change`` / ``subscription.change`` (``ops/authz.py``), writes in one
transaction and records an audit entry. VMM is changed before Slipway when access is granted
(a member added) and after it when access is taken away (a member removed), so that Slipway never
lets a tenant further than VMM would.
"""
from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from .. import authz, roles
from ..fabric import errors, userroles
from ..fabric.session import session_for
from ..fabric.userroles import UserRoleDetail, get_user_role
from ..models import CheckpointPermission, Plan, Subscription, SubscriptionMember, VirtualMachine
from . import audit, plans


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


def create_subscription(actor, plan: Plan, account_name: str, members, *, adopt_user_role: str | None = None,
                        new_user_role: str | None = None):
    """A subscription on ``plan``; returns ``(subscription, plan update run or None)``.

    ``adopt_user_role``: the name or ID of a VMM user role that already exists; each ``vmm_user`` must be
    a member of it as VMM lists it (compared without regard to case, as Windows does). Otherwise a new
    user role is made (``new_user_role``, default the account name): ``New-SCUserRole -UserRoleProfile
    TenantAdmin``, the plan's clouds added to its scope and the members added, each read back; if any of
    that fails the new role is removed again and nothing is saved. Its checkpoint permission is then pushed
    by a plan update run for this subscription alone, and until that run has read it back the members
    may not touch checkpoints (``enforced_permission = none``).

    ``members``: ``(user, vmm_user)`` pairs; each user must have the tenant role."""
    authz.require(actor, "subscription.change")
    if plan.state == Plan.State.DECOMMISSIONED:
        raise ValidationError({"plan": f"plan {plan.name} is decommissioned: it takes no new subscriptions"})
    account_name = (account_name or "").strip()
    if not account_name:
        raise ValidationError({"name": "the tenant account name is required"})
    if Subscription.objects.filter(name__iexact=account_name).exists():
        raise ValidationError({"name": f"a subscription named {account_name} already exists"})
    members = [(user, (vmm_user or "").strip()) for user, vmm_user in members]
    for user, vmm_user in members:
        if not roles.is_tenant(user):
            raise ValidationError({"members": f"{user.get_username()} does not have the tenant role"})
        if not vmm_user:
            raise ValidationError({"members": f"{user.get_username()}: the account as VMM knows it (DOMAIN\\name) is required"})
    if adopt_user_role:
        role = read_user_role(plan.connection, adopt_user_role)
        listed = {m.lower() for m in role.members}
        for _user, vmm_user in members:
            if vmm_user.lower() not in listed:
                raise ValidationError({"members": f"{vmm_user} is not a member of VMM user role {role.name} "
                                                  f"(members: {', '.join(role.members) or 'none'}); VMM would refuse "
                                                  "every call made for them"})
        taken = Subscription.objects.filter(user_role_id=role.id.lower()).first()
        if taken is not None:
            raise ValidationError({"user_role": f"VMM user role {role.name} already belongs to subscription "
                                                f"{taken.name}; a role is one subscription's"})
    else:
        role = _new_user_role(plan, (new_user_role or account_name).strip(), [v for _, v in members])
    sub = Subscription(plan=plan, name=account_name, user_role_id=role.id.lower(), user_role_name=role.name,
                       enforced_permission="" if adopt_user_role else CheckpointPermission.NONE)
    try:
        sub.full_clean(exclude=["members"])
        with transaction.atomic():
            sub.save()
            SubscriptionMember.objects.bulk_create(
                [SubscriptionMember(subscription=sub, user=user, vmm_user=vmm_user) for user, vmm_user in members])
            audit.record(actor, "subscription.create", sub, plan=plan.name, user_role=role.name, user_role_id=role.id,
                         adopted=bool(adopt_user_role), members=[vmm_user for _, vmm_user in members])
    except Exception:
        if not adopt_user_role:
            _remove_quietly(plan.connection, role)
        raise
    run = None
    if not adopt_user_role:
        try:
            run = plans.push_plan(actor, plan, only=[sub])
        except ValidationError:
            pass  # a push of the plan is running; the plan page's "Push to VMM again" covers this one
    return sub, run


def _new_user_role(plan: Plan, name: str, vmm_users: list[str]) -> UserRoleDetail:
    """New-SCUserRole (TenantAdmin) scoped to the plan's clouds with ``vmm_users``; removed again on any failure."""
    if not name:
        raise ValidationError({"user_role": "the VMM user role's name is required"})
    s = session_for(plan.connection)
    try:
        get_user_role(s, name=name)
    except errors.NotFound:
        pass
    except errors.FabricError as exc:
        raise ValidationError({"user_role": f"cannot read VMM user roles: {exc}"}) from exc
    else:
        raise ValidationError({"user_role": f"VMM server {plan.connection.name} already has a user role named {name}: "
                                            "adopt it, or choose another name"})
    try:
        role = userroles.create_user_role(s, name, "TenantAdmin", f"Slipway subscription on plan {plan.name}")
    except errors.FabricError as exc:
        raise ValidationError({"user_role": f"VMM did not create user role {name}: {exc}"}) from exc
    step = ""
    try:
        for cloud in plan.clouds.order_by("name").values_list("name", flat=True):
            step = f"add cloud {cloud} to its scope"
            role = userroles.add_scope(s, role.id, cloud, name)
        for vmm_user in vmm_users:
            step = f"add member {vmm_user}"
            role = userroles.add_member(s, role.id, vmm_user, name)
        role = get_user_role(s, role_id=role.id)
        missing = [c for c in plan.clouds.values_list("name", flat=True) if c.lower() not in {x.lower() for x in role.clouds}]
        missing += [u for u in vmm_users if u.lower() not in {m.lower() for m in role.members}]
        if missing:
            step = "read it back"
            raise errors.FabricError(plan.connection.name, f"user role {name} does not list {', '.join(missing)}")
    except errors.FabricError as exc:
        undone = _remove_quietly(plan.connection, role)
        raise ValidationError({"user_role": f"VMM user role {name}: could not {step}: {exc}. "
                               + ("The new role was removed again; nothing was saved." if undone else
                                  f"Removing the new role failed too: remove user role {name} in VMM.")}) from exc
    return role


def _remove_quietly(connection, role) -> bool:
    try:
        userroles.remove_user_role(session_for(connection), role.id, role.name)
        return True
    except errors.FabricError:
        return False


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


def vm_counts(subs) -> dict[int, int]:
    """``{subscription pk: VM count}`` for a list of subscriptions (plan selected), in one query."""
    roles_ = {(s.plan.connection_id, s.user_role_id): s.pk for s in subs if s.user_role_id}
    if not roles_:
        return {}
    rows = (VirtualMachine.objects.filter(user_role_id__in={r for _, r in roles_})
            .values_list("connection_id", "user_role_id").annotate(n=Count("pk")))
    return {roles_[(c, r)]: n for c, r, n in rows if (c, r) in roles_}


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
