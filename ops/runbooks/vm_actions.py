"""What a tenant (or an operator) does to one VM from its page: checkpoint, restore, power.

Each is a small run (one VM, a few steps) started by ``ops/services/vm_actions.py``, which
checks the permission and the plan's rules and puts what they decided in the parameters:

``vm-checkpoint``  create the checkpoint, confirm it exists, then remove the ones it replaces
                   (``replace``: the plan keeps 1, or keeps N and removes the oldest). If a
                   removal fails the VM keeps both and the run says so.
``vm-restore``     optionally checkpoint first (``first_name``), then restore the checkpoint.
``vm-power``       start, shut down, turn off or save.

Every VMM call carries ``-OnBehalfOfUser <user> -OnBehalfOfUserRole <role_id>`` when the
parameters name a tenant (``ops/fabric/behalf.py``), so VMM refuses what the subscription's user
role does not allow (errors.AccessDenied fails the step with VMM's message). A checkpoint is
recognised as this run's by its name and by not having existed before the run (``before``: the
IDs the VM had), so a step done again after a crash finds it instead of making a second.

These runbooks are not offered on the runbook pages or the CLI (``listed = False``): their
parameters are the services' decisions, not an operator's input.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

from ..fabric import vmm
from ..fabric.behalf import OnBehalfOf
from ..models import PowerAction, ServerConnection
from .base import Outcome, Phase, Plan, Prepared, Runbook, StepSpec

COMMON = ("connection", "vm_id", "vm", "user", "role_id")
STOP_METHOD = {PowerAction.SHUTDOWN: "shutdown", PowerAction.STOP: "turnoff", PowerAction.SAVE: "save"}


def _who(c):
    return OnBehalfOf(c.params["user"], c.params["role_id"]) if c.params.get("user") else None


def _new_ones(c, name):
    """Checkpoints of the VM named ``name`` that it did not have before the run."""
    before = {i.lower() for i in c.params.get("before", [])}
    return [cp for cp in vmm.list_checkpoints(c.vmm, c.params["vm_id"], on_behalf_of=_who(c))
            if cp.name == name and cp.id.lower() not in before]


class VMRunbook(Runbook):
    listed = False
    default_on_error = "compensate"
    job_actions = {"new-checkpoint", "remove-checkpoint", "restore", "power"}
    param_names = COMMON

    def prepare(self, raw, check_fabric=True):
        self.check_names(raw)
        conn = ServerConnection.objects.filter(kind="vmm", name=raw.get("connection")).first()
        if conn is None:
            raise ValidationError(f"connection: no VMM connection is named {raw.get('connection')!r}")
        if raw.get("user"):
            OnBehalfOf(raw["user"], raw.get("role_id", ""))  # a bad pair is a bug in the caller: refuse it here
        vm_id = str(raw["vm_id"]).lower()
        params = {k: raw.get(k) for k in self.param_names}
        params["vm_id"] = vm_id
        return Prepared(params, conn, self.title_for(params), f"{conn.name}:vm:{vm_id}", [vm_id])

    def title_for(self, p) -> str:
        raise NotImplementedError

    def expected_steps(self, run):
        return len(self.steps_of(run))

    def steps_of(self, run) -> list[tuple[str, StepSpec]]:
        raise NotImplementedError

    def plan(self, phase, run):
        return Plan([spec for name, spec in self.steps_of(run) if name == phase.name])

    # -- the actions shared by the three ----------------------------------------------
    def do_new_checkpoint(self, c):
        name = c.data["name"]
        found = _new_ones(c, name)
        if found:
            return Outcome.done(f"{c.target} already has checkpoint '{name}' from this run", {"checkpoint_id": found[0].id})
        job = vmm.new_checkpoint(c.vmm, c.params["vm_id"], name, c.data.get("description", ""), c.params["vm"],
                                 on_behalf_of=_who(c))
        return Outcome.started(job, f"Creating checkpoint '{name}' of {c.params['vm']}")

    def do_confirm_checkpoint(self, c):
        found = _new_ones(c, c.data["name"])
        if not found:
            return Outcome.failed(f"checkpoint '{c.data['name']}' of {c.params['vm']} is not there after its job "
                                  "completed; no checkpoint was removed")
        cp = found[0]
        return Outcome.done(f"Checkpoint '{cp.name}' of {c.params['vm']} exists", {"checkpoint_id": cp.id},
                            context={"new_checkpoint": {"id": cp.id, "name": cp.name}})

    def do_remove_checkpoint(self, c):
        present = vmm.list_checkpoints(c.vmm, c.params["vm_id"], on_behalf_of=_who(c))
        if not any(cp.id.lower() == c.data["id"].lower() for cp in present):
            return Outcome.done(f"{c.target} is already gone", {"already": True})
        job = vmm.remove_checkpoint(c.vmm, c.data["id"], c.target, on_behalf_of=_who(c))
        return Outcome.started(job, f"Removing checkpoint {c.target} (merging its disk)")

    def failure(self, steps, outcome) -> str:
        failed = [s for s in steps if s.state == "failed"]
        return failed[0].error if failed else outcome


class VMCheckpoint(VMRunbook):
    kind = "vm-checkpoint"
    title = "Checkpoint a VM"
    description = "Create a checkpoint of one VM, confirm it exists, then remove the ones the plan says it replaces."
    phases = [Phase("checkpoint", "Create the checkpoint"), Phase("confirm", "Confirm it exists"),
              Phase("remove", "Remove the replaced checkpoints")]
    param_names = COMMON + ("name", "description", "before", "replace")
    done_messages = {"new-checkpoint": "Checkpoint of {target} created", "remove-checkpoint": "Removed checkpoint {target}"}

    def title_for(self, p):
        return f"Checkpoint {p['vm']}: {p['name']}"

    def steps_of(self, run):
        p = run.params
        cp = {"name": p["name"], "description": p.get("description") or ""}
        return [("checkpoint", StepSpec("new-checkpoint", p["vm"], p["vm_id"], cp)),
                ("confirm", StepSpec("confirm-checkpoint", p["vm"], p["vm_id"], cp))] + [
            ("remove", StepSpec("remove-checkpoint", f"{p['vm']}: {old['name']}", p["vm_id"], old))
            for old in p.get("replace") or []]

    def summarize(self, run, steps, outcome):
        p = run.params
        made = any(s.action == "confirm-checkpoint" and s.state == "succeeded" for s in steps)
        failed = [s for s in steps if s.state == "failed"]
        if outcome == "succeeded":
            gone = [o["name"] for o in p.get("replace") or []]
            return f"Checkpoint '{p['name']}' of {p['vm']} created" + (
                f"; it replaced {', '.join(repr(n) for n in gone)}." if gone else ".")
        if made:
            kept = [s.target.split(": ", 1)[-1] for s in failed if s.action == "remove-checkpoint"]
            return (f"Checkpoint '{p['name']}' of {p['vm']} was created, but removing {', '.join(repr(k) for k in kept)} "
                    f"failed, so the VM keeps both: {self.failure(steps, outcome)}")
        return f"No checkpoint of {p['vm']} was made: {self.failure(steps, outcome)}. Nothing was removed."


class VMRestore(VMRunbook):
    kind = "vm-restore"
    title = "Restore a VM"
    description = "Restore one VM to a checkpoint, optionally checkpointing it first."
    phases = [Phase("checkpoint", "Checkpoint first"), Phase("confirm", "Confirm it exists"),
              Phase("restore", "Restore the checkpoint")]
    param_names = COMMON + ("checkpoint_id", "checkpoint", "first_name", "before")
    done_messages = {"new-checkpoint": "Checkpoint of {target} created", "restore": "{target} restored"}

    def title_for(self, p):
        return f"Restore {p['vm']} to {p['checkpoint']}"

    def steps_of(self, run):
        p = run.params
        first = []
        if p.get("first_name"):
            cp = {"name": p["first_name"], "description": f"Before restoring to '{p['checkpoint']}'"}
            first = [("checkpoint", StepSpec("new-checkpoint", p["vm"], p["vm_id"], cp)),
                     ("confirm", StepSpec("confirm-checkpoint", p["vm"], p["vm_id"], cp))]
        return first + [("restore", StepSpec("restore", f"{p['vm']}: {p['checkpoint']}", p["vm_id"],
                                             {"id": p["checkpoint_id"]}))]

    def do_restore(self, c):
        job = vmm.restore_checkpoint(c.vmm, c.data["id"], c.target, on_behalf_of=_who(c))
        return Outcome.started(job, f"Restoring {c.target}")

    def summarize(self, run, steps, outcome):
        p = run.params
        if outcome == "succeeded":
            first = f" (checkpoint '{p['first_name']}' made first)" if p.get("first_name") else ""
            return f"{p['vm']} restored to '{p['checkpoint']}'{first}."
        return f"{p['vm']} was not restored: {self.failure(steps, outcome)}."


class VMRemoveCheckpoint(VMRunbook):
    kind = "vm-checkpoint-remove"
    title = "Delete a checkpoint"
    description = "Remove (merge) one checkpoint of one VM."
    phases = [Phase("remove", "Remove the checkpoint")]
    param_names = COMMON + ("checkpoint_id", "checkpoint")
    done_messages = {"remove-checkpoint": "Removed checkpoint {target}"}

    def title_for(self, p):
        return f"Delete checkpoint {p['checkpoint']} of {p['vm']}"

    def steps_of(self, run):
        p = run.params
        return [("remove", StepSpec("remove-checkpoint", f"{p['vm']}: {p['checkpoint']}", p["vm_id"],
                                    {"id": p["checkpoint_id"], "name": p["checkpoint"]}))]

    def summarize(self, run, steps, outcome):
        p = run.params
        if outcome == "succeeded":
            return f"Checkpoint '{p['checkpoint']}' of {p['vm']} deleted."
        return f"Checkpoint '{p['checkpoint']}' of {p['vm']} was not deleted: {self.failure(steps, outcome)}."


class VMPower(VMRunbook):
    kind = "vm-power"
    title = "Start or stop a VM"
    description = "Start, shut down, turn off or save one VM."
    phases = [Phase("power", "Power")]
    param_names = COMMON + ("action",)
    done_messages = {"power": "{target}: done"}

    def prepare(self, raw, check_fabric=True):
        if raw.get("action") not in PowerAction.values:
            raise ValidationError(f"action must be one of {', '.join(PowerAction.values)}, not {raw.get('action')!r}")
        return super().prepare(raw, check_fabric)

    def title_for(self, p):
        return f"{PowerAction(p['action']).label} {p['vm']}"

    def steps_of(self, run):
        p = run.params
        return [("power", StepSpec("power", p["vm"], p["vm_id"], {"action": p["action"]}))]

    def do_power(self, c):
        action = c.data["action"]
        if action == PowerAction.START:
            job = vmm.start_vm(c.vmm, c.params["vm_id"], c.target, on_behalf_of=_who(c))
        else:
            job = vmm.stop_vm(c.vmm, c.params["vm_id"], STOP_METHOD[action], c.target, on_behalf_of=_who(c))
        return Outcome.started(job, f"{PowerAction(action).label}: {c.target}")

    def summarize(self, run, steps, outcome):
        p = run.params
        label = PowerAction(p["action"]).label.lower()
        if outcome == "succeeded":
            return f"{p['vm']}: {label} done."
        return f"{p['vm']}: {label} failed: {self.failure(steps, outcome)}."
