"""Who may do what: the one place Slipway decides it (NetBox style).

Every view, service, websocket consumer and CLI command asks here:

``restrict(queryset, user, action)``
    the rows of ``queryset`` the user may act on with ``action``; one SQL query
    (tenant scopes are subqueries over subscriptions, never a Python loop).
``allowed(user, action, obj=None)``
    with ``obj``: may the user do ``action`` to that row (the same rule as
    ``restrict``, asked of one row); without: may the user do it at all (shows a
    page, a menu entry, a button).
``require(user, action, obj=None)``
    ``allowed`` or PermissionDenied with a message saying who may.
``requires(action)``
    view decorator: anonymous -> login page, refused -> 403 with the message.
``power_actions(user, vm)``
    which of start / shutdown / stop / save the user may take on that VM.

Templates ask through ``can.<domain>.<verb>`` (portal/context_processors.py, no
object) and ``{% allowed "vm.restore" vm as ok %}`` (ops/templatetags/slipway.py).

Actions (who: A admin, O operator, T tenant, on rows in the tenant's scope):

=====================  =========  ==================================================
action                 who        what
=====================  =========  ==================================================
vm.view                A O T      see a VM, its checkpoints and status
vm.checkpoint          O T        create (and remove) checkpoints of a VM
vm.restore             O T        restore a VM to a checkpoint
vm.power               O T        start, shut down, turn off, save (``power_actions``)
plan.view              A O T      see a plan (a tenant: the plans of their subscriptions)
plan.change            A          create, edit, decommission plans
subscription.view      A O T      see a subscription (a tenant: their own)
subscription.change    A          create, suspend, delete subscriptions; members
connection.view        A          see server connections
connection.change      A          create, edit, delete, test server connections
fabric.view            A O        see clusters, hosts, clouds, the whole VM list
fabric.sync            A O        request an inventory sync
run.view               A O T      watch a run (a tenant: runs acting on their VMs)
run.list               A O        the runs console: every run, with filters
run.start              O          start a runbook (pages, CLI, API)
run.operate            O          cancel, abort, retry or skip a step of a run
schedule.view          O          see runbook schedules
schedule.change        O          create, edit, enable, delete schedules
audit.view             A O        read the audit log
=====================  =========  ==================================================

A tenant's VM scope is data: the VMs whose VMM user role (``VirtualMachine.user_role_id``,
as inventory reads it) is the user role of a subscription the user is a member of
(``Subscription.members``), on the plan's VMM server. Per VM, the tenant's actions
follow that subscription: ``vm.checkpoint`` needs the checkpoint permission
"create, view and restore", ``vm.restore`` "view and restore" or more, ``vm.power``
at least one power action of the plan; the permission is the stricter of the plan's
and the one VMM is known to carry while a plan change is pushed
(``Subscription.enforced_permission``); a suspended subscription only views. A plan's
state does not take actions away: a decommissioned plan's subscriptions go on, as in
Azure Pack (no new subscriptions is the services' rule). A tenant watches a run that
acts on one of their VMs (``RunTarget``), whoever started it, and no other run.
"""
from __future__ import annotations

import dataclasses
import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q

from . import roles
from .models import (AuditEntry, Checkpoint, CheckpointPermission, Cloud, HostCluster, Plan, Run, RunSchedule, RunTarget,
                     ServerConnection, Subscription, UserRole, VirtualMachine, VMHost)
from .models.plans import PowerAction, at_least

A, O, T = roles.ADMIN, roles.OPERATOR, roles.TENANT
ACTIVE = Subscription.State.ACTIVE
MEMBER_STATES = (Subscription.State.ACTIVE, Subscription.State.SUSPENDED)


@dataclasses.dataclass(frozen=True)
class Action:
    name: str
    whole: frozenset  # roles that may do it to every row
    tenant: bool  # tenants may do it to rows in their scope
    what: str  # for messages: "Only operators <what>."


def _a(name, whole, what, tenant=False):
    return Action(name, frozenset(whole), tenant, what)


