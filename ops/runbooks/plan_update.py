"""Plan update (issue 7, section 2): push a hosting plan's checkpoint permission to the VMM user
role of each of its subscriptions, and read it back.

Started by ``ops/services/plans.py`` ``update_plan`` when a change needs VMM to know (the
checkpoint permission, or the clouds offered); never by hand (``listed = False``). One step per
subscription (``push-permission``): read the role (``Get-SCUserRole``); in each cloud the plan
offers, add the scope if missing and make the role carry exactly the plan's permission
(``Add-/Remove-SCUserRolePermission -Checkpoint | -CheckpointRestoreOnly``, waiting on each job);
in the clouds the plan no longer offers, take the checkpoint permission away; then read the role
again and compare. Only what VMM reads back counts as done.

Until a subscription's step has confirmed the new permission, Slipway enforces the stricter of the
old and the new one for it (``Subscription.enforced_permission``, set by the service when the run
starts). The step keeps that field equal to the strictest permission it read back from VMM, and
clears it once VMM carries exactly the plan's. A failed push leaves it set: the tenant keeps the
stricter rights, the run fails saying which subscription and why, and the plan's page offers
"Push to VMM again" (a new plan update run: the step is idempotent, it changes only what differs).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

from ..fabric import userroles, vmm
from ..models import CheckpointPermission, ServerConnection, Subscription
from ..models.plans import PERMISSION_ORDER
from .base import Outcome, Phase, Plan, Prepared, Runbook, StepSpec

# Slipway's checkpoint permission -> the one VMM permission the role carries for it in each cloud
VMM_PERMISSION = {CheckpointPermission.NONE: "", CheckpointPermission.VIEW_RESTORE: "CheckpointRestoreOnly",
                  CheckpointPermission.CREATE_VIEW_RESTORE: "Checkpoint"}
FROM_VMM = {"": CheckpointPermission.NONE, "CheckpointRestoreOnly": CheckpointPermission.VIEW_RESTORE,
            "Checkpoint": CheckpointPermission.CREATE_VIEW_RESTORE}
JOB_TIMEOUT = 300.0


def carried(role: userroles.UserRoleDetail, clouds: list[str]) -> str:
    """The strictest checkpoint permission ``role`` carries across ``clouds`` (what a tenant may rely on)."""
    found = [str(FROM_VMM[role.checkpoint_permission(c)]) for c in clouds] or [str(CheckpointPermission.NONE)]
    return str(PERMISSION_ORDER[min(PERMISSION_ORDER.index(p) for p in found)])


def differences(role: userroles.UserRoleDetail, permission: str, clouds: list[str], dropped: list[str]) -> list:
    """What must change for ``role`` to carry exactly ``permission`` in ``clouds`` and none in ``dropped``:
    ("scope", cloud, "") / ("remove", cloud, vmm_permission) / ("add", cloud, vmm_permission), in that order."""
    want = VMM_PERMISSION[CheckpointPermission(permission)]
    scope = {c.lower() for c in role.clouds}
    out = [("scope", c, "") for c in clouds if c.lower() not in scope]
    for cloud in clouds + dropped:
        target = want if cloud in clouds else ""
        have = role.cloud_permissions.get(cloud, [])
        out += [("remove", cloud, p) for p in userroles.CHECKPOINT_PERMISSIONS if p in have and p != target]
        if target and target not in have:
            out.append(("add", cloud, target))
    return out


def _say(verb, cloud, perm) -> str:
    return f"add {cloud} to the scope" if verb == "scope" else f"{verb} {perm} in {cloud}"


class PlanUpdate(Runbook):
    kind = "plan-update"
    title = "Plan update"
    description = "Push a hosting plan's checkpoint permission to its subscriptions' VMM user roles and read it back."
    listed = False
    default_on_error = "compensate"  # a failed push ends the run; the plan page pushes again
    phases = [Phase("push", "Push the permission to each subscription's user role")]
    param_names = ("connection", "plan_id", "plan", "permission", "clouds", "dropped", "subscriptions")

    def prepare(self, raw, check_fabric=True):
        self.check_names(raw)
        conn = ServerConnection.objects.filter(kind="vmm", name=raw.get("connection")).first()
        if conn is None:
            raise ValidationError(f"connection: no VMM connection is named {raw.get('connection')!r}")
        if raw.get("permission") not in CheckpointPermission.values:
            raise ValidationError(f"permission: expected one of {', '.join(CheckpointPermission.values)}")
        params = {k: raw.get(k) for k in self.param_names}
        params["clouds"], params["dropped"] = list(raw.get("clouds") or []), list(raw.get("dropped") or [])
        params["subscriptions"] = [dict(s) for s in raw.get("subscriptions") or []]
        label = CheckpointPermission(params["permission"]).label
        title = f"Plan update: {params['plan']}: checkpoints '{label}' for {len(params['subscriptions'])} subscription(s)"
        return Prepared(params, conn, title, f"plan:{params['plan_id']}", [])

    def expected_steps(self, run):
        return len(run.params.get("subscriptions") or [])

    def plan(self, phase, run):
        return Plan([StepSpec("push-permission", f"{s['name']} ({s['role_name']})", s["role_id"], dict(s))
                     for s in run.params.get("subscriptions") or []])

    def do_push_permission(self, c):
        p, sub = c.params, c.data
        s = c.vmm
        label = sub["role_name"] or sub["role_id"]
        role = userroles.get_user_role(s, role_id=sub["role_id"])
        changes = differences(role, p["permission"], p["clouds"], p["dropped"])
        done = []
        for verb, cloud, perm in changes:
            if verb == "scope":
                userroles.add_scope(s, sub["role_id"], cloud, label)
            else:
                fn = userroles.add_checkpoint_permission if verb == "add" else userroles.remove_checkpoint_permission
                vmm.wait_job(s, fn(s, sub["role_id"], cloud, perm, label), JOB_TIMEOUT)
            done.append(_say(verb, cloud, perm))
            # what VMM carries now, read back after each change: never looser than the truth
            role = userroles.get_user_role(s, role_id=sub["role_id"])
            self._enforce(sub["id"], p["permission"], carried(role, p["clouds"]))
        role = userroles.get_user_role(s, role_id=sub["role_id"])
        left = differences(role, p["permission"], p["clouds"], p["dropped"])
        if left:
            self._enforce(sub["id"], p["permission"], carried(role, p["clouds"]))
            return Outcome.failed(f"VMM server {c.connection.name}: user role {label} of subscription {sub['name']} "
                                  f"reads back different from plan {p['plan']}: still to "
                                  f"{', '.join(_say(*d) for d in left)}")
        Subscription.objects.filter(pk=sub["id"]).update(enforced_permission="")
        what = CheckpointPermission(p["permission"]).label
        how = f" ({'; '.join(done)})" if done else " (it already did: nothing to change)"
        return Outcome.done(f"Subscription {sub['name']}: user role {label} carries '{what}' in "
                            f"{', '.join(p['clouds'])}, read back from VMM{how}", {"changes": done})

    @staticmethod
    def _enforce(sub_id, permission, vmm_carries):
        """Slipway enforces the stricter of the plan's and what VMM carries until they match."""
        Subscription.objects.filter(pk=sub_id).update(
            enforced_permission="" if vmm_carries == permission else vmm_carries)

    def summarize(self, run, steps, outcome):
        p = run.params
        ok = [s for s in steps if s.state == "succeeded"]
        failed = [s for s in steps if s.state == "failed"]
        label = CheckpointPermission(p["permission"]).label
        if outcome == "succeeded":
            return f"Plan {p['plan']}: '{label}' confirmed in VMM for all {len(ok)} subscription(s)."
        text = f"Plan {p['plan']}: '{label}' confirmed for {len(ok)} of {len(steps)} subscription(s)."
        if failed:
            text += (f" Not confirmed: {', '.join(s.target for s in failed)} ({failed[0].error}); until it is, "
                     "their members keep the stricter of the old and the new permission.")
        return text
