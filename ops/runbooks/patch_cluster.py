"""patch-cluster: patch a Hyper-V cluster one node at a time, without cutting anyone off.

Per node, in order (a block of phases, ops/engine/junctions.py): record where every VM is;
drain (SCOM maintenance on, ``Disable-SCVMHost -MoveWithinCluster``) and check nothing is left
running but what the preflight said would be saved; enrol the node in the deployment's
collection; follow its install; reboot when a restart is pending and wait for the host to
answer again; check compliance and the node's consistency (volumes, network adapters against
its own record and its peers); then, always (the block's compensation): ``Enable-SCVMHost``,
bring every VM home (start what was saved, move each back) while SCOM maintenance goes off and
the node leaves the collection, verify where each VM is. A node that comes back different keeps its VMs away.
The run's last phase proves from ConfigMgr that every node left the deployment's collection (the
refresh that lets a node go runs while the next node is drained, not in its way).

The run holds its cluster and every node (no other run drains or patches them) and claims
every VM on them. The preflight (ops/patching/preflight.py) refuses a start with a blocker and
needs the operator's confirmation, by name, of each VM the drain will save. Before the first
node, the hold list (standalone hosts asked for, nodes skipped for their VMs that are not highly
available) goes into ConfigMgr's holding collection, each membership read back (seed 004).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from ..fabric import errors
from ..inventory.refresh import mark_maintenance
from ..models import Run
from ..patching import preflight
from .base import (OUTAGE_PARAM, ParamErrors, Phase, Plan, Prepared, Runbook, StepSpec, as_bool, as_choice, as_int,
                   connection_named, only_enabled_deployment, outage_minutes, own)
from .patch_steps import PatchSteps

STAGES = [  # (stage, title, always)
    ("record", "Record where every VM is", False),
    ("drain", "Drain", False),
    ("drained", "Check the node is empty", False),
    ("enrol", "Enrol in the deployment's collection", False),
    ("install", "Install updates", False),
    ("reboot", "Reboot", False),
    ("back", "Wait for the host to come back", False),
    ("check", "Check compliance and consistency", False),
    ("resume", "Resume the node", True),
    # SCOM maintenance off and leaving the collection need no VM home: they go beside the moves
    ("return", "Bring every VM home; maintenance off, leave the collection", True),
    ("verify", "Verify every VM is home", True),
]
HARDWARE = {"enrol", "install", "reboot"}  # deployment=none: drain, wait for the operator, resume


def poll_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_PATCH_POLL_SECONDS", 5.0))


class PatchCluster(PatchSteps, Runbook):
    kind = "patch-cluster"
    title = "Patch a cluster"
    description = ("Patch a Hyper-V cluster node by node through ConfigMgr: drain, install, reboot, check, "
                   "resume, and bring every VM back to its own node, verified.")
    job_actions = {"drain", "park", "reboot", "resume", "home"}
    default_on_error = "wait"
    connection_params = {"scom": "scom", "configmgr": "configmgr"}
    done_messages = {"drain": "Drained {target}", "reboot": "Restart of {target} issued",
                     "resume": "Resumed {target}", "home": "{target} is home",
                     "park": "Moved {target} off its node"}
    param_names = ("cluster", "order", "max_failed", "retries", "reboot_timeout", "non_ha", "move_stopped_ha",
                   "failback", "deployment", "hosts", "hold_collection", "configmgr", "scom", "connection", "confirm",
                   "outage_minutes")
    params = [
        {"name": "cluster", "label": "Cluster", "required": True, "help": "The host cluster to patch, e.g. CLU-B."},
        {"name": "order", "label": "Node order", "help": "Comma-separated node names; empty: fewest running VMs first."},
        {"name": "deployment", "label": "Update deployment", "help": "The ConfigMgr software update deployment; empty: "
         "the only enabled one; none: hardware maintenance (drain, wait for the operator, resume)."},
        {"name": "max_failed", "label": "Max failed nodes", "type": "int", "min": 1, "max": 64, "default": 1},
        {"name": "retries", "label": "Retries per step", "type": "int", "min": 0, "max": 5, "default": 1},
        {"name": "reboot_timeout", "label": "Reboot timeout (minutes)", "type": "int", "min": 1, "max": 600, "default": 30},
        {"name": "non_ha", "label": "Running VMs that are not highly available", "default": "save", "choices": [
            ("save", "Save them (as VMM does): their users are cut off"), ("skip-node", "Do not patch that node")]},
        {"name": "move_stopped_ha", "label": "Move stopped HA VMs off first", "type": "bool"},
        {"name": "hosts", "label": "Standalone hosts to hold", "help": "Comma-separated: put on the hold list (ConfigMgr's "
         "holding collection) to be patched separately; they cannot be drained within a cluster."},
        {"name": "hold_collection", "label": "Hold collection", "help": "The ConfigMgr collection for the hold list; "
         "empty: the one whose name says hold."},
        {"name": "failback", "label": "Failback", "default": "verified", "choices": [
            ("verified", "Every VM back on its node, verified"), ("none", "Leave the VMs where the drain put them")]},
        {"name": "confirm", "label": "Confirm the VMs that will be saved", "help": "Their names, comma-separated."},
        {"name": "configmgr", "label": "ConfigMgr connection", "help": "Empty: the only enabled one."},
        {"name": "scom", "label": "SCOM connection", "help": "Puts each node into SCOM maintenance mode while it is patched; "
         "empty: the only enabled one; none: no maintenance mode."},
        {"name": "connection", "label": "VMM connection", "help": "Empty: the only enabled VMM connection."},
        OUTAGE_PARAM,
    ]

    # -- parameters ----------------------------------------------------------------
    def preview(self, raw):
        """The preflight for these parameters, read-only (the CLI's ``runbook preflight``, the page)."""
        params, conn, cm_conn = self.clean(raw)
        return self.preflight(conn, cm_conn, params)

    def prepare(self, raw, check_fabric=True):
        params, conn, cm_conn = self.clean(raw)
        cluster = params["cluster"]
        if not check_fabric:
            return Prepared(params, conn, f"Patch {cluster}", f"{conn.name}:cluster={cluster.lower()}", [],
                            holds=[f"cluster:{cluster}"])
        return self.checked(self.preflight(conn, cm_conn, params), params, conn)

    def clean(self, raw):
        """The parameters, cleaned (every bad one named at once), with the connections they name."""
        self.check_names(raw)
        bad = ParamErrors()
        cluster = str(raw.get("cluster") or "").strip()
        if not cluster:
            bad.add("cluster is required (the host cluster to patch, e.g. cluster=CLU-B)")
        order = [x.strip() for x in str(raw.get("order") or "").split(",") if x.strip()]
        max_failed = bad.take(as_int, raw.get("max_failed"), "max_failed", minimum=1, maximum=64, default=1)
        retries = bad.take(as_int, raw.get("retries"), "retries", minimum=0, maximum=5, default=1)
        reboot = bad.take(as_int, raw.get("reboot_timeout"), "reboot_timeout", minimum=1, maximum=600, default=30)
        non_ha = bad.take(as_choice, raw.get("non_ha"), "non_ha", ("save", "skip-node"), "save")
        move_stopped = bad.take(as_bool, raw.get("move_stopped_ha"), "move_stopped_ha")
        failback = bad.take(as_choice, raw.get("failback"), "failback", ("verified", "none"), "verified")
        outage = bad.take(outage_minutes, raw)
        confirm = [x.strip() for x in str(raw.get("confirm") or "").split(",") if x.strip()]
        standalone = [x.strip() for x in str(raw.get("hosts") or "").split(",") if x.strip()]
        hold_collection = str(raw.get("hold_collection") or "").strip()
        conn = bad.take(connection_named, raw.get("connection"), "vmm")
        scom_conn = bad.take(connection_named, raw.get("scom"), "scom", required=False)
        deployment = str(raw.get("deployment") or "").strip()
        hardware = deployment.lower() == "none"
        cm_conn = None if hardware else bad.take(connection_named, raw.get("configmgr"), "configmgr")
        bad.raise_any()
        if cm_conn is not None and not deployment:
            deployment = only_enabled_deployment(cm_conn, "for hardware maintenance")
        if hardware:
            deployment = "none"
        params = {"cluster": cluster, "order": order, "max_failed": max_failed, "retries": retries,
                  "reboot_timeout": reboot, "non_ha": non_ha, "move_stopped_ha": move_stopped, "failback": failback,
                  "deployment": deployment, "configmgr": cm_conn.name if cm_conn else "",
                  "scom": scom_conn.name if scom_conn else "", "connection": conn.name, "confirm": confirm,
                  "hosts": standalone, "hold_collection": hold_collection, "outage_minutes": outage}
        return params, conn, cm_conn

    def checked(self, pf, params, conn):
        """The preflight's verdict: a blocker refuses the start; each VM the drain saves must be confirmed."""
        non_ha, confirm = params["non_ha"], params["confirm"]
        params["cluster"] = pf.cluster
        if pf.blockers:
            raise ValidationError([f"cluster: {b}" if not b.startswith(("order:", "capacity:")) else b
                                   for b in pf.blockers], code="blocked")
        cluster_nodes = {n.short for n in pf.nodes}
        skipped = [h["short"] for h in pf.hold if h["short"] in cluster_nodes]  # non_ha=skip-node
        missing = [w for w in pf.warnings if w["vm"].lower() not in {c.lower() for c in confirm}]
        if missing:
            raise ValidationError("confirm: " + "; ".join(w["text"] for w in missing) + ". Confirm by name: confirm="
                                  + ",".join(w["vm"] for w in pf.warnings), code="confirm")
        params["order"] = list(pf.order)
        params["skipped_nodes"] = skipped
        params["hold"] = pf.hold
        params["hold_collection"] = pf.hold_collection
        params["preflight"] = pf.as_dict()
        claims = [v["id"] for n in pf.nodes for v in n.vms]
        holds = [f"cluster:{pf.cluster}"] + [f"host:{n.name}" for n in pf.nodes]
        return Prepared(params, conn, f"Patch {pf.cluster}", f"{conn.name}:cluster={pf.cluster.lower()}", claims,
                        holds=holds)

    def preflight(self, conn, cm_conn, params):
        active = [(r.pk, r.title, r.context.get("holds"), r.context.get("claims"))
                  for r in Run.objects.filter(state__in=Run.ACTIVE_STATES)]
        try:
            return preflight.run(conn, params["cluster"], cm_conn, params["deployment"], params["order"], active,
                                 non_ha=params["non_ha"], standalone=params.get("hosts") or [],
                                 hold_collection=params.get("hold_collection") or "")
        except errors.NotFound as exc:
            what = "deployment" if "deployment" in exc.message else "cluster"
            raise ValidationError(f"{what}: {exc}", code="invalid") from exc
        except errors.FabricError as exc:
            raise ValidationError(f"cannot check the cluster: {exc}", code="fabric") from exc

    # -- the plan ------------------------------------------------------------------
    def make_phases(self, run):
        hardware = run.params.get("deployment") == "none"
        out = []
        if run.params.get("hold") and run.params.get("hold_collection"):
            out.append(Phase("holdlist", f"Put the hold list in {run.params['hold_collection']}"))
        for node in run.params.get("order") or []:
            s = preflight.short(node)
            for stage, title, always in STAGES:
                if hardware and stage in HARDWARE:
                    continue
                if hardware and stage == "back":
                    stage, title = "hold", "Wait for the operator (hardware maintenance)"
                out.append(Phase(f"{stage}@{s}", f"{s}: {title}", always=always, block=f"node {s}"))
        if not hardware:
            out.append(Phase("left", "Check every node left the deployment's collection", always=True))
        return out

    def after_phase(self, run, phase, steps):
        """A node's drain or resume that succeeded is what VMM now says of the host: the inventory shows
        it at once (the dashboard's "Hosts in maintenance", the fabric page), not at the next sync."""
        stage, _, s = phase.name.partition("@")
        if stage not in ("drain", "resume") or not steps or any(x.state != "succeeded" for x in steps):
            return
        mark_maintenance(run.connection, self.node_of(run, s), stage == "drain")

    def after_block_failure(self, run, block, failed_blocks):
        return "continue" if len(failed_blocks) < int(run.params.get("max_failed") or 1) else "stop"

    def expected_steps(self, run):
        return None

    def node_of(self, run, short_name):
        return next(n for n in run.params["order"] if preflight.short(n) == short_name)

    def plan(self, phase, run):
        if phase.name == "holdlist":
            col = run.params["hold_collection"]
            return Plan([StepSpec("hold-host", h["short"], h["host"],
                                  {"node": h["host"], "collection": col, "why": h["why"],
                                   "retries": int(run.params.get("retries") or 0), "retry_delay": poll_seconds()})
                         for h in run.params["hold"]])
        if phase.name == "left":
            nodes = {k.split(":", 1)[1]: v for k, v in own(run).items() if k.startswith("leaving:") and v}
            if not nodes:
                return Plan([])
            col = next(iter(nodes.values()))["collection"]
            return Plan([StepSpec("left", col, col, {"collection": col, "nodes": nodes, "retries": int(
                run.params.get("retries") or 0), "retry_delay": poll_seconds()})])
        stage, _, s = phase.name.partition("@")
        node = self.node_of(run, s)
        retries = {"retries": int(run.params.get("retries") or 0), "retry_delay": poll_seconds()}
        mine = own(run)
        record = mine.get(f"record:{s}") or {}
        if stage == "return":
            leave = StepSpec("leave", node, node, {"node": node, **retries})
            if run.params.get("failback") == "none":
                return Plan([leave], [("info", f"{s}: failback none: the VMs stay where the drain put them")])
            if mine.get(f"different:{s}"):
                return Plan([leave], [("warning", f"{s} came back different ({mine[f'different:{s}']}): its VMs "
                                                  "stay away; check the node, then move them home")])
            # the VMs that ran first: the drain moved them, so they need a job slot for the move back
            # at once; a stopped VM stayed (or was parked) and is mostly home already (ops/engine/steps.py, reserve)
            vms = sorted((v for v in record.get("vms", []) if v["ha"] or v["status"] == "Running"),
                         key=lambda v: v["status"] != "Running")
            return Plan([*(StepSpec("home", v["name"], v["id"], {**retries, "node": node, "vm": v,
                                                                 "cmdlet": "Move-SCVirtualMachine"}) for v in vms), leave])
        if stage == "verify":
            if run.params.get("failback") == "none" or mine.get(f"different:{s}") or not record:
                return Plan([])
        if stage == "drained" and not record:
            return Plan([])
        if stage == "drained" and run.params.get("move_stopped_ha"):
            parked = [StepSpec("park", v["name"], v["id"], {**retries, "node": node, "vm": v,
                                                            "cmdlet": "Move-SCVirtualMachine"})
                      for v in record.get("vms", []) if v["ha"] and v["status"] != "Running"]
            return Plan([StepSpec("drained", node, node, {"node": node, **retries}), *parked])
        cmdlets = {"drain": "Disable-SCVMHost", "reboot": "Restart-SCVMHost", "resume": "Enable-SCVMHost"}
        data = {"node": node, **({"cmdlet": cmdlets[stage]} if stage in cmdlets else {})}
        if stage not in ("back", "hold", "resume"):
            data.update(retries)
        return Plan([StepSpec(stage.replace("return", "home"), node, node, data)])

    # -- the outcome -----------------------------------------------------------------
    def summarize(self, run, steps, outcome):
        order = [preflight.short(n) for n in run.params.get("order") or []]
        eng = run.context.get("engine") or {}
        mine = own(run)
        failed = [b.split(" ", 1)[1] for b in eng.get("failed_blocks") or []]
        skipped = [b.split(" ", 1)[1] for b in eng.get("skipped_blocks") or []]
        patched = [s for s in order if mine.get(f"patched:{s}") and s not in failed + skipped]
        text = f"{run.title}: {outcome}; {len(patched)} of {len(order)} nodes patched"
        if patched:
            text += f" ({', '.join(patched)})"
        text += "."
        errors_by = eng.get("block_errors") or {}
        for s in failed:
            text += f" {s} failed: {errors_by.get('node ' + s, '').rstrip('.')}."
        for s in skipped:
            text += f" {s} skipped by the operator, not patched: {errors_by.get('node ' + s, '').rstrip('.')}."
        if run.params.get("hold"):
            where = (f"in ConfigMgr collection {run.params['hold_collection']}" if run.params.get("hold_collection")
                     else "no ConfigMgr connection")
            text += (f" Hold list ({where}), patch separately: "
                     + ", ".join(f"{h['short']} ({h['why']})" for h in run.params["hold"]) + ".")
        if eng.get("failure") and not failed:
            text += f" First failure: {eng['failure'].rstrip('.')}."
        stuck = [s for s in order if mine.get(f"maintenance:{s}")]
        if stuck:
            text += (" STILL IN MAINTENANCE: " + ", ".join(f"{s} ({mine[f'maintenance:{s}']})" for s in stuck)
                     + ". Resume each once it is healthy (the host-resume runbook, or Resume on its host page), "
                       "then bring its VMs home.")
        away = [f"{s}: {', '.join(mine[f'away:{s}'])}" for s in order if mine.get(f"away:{s}")]
        if away:
            text += " VMs NOT HOME: " + "; ".join(away) + "."
        return text