ACTIONS = {a.name: a for a in (
    _a("vm.view", (A, O), "see this VM", tenant=True),
    _a("vm.checkpoint", (O,), "make or remove checkpoints of this VM", tenant=True),
    _a("vm.restore", (O,), "restore this VM to a checkpoint", tenant=True),
    _a("vm.power", (O,), "start, stop or save this VM", tenant=True),
    _a("plan.view", (A, O), "see hosting plans", tenant=True),
    _a("plan.change", (A,), "create and change hosting plans"),
    _a("subscription.view", (A, O), "see subscriptions", tenant=True),
    _a("subscription.change", (A,), "create, suspend and delete subscriptions"),
    _a("connection.view", (A,), "see server connections"),
    _a("connection.change", (A,), "manage server connections"),
    _a("fabric.view", (A, O), "see the fabric"),
    _a("fabric.sync", (A, O), "sync the inventory"),
    _a("run.view", (A, O), "watch runs", tenant=True),
    _a("run.list", (A, O), "browse every run"),
    _a("run.start", (O,), "start runbooks"),
    _a("run.operate", (O,), "cancel, abort and steer runs"),
    _a("schedule.view", (A, O), "see runbook schedules"),
    _a("schedule.change", (O,), "manage runbook schedules"),
    _a("audit.view", (A, O), "read the audit log"),
)}

# Which actions apply to which model's rows (restrict refuses any other pairing: a typo is a bug, not an empty page).
MODELS = {
    VirtualMachine: "vm.", Checkpoint: "vm.", Plan: "plan.", Subscription: "subscription.", ServerConnection: "connection.",
    Cloud: "fabric.", HostCluster: "fabric.", VMHost: "fabric.", UserRole: "fabric.", Run: "run.", RunSchedule: "schedule.",
    AuditEntry: "audit.",
}


def action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise ValueError(f"unknown action {name!r}; actions: {', '.join(ACTIONS)}") from None


def _authenticated(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "is_active", True)


def _may_all(user, act: Action) -> bool:
    return bool(roles.role_names(user) & act.whole)


def _as_tenant(user, act: Action) -> bool:
    return act.tenant and roles.is_tenant(user)


# -- tenant scopes (Q objects over one model, each one SQL query with subqueries) --------------

def _subscriptions(user, name: str, vm_ref: str | None = None):
    """The user's subscriptions that grant ``name``; with ``vm_ref``, only the one owning that VM (OuterRef path)."""
    qs = Subscription.objects.filter(members=user).exclude(user_role_id="")
    if name.endswith(".view"):  # a suspended subscription still sees
        qs = qs.filter(state__in=MEMBER_STATES)
    else:
        qs = qs.filter(state=ACTIVE)
        if name in ("vm.checkpoint", "vm.restore"):
            need = at_least(CheckpointPermission.CREATE_VIEW_RESTORE if name == "vm.checkpoint"
                            else CheckpointPermission.VIEW_RESTORE)
            qs = qs.filter(plan__checkpoint_permission__in=need).filter(
                Q(enforced_permission="") | Q(enforced_permission__in=need))
        elif name == "vm.power":
            qs = qs.filter(functools.reduce(Q.__or__, (Q(**{f"plan__allow_{p}": True}) for p in PowerAction)))
    if vm_ref is not None:  # "" is the VM itself, "vm__" a checkpoint's VM
        qs = qs.filter(user_role_id=OuterRef(f"{vm_ref}user_role_id"), plan__connection_id=OuterRef(f"{vm_ref}connection_id"))
    return qs


def _tenant_q(model, user, name: str) -> Q:
    # the IN (implied by the EXISTS, which also pairs the VMM server) lets the database start from the
    # user_role_id index: among 10,000 VMs a tenant's list takes 1 ms instead of 15 (manage.py bench tenant-list)
    if model is VirtualMachine:
        return Q(user_role_id__in=_subscriptions(user, name).values("user_role_id")) & Q(Exists(_subscriptions(user, name, vm_ref="")))
    if model is Checkpoint:
        return Q(vm__user_role_id__in=_subscriptions(user, name).values("user_role_id")) & \
            Q(Exists(_subscriptions(user, name, vm_ref="vm__")))
    if model is Run:
        vms = VirtualMachine.objects.filter(Exists(_subscriptions(user, "vm.view", vm_ref="")))
        return Q(Exists(RunTarget.objects.filter(run=OuterRef("pk"), vm__in=vms)))
    if model is Subscription:
        return Q(pk__in=Subscription.objects.filter(members=user, state__in=MEMBER_STATES).values("pk"))
    if model is Plan:
        return Q(pk__in=Subscription.objects.filter(members=user, state__in=MEMBER_STATES).values("plan_id"))
    return Q(pk__in=[])


