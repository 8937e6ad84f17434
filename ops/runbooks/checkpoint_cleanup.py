"""Checkpoint clean-up (seed 001): remove (merge) old checkpoints of the VMs in
a cloud, or everywhere, so no VM runs on a long differencing-disk chain.

``user_role=<ID>`` limits the run to the VMs whose VMM user role is that role
(``UserRoleID`` in VMM's VM listing, ops/fabric/vmm.py): one subscription's VMs.
A plan's maximum checkpoint age starts such runs (ops/services/expiry.py).

``older_than_days=N`` removes checkpoints added more than N days ago;
``keep_newest=K`` keeps each VM's K newest; with both, a checkpoint goes only
when it is beyond the newest K *and* older than N days. ``dry_run=true`` lists
what would go and removes nothing. Removals run in parallel within the VMM
server's bound, one at a time per VM (a VM has one disk chain to merge).
"""
import datetime as dt
import uuid

from django.core.exceptions import ValidationError

from ..fabric import bulk, vmm
from ..fabric.session import session_for
from .base import (Outcome, ParamErrors, Phase, Plan, Prepared, Runbook, StepSpec, as_bool, as_choice, as_int,
                   OUTAGE_PARAM, cloud_named, connection_named, fabric_check, outage_minutes,
                   own, reachable)


def select(checkpoints, older_than_days=None, keep_newest=None, now=None):
    """The checkpoints to remove, per the rules above."""
    now = now or dt.datetime.now(dt.timezone.utc)
    by_vm = {}
    for cp in checkpoints:
        by_vm.setdefault(cp.vm_id.lower(), []).append(cp)
    out = []
    for cps in by_vm.values():
        cps.sort(key=lambda c: c.added_at or now, reverse=True)
        candidates = cps[keep_newest:] if keep_newest is not None else cps
        if older_than_days is not None:
            limit = now - dt.timedelta(days=older_than_days)
            candidates = [c for c in candidates if c.added_at is not None and c.added_at < limit]
        out.extend(candidates)
    return out


def as_role_id(raw) -> str:
    """A VMM user role ID (a GUID), lower case as inventory keeps it; "" when not given."""
    text = str(raw or "").strip()
    if not text:
        return ""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValidationError(f"user_role must be a VMM user role ID (a GUID such as "
                              f"3f2504e0-4f89-41d3-9a0c-0305e82c3301), not {text!r}", code="invalid") from None


def role_named(s, conn, role_id: str) -> str:
    """The name of the user role ``role_id`` on ``conn``; refused when VMM has no such role."""
    roles = fabric_check(lambda: vmm.list_user_roles(s), "the user role")
    for role in roles:
        if role.id.lower() == role_id:
            return role.name
    raise ValidationError(f"user_role: VMM server {conn.name} has no user role with the ID {role_id}")


def in_scope(vm, cloud: str, role_id: str) -> bool:
    """Whether the run covers ``vm`` (a ``VMInfo``): in the cloud if one is given, of the user role if one is."""
    return ((not cloud or vm.cloud_name.lower() == cloud.lower())
            and (not role_id or vm.user_role_id.lower() == role_id))


