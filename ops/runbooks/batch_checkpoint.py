"""Batch checkpoint (seed 000, the Opalis workflow): checkpoint every VM of a
batch from a known state.

find the VMs of the batch -> SCOM maintenance mode on for the running ones ->
stop them -> junction (all stopped) -> checkpoint every VM, in parallel within
the VMM server's bound -> junction -> start the VMs that were stopped ->
maintenance mode off. The last two phases are ``always``: after a failure or a
cancel they still run (compensation), then the run fails naming what failed.
"""
import datetime as dt
import string

from django.core.exceptions import ValidationError

from ..fabric import bulk, errors, scom, vmm
from ..fabric.session import session_for
from ..textcheck import hidden_characters
from .base import (CUSTOM_PROPERTY, Outcome, ParamErrors, Phase, Plan, Prepared, Runbook, StepSpec, as_choice, as_int,
                   OUTAGE_PARAM, cloud_named, connection_named, fabric_check, outage_minutes,
                   own, reachable)

MARKER = "[slipway-run:{run}]"  # {run} is the run's UUID (Run.uid): unique across installations and databases
# a checkpoint counts as this run's only if VMM dated it after the run was created, give or take this
# much difference between the VMM server's clock and ours
CLOCK_SKEW = dt.timedelta(minutes=1)
DEFAULT_NAME = "Batch {batch} {date}"
NAME_FIELDS = ("batch", "vm", "date", "run")


def render_name(template: str, **values) -> str:
    """The checkpoint name: ``{batch}``, ``{vm}``, ``{date}``, ``{run}`` replaced, ``{{``/``}}`` literal braces.

    Only those plain fields: no attributes (``{vm.__class__}``), indexes, conversions or
    format specs (``{batch:>1000000000}`` would build a huge string), which str.format allows."""
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        if field not in NAME_FIELDS or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"{shown} is not a field")
        out.append(str(values[field]))
    return "".join(out)