def restrict(queryset, user, name: str):
    """The rows of ``queryset`` that ``user`` may ``name``; still a lazy queryset (one query)."""
    act = action(name)
    prefix = MODELS.get(queryset.model)
    if prefix is None or not name.startswith(prefix):
        raise ValueError(f"action {name!r} does not apply to {queryset.model.__name__} rows")
    if not _authenticated(user):
        return queryset.none()
    if _may_all(user, act):
        return queryset
    if _as_tenant(user, act):
        return queryset.filter(_tenant_q(queryset.model, user, name))
    return queryset.none()


def allowed(user, name: str, obj=None) -> bool:
    act = action(name)
    if not _authenticated(user):
        return False
    if _may_all(user, act):
        return True
    if not _as_tenant(user, act):
        return False
    if obj is None:
        return True
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user, name).exists()


def _roles_for(act: Action) -> list[str]:
    return [r for r in roles.ALL_ROLES if r in act.whole or (r == T and act.tenant)]


def who_may(name: str) -> str:
    """'operators', 'admins and operators', ... in role order."""
    names = [f"{r}s" for r in _roles_for(action(name))]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def refusal(name: str, obj=None) -> str:
    act = action(name)
    if obj is not None and act.tenant:
        return f"You may not {act.what}: {obj} is not in your subscriptions, or its plan does not allow it."
    return f"Only {who_may(name)} {act.what}."


NEEDS = {"vm.checkpoint": "making checkpoints", "vm.restore": "restoring checkpoints", "vm.power": "power actions"}


def _tenant_reason(user, name: str, vm) -> str:
    """Why a tenant who sees ``vm`` may not ``name`` it: the subscription is suspended, or its plan says no."""
    sub = (_subscriptions(user, "vm.view").filter(user_role_id=vm.user_role_id, plan__connection_id=vm.connection_id)
           .select_related("plan").first())
    if sub is None:
        return ""
    if sub.state != ACTIVE:
        return (f"Subscription {sub.name} is suspended: its members can see {vm.name} but not act on it. "
                "Ask your administrator.")
    if name in ("vm.checkpoint", "vm.restore"):
        label = CheckpointPermission(sub.checkpoint_permission).label
        return (f"The plan of subscription {sub.name} ({sub.plan.name}) does not allow {NEEDS[name]}: its checkpoint "
                f"permission is '{label}'.")
    return f"The plan of subscription {sub.name} ({sub.plan.name}) allows no power actions."


def require(user, name: str, obj=None) -> None:
    """``allowed`` or PermissionDenied saying who may (a tenant refused on a VM they see: why)."""
    if not allowed(user, name, obj):
        reason = ""
        if isinstance(obj, VirtualMachine) and name in NEEDS and _as_tenant(user, action(name)):
            reason = _tenant_reason(user, name, obj)
        raise PermissionDenied(reason or refusal(name, obj))


def power_actions(user, vm) -> list[str]:
    """The power actions (PowerAction values) ``user`` may take on ``vm``: all for operators, the plan's for tenants."""
    if _may_all(user, action("vm.power")):
        return [str(p) for p in PowerAction]
    if not _as_tenant(user, action("vm.power")) or not _authenticated(user):
        return []
    sub = _subscriptions(user, "vm.power").filter(user_role_id=vm.user_role_id, plan__connection_id=vm.connection_id) \
        .select_related("plan").first()
    return sub.plan.power_actions if sub else []


def requires(name: str):
    """View decorator: anonymous -> the login page; a role without ``name`` -> 403 saying who may."""
    act = action(name)

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not _authenticated(request.user):
                return redirect_to_login(request.get_full_path())
            if not allowed(request.user, act.name):
                raise PermissionDenied(f"This page is for: {', '.join(_roles_for(act))}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class Can:
    """``can.run.operate`` in templates (the ``can`` context variable): asks ``allowed`` lazily."""

    def __init__(self, user, domain: str = ""):
        self._user, self._domain = user, domain

    def __getitem__(self, key):
        if not self._domain:
            return Can(self._user, key)
        name = f"{self._domain}.{key}"
        if name not in ACTIONS:
            raise KeyError(name)
        return allowed(self._user, name)

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None