class CheckpointCleanup(Runbook):
    kind = "checkpoint-cleanup"
    title = "Checkpoint clean-up"
    description = "Remove (merge) old checkpoints of the VMs in a cloud, of a user role, or everywhere."
    phases = [Phase("discover", "Find the checkpoints to remove"), Phase("remove", "Remove checkpoints")]
    job_actions = {"remove-checkpoint"}
    done_messages = {"remove-checkpoint": "Removed checkpoint {target}"}
    param_names = ("cloud", "user_role", "older_than_days", "keep_newest", "dry_run", "connection", "on_error",
                   "outage_minutes")
    params = [
        {"name": "cloud", "label": "Cloud", "help": "Only the VMs of this cloud (empty: every VM)."},
        {"name": "user_role", "label": "VMM user role ID",
         "help": "Only the VMs of this VMM user role, e.g. one subscription's (empty: whatever their role)."},
        {"name": "older_than_days", "label": "Older than (days)", "type": "int", "min": 0, "max": 36500,
         "help": "Remove checkpoints added more than this many days ago."},
        {"name": "keep_newest", "label": "Keep newest", "type": "int", "min": 0, "max": 1000,
         "help": "Keep each VM's newest K checkpoints. Give this, the age, or both."},
        {"name": "dry_run", "label": "Dry run: list what would go, remove nothing", "type": "bool"},
        {"name": "on_error", "label": "When a removal fails", "default": "continue", "choices": [
            ("continue", "Go on with the others, then fail naming it"), ("wait", "Wait for the operator")]},
        {"name": "connection", "label": "VMM connection", "help": "Empty: the only enabled VMM connection."},
        OUTAGE_PARAM,
    ]
    default_on_error = "continue"

    def on_error(self, run):
        # one VM's failed merge must not stop the others: finish, then fail naming it
        return "wait" if run.params.get("on_error") == "wait" else "compensate"

    def prepare(self, raw, check_fabric=True):
        self.check_names(raw)
        bad = ParamErrors()
        older, keep = raw.get("older_than_days"), raw.get("keep_newest")
        if older in (None, "") and keep in (None, ""):
            bad.add("give older_than_days=N or keep_newest=K (or both): which checkpoints should go?")
        older = None if older in (None, "") else bad.take(as_int, older, "older_than_days", minimum=0, maximum=36500)
        keep = None if keep in (None, "") else bad.take(as_int, keep, "keep_newest", minimum=0, maximum=1000)
        dry_run = bad.take(as_bool, raw.get("dry_run"), "dry_run")
        role = bad.take(as_role_id, raw.get("user_role")) or ""
        on_error = bad.take(as_choice, raw.get("on_error"), "on_error", ("continue", "wait"), "continue")
        conn = bad.take(connection_named, raw.get("connection"), "vmm")
        outage = bad.take(outage_minutes, raw)
        bad.raise_any()  # the fabric is asked only about parameters that are right
        cloud = str(raw.get("cloud") or "").strip()
        claims, role_label = [], role
        if check_fabric:
            s = session_for(conn)
            if cloud:
                cloud = cloud_named(s, conn, cloud)
            if role:
                role_label = role_named(s, conn, role)
            vms = fabric_check(lambda: vmm.list_vms(s), "the VMs")
            claims = sorted(v.id.lower() for v in vms if in_scope(v, cloud, role))
        params = {"cloud": cloud, "user_role": role, "older_than_days": older, "keep_newest": keep, "dry_run": dry_run,
                  "connection": conn.name, "on_error": on_error, "outage_minutes": outage}
        rules = []
        if older is not None:
            rules.append(f"older than {older} days")
        if keep is not None:
            rules.append(f"beyond the newest {keep}")
        scope = ("cloud " + cloud if cloud else "all clouds") + (f", VMs of user role {role_label}" if role else "")
        title = f"Checkpoint clean-up: {scope}, {' and '.join(rules)}" + (" (dry run)" if dry_run else "")
        # two roles' runs (two subscriptions') never conflict, two for one role do (ops/services/runs.py
        # compares claims first, this key when a run claims no VM); a dry run changes nothing, so it
        # never conflicts with a real one
        key = (f"{conn.name}:cloud:{cloud.lower() or '*'}" + (f":role:{role}" if role else "")
               + (":dry-run" if dry_run else ""))
        return Prepared(params, conn, title, key, [] if dry_run else claims)

    def plan(self, phase, run):
        if phase.name == "discover":
            return Plan([StepSpec("discover", run.params.get("cloud") or "all clouds")])
        if run.params.get("dry_run"):
            return Plan([], [("info", "Dry run: nothing removed")])
        return Plan([StepSpec("remove-checkpoint", f"{c['vm_name']}: {c['name']}", c["vm_id"],
                              {"checkpoint_id": c["id"], "cmdlet": "Remove-SCVMCheckpoint", "vm": c["vm_name"]})
                     for c in own(run).get("remove", [])])

    def expected_steps(self, run):
        if "remove" not in own(run):
            return None
        return 1 + (0 if run.params.get("dry_run") else len(own(run)["remove"]))

    def do_discover(self, c):
        p = c.params
        s = c.vmm
        vms = vmm.list_vms(s)
        covered = {v.id.lower(): v for v in vms if in_scope(v, p.get("cloud") or "", p.get("user_role") or "")}
        cps = [cp for cp in vmm.list_checkpoints(s) if cp.vm_id.lower() in covered]
        for cp in cps:
            cp.vm_name = cp.vm_name or covered[cp.vm_id.lower()].name
        chosen = select(cps, p.get("older_than_days"), p.get("keep_newest"))
        chosen.sort(key=lambda cp: (cp.vm_name, cp.added_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc)))
        rows = [{"id": cp.id, "vm_id": cp.vm_id, "vm_name": cp.vm_name, "name": cp.name,
                 "added_at": cp.added_at.isoformat() if cp.added_at else ""} for cp in chosen]
        verb = "would be removed" if p.get("dry_run") else "to remove"
        role = p.get("user_role") or ""
        role_name = next((v.user_role_name for v in covered.values() if v.user_role_name), role)
        of_role = f" of user role {role_name}" if role else ""
        msg = f"{len(cps)} checkpoints on {len(covered)} VMs{of_role}; {len(rows)} {verb}"
        if p.get("dry_run") and rows:
            msg += ": " + "; ".join(f"{r['vm_name']}: '{r['name']}' ({r['added_at'][:10] or 'no date'})" for r in rows[:200])
        return Outcome.done(msg, {"checkpoints": len(cps), "selected": len(rows)}, context={"remove": rows})

    def prefetch(self, ctxs):
        ids = [c.target_id for c in ctxs if c.action == "remove-checkpoint" and c.target_id]
        return {"checkpoints": bulk.checkpoints_of(ctxs[0].vmm, ids)} if ids else {}

    def do_remove_checkpoint(self, c):
        cp_id = c.data["checkpoint_id"]
        cached = c.cache.get("checkpoints", {})
        present = cached[c.target_id.lower()] if c.target_id.lower() in cached else vmm.list_checkpoints(c.vmm, c.target_id)
        if not any(cp.id.lower() == cp_id.lower() for cp in present):
            return Outcome.done(f"{c.target} is already gone", {"already": True})
        return Outcome.submit(bulk.remove_checkpoint_request(cp_id, c.target),
                              f"Removing checkpoint {c.target} (merging its disk)")

    def summarize(self, run, steps, outcome):
        removed = [s for s in steps if s.action == "remove-checkpoint" and s.state == "succeeded"]
        failed = [s for s in steps if s.action == "remove-checkpoint" and s.state == "failed"]
        total = len(own(run).get("remove", []))
        if run.params.get("dry_run"):
            return f"Dry run: {total} checkpoints would be removed; nothing was changed."
        text = f"Removed {len(removed)} of {total} checkpoints"
        if outcome == "succeeded":
            return text + "."
        head = run.context.get("engine", {}).get("failure") or ""
        text = ("Cancelled. " if outcome == "cancelled" else f"Failed: {head.rstrip('.')}. " if head else "Failed. ") + text
        if failed:
            text += "; not removed: " + "; ".join(f"{s.target} ({s.error})" for s in failed[:10])
        return text + "."
