"""What a VM list and a VM's page show, read in a fixed number of queries whatever the number of
VMs: the portal's My VMs and VM page (portal/views/) use it, and so can the REST API.

``visible_vms(user)``
    the VMs the user may see (``authz.restrict(..., "vm.view")``) annotated with the subscription's
    name and the newest checkpoint's time: one SQL query (subqueries, no per-row lookups).
``vm_page(user, vm)``
    everything a VM's page shows: facts, checkpoints with their expiry under the plan, the actions
    the user may take (the plan's and nothing else), what a new checkpoint will do, the run acting on
    the VM now and the recent runs that touched it.
"""
from __future__ import annotations

import dataclasses

from django.db.models import OuterRef, Subquery

from . import authz
from .models import Checkpoint, CheckpointPermission, Plan, PowerAction, Run, RunTarget, Subscription, VirtualMachine
from .services import vm_actions

STATUSES = ["Running", "PowerOff", "Saved", "Paused"]


def _subscriptions_of_vm():
    return Subscription.objects.filter(user_role_id=OuterRef("user_role_id"), plan__connection_id=OuterRef("connection_id"))


def visible_vms(user):
    return (authz.restrict(VirtualMachine.objects.all(), user, "vm.view")
            .select_related("cloud")
            .annotate(subscription_name=Subquery(_subscriptions_of_vm().values("name")[:1]),
                      newest_checkpoint_at=Subquery(Checkpoint.objects.filter(vm=OuterRef("pk"), added_at__isnull=False)
                                                    .order_by("-added_at").values("added_at")[:1])))


def find_vm(user, vm_id, action="vm.view"):
    """The VM with VMM's ID ``vm_id`` if the user may ``action`` it, else None (the page answers 404)."""
    return authz.restrict(VirtualMachine.objects.select_related("cloud", "connection"), user, action) \
        .filter(vmm_id=vm_id).order_by("pk").first()


@dataclasses.dataclass
class VMPage:
    vm: VirtualMachine
    subscription: Subscription | None
    plan: Plan | None
    checkpoints: list  # Checkpoint rows with .expires_at
    can_checkpoint: bool
    can_restore: bool
    power: list  # (value, label) of the power actions the user may take
    checkpoint_plan: vm_actions.CheckpointPlan | None
    active_run: Run | None
    recent_runs: list
    suspended: bool

    @property
    def checkpoint_permission_label(self) -> str:
        perm = self.subscription.checkpoint_permission if self.subscription else ""
        return CheckpointPermission(perm).label if perm else ""


def vm_page(user, vm) -> VMPage:
    sub = Subscription.objects.select_related("plan").filter(
        user_role_id=vm.user_role_id, plan__connection_id=vm.connection_id).first() if vm.user_role_id else None
    plan = sub.plan if sub else None
    checkpoints = list(Checkpoint.objects.filter(vm=vm).order_by("-added_at", "-id"))
    for cp in checkpoints:
        cp.expires_at = vm_actions.expires_at(cp, plan)
    can_checkpoint = authz.allowed(user, "vm.checkpoint", vm)
    power = [(p.value, p.label) for p in PowerAction if p.value in authz.power_actions(user, vm)] \
        if authz.allowed(user, "vm.power", vm) else []
    runs = authz.restrict(Run.objects.filter(pk__in=RunTarget.objects.filter(vm=vm).values("run_id")), user, "run.view")
    recent = list(runs.select_related("created_by").order_by("-pk")[:11])
    active = next((r for r in recent if r.state in Run.ACTIVE_STATES), None) or vm_actions.active_run(vm)
    recent = [r for r in recent if r != active][:10]  # the active one shows live above the list
    return VMPage(vm=vm, subscription=sub, plan=plan, checkpoints=checkpoints, can_checkpoint=can_checkpoint,
                  can_restore=authz.allowed(user, "vm.restore", vm) and bool(checkpoints), power=power,
                  checkpoint_plan=vm_actions.checkpoint_plan(vm, plan) if can_checkpoint else None,
                  active_run=active if active is None or authz.allowed(user, "run.view", active) else None,
                  recent_runs=recent, suspended=bool(sub and sub.state == Subscription.State.SUSPENDED))