class BatchCheckpoint(Runbook):
    kind = "batch-checkpoint"
    title = "Batch checkpoint"
    description = "Checkpoint every VM of a batch from a known state: stop the running ones, checkpoint all, start them again."
    phases = [
        Phase("discover", "Find the VMs of the batch"),
        Phase("maintenance-on", "SCOM maintenance mode on"),
        Phase("stop", "Stop the running VMs"),
        Phase("checkpoint", "Checkpoint every VM"),
        Phase("start", "Start the stopped VMs", always=True),
        Phase("maintenance-off", "SCOM maintenance mode off", always=True),
    ]
    job_actions = {"stop-vm", "new-checkpoint", "start-vm"}
    done_messages = {"stop-vm": "{target} stopped", "new-checkpoint": "{target} checkpointed",
                     "start-vm": "{target} running again"}
    param_names = ("batch", "property", "cloud", "shutdown", "maintenance_reason", "maintenance_minutes",
                   "checkpoint_name", "connection", "scom", "on_error", "outage_minutes")
    params = [
        {"name": "batch", "label": "Batch number", "required": True, "help": "VMs whose custom property holds this value."},
        {"name": "property", "label": "Custom property", "default": "Custom1",
         "help": "Which custom property holds the batch number: Custom1..Custom10 or a named custom property."},
        {"name": "cloud", "label": "Cloud", "help": "Only VMs of this cloud (empty: every cloud)."},
        {"name": "shutdown", "label": "How to stop running VMs", "default": "shutdown", "choices": [("shutdown", "Shut down the guest OS"),
                                                                              ("turnoff", "Turn off")]},
        {"name": "maintenance_reason", "label": "SCOM maintenance reason", "default": "PlannedOther",
         "choices": list(scom.REASONS)},
        {"name": "maintenance_minutes", "label": "SCOM maintenance (minutes)", "type": "int", "min": 1, "max": 1440,
         "default": 60, "help": "How long maintenance mode lasts if the run never ends it."},
        {"name": "checkpoint_name", "label": "Checkpoint name", "default": DEFAULT_NAME,
         "help": "Template with {batch}, {vm}, {date}, {run}."},
        {"name": "on_error", "label": "When a step fails", "default": "compensate", "choices": [
            ("compensate", "Finish, start the VMs again, end maintenance, then fail"),
            ("wait", "Wait for the operator (retry, skip or abort)")]},
        {"name": "connection", "label": "VMM connection", "help": "Empty: the only enabled VMM connection."},
        {"name": "scom", "label": "SCOM connection", "help": "Puts the running VMs into SCOM maintenance mode "
         "while they are down; empty: the only enabled SCOM connection; none: no maintenance mode."},
        OUTAGE_PARAM,
    ]

    def prepare(self, raw, check_fabric=True):
        self.check_names(raw)
        bad = ParamErrors()
        batch = str(raw.get("batch") or "").strip()
        if not batch:
            bad.add("batch is required (the batch number, e.g. batch=3)")
        prop = str(raw.get("property") or "Custom1").strip()
        if not CUSTOM_PROPERTY.match(prop):
            bad.add(f"property must be Custom1..Custom10 or a custom property name, not {prop!r}")
        shutdown = bad.take(as_choice, raw.get("shutdown"), "shutdown", ("shutdown", "turnoff"), "shutdown")
        reason = bad.take(as_choice, raw.get("maintenance_reason"), "maintenance_reason", scom.REASONS, "PlannedOther")
        minutes = bad.take(as_int, raw.get("maintenance_minutes"), "maintenance_minutes", minimum=1, maximum=1440,
                           default=60)
        template = str(raw.get("checkpoint_name") or DEFAULT_NAME)
        try:
            if len(template) > 200:
                raise ValueError(f"it is {len(template)} characters long, at most 200")
            if hidden_characters(template):
                raise ValueError(f"it holds characters that hide or reorder text: {', '.join(hidden_characters(template)[:3])}")
            sample = render_name(template, batch=batch, vm="vm", date="2000-01-01", run=1)
            if not sample.strip() or len(sample) > 200:
                bad.add("checkpoint_name must give a name of 1 to 200 characters")
        except (KeyError, IndexError, ValueError) as exc:
            bad.add(f"checkpoint_name {template[:60]!r} is not a valid template ({exc}); "
                    f"use the fields {{{'}, {'.join(NAME_FIELDS)}}}")
        on_error = bad.take(as_choice, raw.get("on_error"), "on_error", ("compensate", "wait"), "compensate")
        conn = bad.take(connection_named, raw.get("connection"), "vmm")
        scom_conn = bad.take(connection_named, raw.get("scom"), "scom", required=False)
        outage = bad.take(outage_minutes, raw)
        bad.raise_any()  # the fabric is asked only about parameters that are right
        cloud = str(raw.get("cloud") or "").strip()
        claims = []
        if check_fabric:
            if scom_conn is not None:   # every server the run will use answers, before anything runs
                reachable(scom_conn, "scom")
            s = session_for(conn)
            if cloud:
                cloud = cloud_named(s, conn, cloud)
            vms = fabric_check(lambda: vmm.find_vms(s, prop, batch, cloud or None), "the batch")
            if not vms:
                where = f" in cloud {cloud}" if cloud else ""
                raise ValidationError(f"batch: no VM has {prop} = {batch}{where} on VMM server {conn.name}; no such batch")
            claims = sorted(vm.id.lower() for vm in vms)
        params = {"batch": batch, "property": prop, "cloud": cloud, "shutdown": shutdown, "maintenance_reason": reason,
                  "maintenance_minutes": minutes, "checkpoint_name": template, "connection": conn.name,
                  "scom": scom_conn.name if scom_conn else "", "on_error": on_error, "outage_minutes": outage}
        title = f"Batch checkpoint: batch {batch} ({prop}{', cloud ' + cloud if cloud else ''})"
        key = f"{conn.name}:{prop}={batch}" + (f":cloud={cloud.lower()}" if cloud else "")
        return Prepared(params, conn, title, key, claims)

    # -- planning ------------------------------------------------------------------
    def plan(self, phase, run):
        ctx = own(run)
        vms = ctx.get("vms") or []
        running = [v for v in vms if v["id"] in set(ctx.get("running") or [])]
        scom_on = bool(run.params.get("scom"))
        if phase.name == "discover":
            return Plan([StepSpec("discover", f"batch {run.params['batch']}")])
        if phase.name in ("maintenance-on", "maintenance-off"):
            if not running:
                return Plan([])
            if not scom_on:
                return Plan([], [("warning", f"No SCOM connection is configured: {phase.title.lower()} skipped "
                                             f"for {len(running)} VMs")])
            return Plan([StepSpec(phase.name, v["name"], v["id"]) for v in running])
        if phase.name == "stop":
            return Plan([StepSpec("stop-vm", v["name"], v["id"], {"cmdlet": "Stop-SCVirtualMachine"}) for v in running])
        if phase.name == "checkpoint":
            return Plan([StepSpec("new-checkpoint", v["name"], v["id"], {"cmdlet": "New-SCVMCheckpoint"}) for v in vms])
        if phase.name == "start":
            return Plan([StepSpec("start-vm", v["name"], v["id"], {"cmdlet": "Start-SCVirtualMachine"}) for v in running])
        raise ValueError(phase.name)

    def expected_steps(self, run):
        mine = own(run)
        if "vms" not in mine:
            return None
        n, r = len(mine["vms"]), len(mine.get("running") or [])
        mm = 2 * r if run.params.get("scom") else 0
        return 1 + mm + r + n + r

    # -- actions ---------------------------------------------------------------------
    def do_discover(self, c):
        p = c.params
        everything = vmm.list_vms(c.vmm)
        vms = vmm.in_batch(everything, p["property"], p["batch"], p.get("cloud") or None)
        if not vms:
            return Outcome.failed(f"VMM server {c.connection.name}: no VM has {p['property']} = {p['batch']} any more")
        running = [v for v in vms if v.status == "Running"]
        others = sorted({v.status for v in vms if v.status != "Running"})
        msg = (f"Found {len(vms)} VMs in batch {p['batch']}: {len(running)} running"
               + (f", {len(vms) - len(running)} not running ({', '.join(others)}) stay as they are" if others else ""))
        vm_rows = sorted(({"id": v.id, "name": v.name, "status": v.status} for v in vms), key=lambda v: v["name"])
        return Outcome.done(msg, {"vms": len(vms), "running": len(running)},
                            context={"vms": vm_rows, "running": [v.id for v in running], "fabric_vms": len(everything)})

    def _instance(self, c):
        return c.target

    def prefetch(self, ctxs):
        """One listing of the target VMs (and their checkpoints) for all steps starting now,
        unless this increment's poll has just read them."""
        # a checkpoint step needs the VM's checkpoints, a stop or start step the VM's state
        ids = [c.target_id for c in ctxs if c.action in ("stop-vm", "start-vm") and c.target_id]
        cp_ids = [c.target_id for c in ctxs if c.action == "new-checkpoint" and c.target_id]
        if not ids and not cp_ids:
            return {}
        s, have, size = ctxs[0].vmm, ctxs[0].cache, ctxs[0].own.get("fabric_vms")
        cache = {}
        vms = have.get("vms", {})
        if ids and not all(i.lower() in vms for i in ids):
            cache["vms"] = bulk.get_vms(s, ids, keep_all=True, fabric_vms=size)
        cps = have.get("checkpoints", {})
        if cp_ids and not all(i.lower() in cps for i in cp_ids):
            cache["checkpoints"] = bulk.checkpoints_of(s, cp_ids, keep_all=True, all_vm_ids=self._batch_ids(ctxs[0]),
                                                       fabric_vms=size)
        return cache

    @staticmethod
    def _batch_ids(c):
        return [v["id"] for v in c.own.get("vms") or []]

    def verify_ended(self, ctxs):
        """Ended jobs whose work shows in the fabric: the VM stopped / running, the checkpoint there."""
        if not ctxs:
            return {}
        any_ctx = next(iter(ctxs.values()))
        s, size = any_ctx.vmm, any_ctx.own.get("fabric_vms")
        vm_ids = [c.target_id for c in ctxs.values() if c.action in ("stop-vm", "start-vm")]
        cp_ids = [c.target_id for c in ctxs.values() if c.action == "new-checkpoint"]
        # the engine judges ended jobs after starting the next steps, so this increment's
        # reading for those steps (taken after the poll saw these jobs end) shows their result
        vms, cps = any_ctx.cache.get("vms", {}), any_ctx.cache.get("checkpoints", {})
        if vm_ids and not all(i.lower() in vms for i in vm_ids):
            vms = bulk.get_vms(s, vm_ids, keep_all=True, fabric_vms=size)
        if cp_ids and not all(i.lower() in cps for i in cp_ids):
            cps = bulk.checkpoints_of(s, cp_ids, keep_all=True, all_vm_ids=self._batch_ids(any_ctx), fabric_vms=size)
        # what was read serves the checks of the steps this increment starts next
        any_ctx.cache["vms"], any_ctx.cache["checkpoints"] = vms, cps
        out = {}
        for job_id, c in ctxs.items():
            key = c.target_id.lower()
            vm = vms.get(key)
            ok = ((c.action == "stop-vm" and vm is not None and vm.status == "PowerOff")
                  or (c.action == "start-vm" and vm is not None and vm.status == "Running")
                  or (c.action == "new-checkpoint" and self._ours(c, cps.get(key, [])) is not None))
            if ok:
                out[job_id] = Outcome.done(self.done_messages[c.action].format(target=c.target), {"job_id": job_id})
        return out

    def _vm(self, c):
        vm = c.cache.get("vms", {}).get(c.target_id.lower())
        return vm if vm is not None else vmm.get_vm(c.vmm, c.target_id)

    def _maintenance_end(self, c):
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=int(c.params["maintenance_minutes"]))

    def _maintenance_comment(self, c):
        return f"Slipway run {c.run_id}: batch checkpoint of batch {c.params['batch']} {MARKER.format(run=c.run_uid)}"

    def do_maintenance_on(self, c):
        s = c.scom
        name = self._instance(c)
        try:
            if scom.get_maintenance(s, name) is not None:
                return Outcome.done(f"{name} is already in SCOM maintenance mode")
            end = self._maintenance_end(c)
            scom.start_maintenance(s, name, end, c.params["maintenance_reason"], self._maintenance_comment(c))
        except errors.NotFound as exc:
            return Outcome.skipped(f"{exc}; {name} is not monitored, maintenance mode not set")
        return Outcome.done(f"{name} in SCOM maintenance mode until {end:%H:%M} UTC", {"maintenance": True})

    def batch_maintenance_on(self, ctxs):
        """All of them in two round trips; on an error the engine falls back to one at a time."""
        s, names = ctxs[0].scom, [self._instance(c) for c in ctxs]
        states = scom.maintenance_states(s, names)
        todo = [n for n in names if states.get(n) is False]
        end = self._maintenance_end(ctxs[0])
        scom.start_maintenance_many(s, todo, end, ctxs[0].params["maintenance_reason"], self._maintenance_comment(ctxs[0]))
        out = []
        for n in names:
            if states.get(n) is None:
                out.append(Outcome.skipped(f"SCOM server {s.settings.name}: no monitored object is named {n}; "
                                           f"{n} is not monitored, maintenance mode not set"))
            elif states[n]:
                out.append(Outcome.done(f"{n} is already in SCOM maintenance mode"))
            else:
                out.append(Outcome.done(f"{n} in SCOM maintenance mode until {end:%H:%M} UTC", {"maintenance": True}))
        return out

    def do_maintenance_off(self, c):
        name = self._instance(c)
        try:
            ended = scom.stop_maintenance(c.scom, name)
        except errors.NotFound as exc:
            return Outcome.skipped(f"{exc}; nothing to end")
        return Outcome.done(f"SCOM maintenance mode of {name} ended" if ended else f"{name} was not in maintenance mode")

    def batch_maintenance_off(self, ctxs):
        s, names = ctxs[0].scom, [self._instance(c) for c in ctxs]
        states = scom.maintenance_states(s, names)
        scom.stop_maintenance_many(s, [n for n in names if states.get(n)])
        out = []
        for n in names:
            if states.get(n) is None:
                out.append(Outcome.skipped(f"SCOM server {s.settings.name}: no monitored object is named {n}; nothing to end"))
            elif states[n]:
                out.append(Outcome.done(f"SCOM maintenance mode of {n} ended"))
            else:
                out.append(Outcome.done(f"{n} was not in maintenance mode"))
        return out

    def do_stop_vm(self, c):
        vm = self._vm(c)
        if vm.status == "PowerOff":
            return Outcome.done(f"{c.target} is already stopped", {"already": True})
        if vm.status != "Running":
            return Outcome.later(f"{c.target} is {vm.status}; waiting", 1.0)
        method = "turnoff" if c.params["shutdown"] == "turnoff" else "shutdown"
        how = "Turning off" if method == "turnoff" else "Shutting down"
        return Outcome.submit(bulk.stop_vm_request(c.target_id, method, c.target), f"{how} {c.target}")

    def checkpoint_name(self, c):
        date = (c.created_at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d")
        return render_name(c.params["checkpoint_name"], batch=c.params["batch"], vm=c.target, date=date, run=c.run_id)

    def _ours(self, c, checkpoints):
        """The checkpoint this step made (found again after a crash), or None. All of it must match:
        this run's marker (its UUID, so another database's run 1 is not this run 1), the VM, the name
        the step asks for, and a creation time after the run was created."""
        marker, name = MARKER.format(run=c.run_uid), self.checkpoint_name(c)
        since = c.created_at - CLOCK_SKEW if c.created_at else None
        for cp in checkpoints:
            if (c.run_uid and marker in (cp.description or "") and cp.name == name
                    and (not cp.vm_id or cp.vm_id.lower() == c.target_id.lower())
                    and (since is None or (cp.added_at is not None and cp.added_at >= since))):
                return cp
        return None

    def do_new_checkpoint(self, c):
        cached = c.cache.get("checkpoints", {})
        existing = cached[c.target_id.lower()] if c.target_id.lower() in cached else vmm.list_checkpoints(c.vmm, c.target_id)
        cp = self._ours(c, existing)
        if cp is not None:
            return Outcome.done(f"{c.target} already has checkpoint '{cp.name}' from this run",
                                {"checkpoint_id": cp.id, "already": True})
        name = self.checkpoint_name(c)
        desc = f"Batch {c.params['batch']} checkpoint by Slipway {MARKER.format(run=c.run_uid)}"
        return Outcome.submit(bulk.new_checkpoint_request(c.target_id, name, desc, c.target),
                              f"Creating checkpoint '{name}' of {c.target}")

    def do_start_vm(self, c):
        vm = self._vm(c)
        if vm.status == "Running":
            return Outcome.done(f"{c.target} is running", {"already": True})
        if vm.status not in ("PowerOff", "Saved", "Paused"):
            return Outcome.later(f"{c.target} is {vm.status}; waiting", 1.0)
        return Outcome.submit(bulk.start_vm_request(c.target_id, c.target), f"Starting {c.target}")

    # -- the outcome -------------------------------------------------------------------
    def summarize(self, run, steps, outcome):
        by = {}
        for s in steps:
            by.setdefault(s.action, []).append(s)

        def ok(action):
            return [s for s in by.get(action, []) if s.state == "succeeded"]

        def not_ok(action):
            return [s for s in by.get(action, []) if s.state != "succeeded"]

        n = len(own(run).get("vms") or [])
        stopped = [s for s in ok("stop-vm") if not s.result.get("already")]
        parts = [f"checkpointed {len(ok('new-checkpoint'))} of {n} VMs"]
        if by.get("stop-vm"):
            parts.append(f"stopped {len(stopped)} running VMs")
        if by.get("start-vm"):
            parts.append(f"started {len(ok('start-vm'))} of {len(by['start-vm'])} VMs again")
        if by.get("maintenance-on"):
            parts.append(f"maintenance mode set for {len(ok('maintenance-on'))} and ended for "
                         f"{len(ok('maintenance-off'))}")
        done = "; ".join(parts)
        if outcome == "succeeded":
            return f"Batch {run.params['batch']}: {done}."
        missing = []
        names = [s.target for s in not_ok("new-checkpoint")]
        if by.get("new-checkpoint") is None and n:
            names = [v["name"] for v in own(run).get("vms", [])]
        if names:
            missing.append(f"no new checkpoint: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
        # what the clean-up could not undo, each with its cause and what to do by hand
        for action, left, by_hand in (("start-vm", "left stopped", "start it by hand"),
                                      ("maintenance-off", "left in SCOM maintenance mode", "end maintenance by hand")):
            for s in not_ok(action)[:20]:
                cause = (s.error or f"the step was {s.state}").rstrip(".")
                missing.append(f"{s.target} {left}: {cause}; {by_hand}")
        head = run.context.get("engine", {}).get("failure") or ""
        verb = "cancelled" if outcome == "cancelled" else "failed"
        text = f"Batch {run.params['batch']} {verb}"
        if head:
            text += f": {head.rstrip('.')}"
        text += f". Done: {done}."
        if missing:
            text += " Not done: " + "; ".join(missing) + "."
        return text
