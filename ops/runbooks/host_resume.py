"""host-resume: take one host out of maintenance when no run will: a node a patch run left there
("STILL IN MAINTENANCE" in its outcome), one drained for hardware work in the VMM console, or one a
lost run left behind (a fresh database over a half-patched fabric: the patch preflight refuses the
cluster while a node is in maintenance, ops/patching/preflight.py, and this is its way out).

Phases, each reading the fabric before it acts (a repeated step does no harm):
``resume``   ``Enable-SCVMHost`` once VMM says the host responds and is in maintenance;
``tidy``     SCOM maintenance off, and the node's membership rule out of the update deployment's
             collection (ConfigMgr would otherwise install and restart it outside any patch run),
             each when there is a connection for it.

The VMs a drain moved off the host stay where they are: where each one ran before is the
placement record of the run that drained it (ops/runbooks/patch_steps.py), which this run does not
have. The run holds the host and its cluster, so it never runs beside a patch run of that cluster.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

from ..fabric import configmgr as cm, errors, scom, vmm, vmm_hosts
from ..fabric.session import session_for
from ..inventory.refresh import mark_maintenance
from ..models import VMHost
from .base import (Outcome, ParamErrors, Phase, Plan, Prepared, Runbook, StepSpec, connection_named, fabric_check,
                   only_enabled_deployment, own)
from .patch_steps import poll, short


class HostResume(Runbook):
    kind = "host-resume"
    title = "Resume a host from maintenance"
    description = ("Take one host out of maintenance (Enable-SCVMHost) once it responds, end its SCOM maintenance "
                   "and take it out of the update deployment's collection. Its VMs are not moved.")
    phases = [Phase("resume", "Resume the host"), Phase("tidy", "SCOM maintenance off, leave the deployment's collection")]
    job_actions = {"resume"}
    default_on_error = "wait"
    connection_params = {"scom": "scom", "configmgr": "configmgr"}
    done_messages = {"resume": "Resumed {target}"}
    param_names = ("host", "connection", "scom", "configmgr", "deployment")
    params = [
        {"name": "host", "label": "Host", "required": True, "help": "The host in maintenance, e.g. hv-b03."},
        {"name": "deployment", "label": "Update deployment", "help": "The ConfigMgr deployment whose collection the "
         "host leaves; empty: the only enabled one; none: leave ConfigMgr alone."},
        {"name": "scom", "label": "SCOM connection", "help": "Ends the host's SCOM maintenance mode; "
         "empty: the only enabled one; none: leave SCOM alone."},
        {"name": "configmgr", "label": "ConfigMgr connection", "help": "Empty: the only enabled one; none: no ConfigMgr."},
        {"name": "connection", "label": "VMM connection", "help": "Empty: the only enabled VMM connection."},
    ]

    def prepare(self, raw, check_fabric=True):
        self.check_names(raw)
        bad = ParamErrors()
        wanted = str(raw.get("host") or "").strip()
        if not wanted:
            bad.add("host is required (the host to resume, e.g. host=hv-b03)")
        conn = bad.take(connection_named, raw.get("connection"), "vmm")
        scom_conn = bad.take(connection_named, raw.get("scom"), "scom", required=False)
        cm_conn = None
        if str(raw.get("deployment") or "").strip().lower() != "none":
            cm_conn = bad.take(connection_named, raw.get("configmgr"), "configmgr", required=False)
        bad.raise_any()
        host = self.host_named(conn, wanted)
        deployment = ""
        if cm_conn is not None:
            deployment = self.deployment_named(cm_conn, str(raw.get("deployment") or "").strip())
        if check_fabric:
            facts = fabric_check(lambda: vmm_hosts.host_facts(session_for(conn), host.name, details=False),
                                 f"host {short(host.name)}")
            if not facts.in_maintenance:
                raise ValidationError(f"host: {short(host.name)} is not in maintenance in VMM server {conn.name} "
                                      f"({facts.communication_state}): there is nothing to resume", code="invalid")
        params = {"host": host.name, "cluster": host.cluster.name if host.cluster else "", "connection": conn.name,
                  "scom": scom_conn.name if scom_conn else "", "configmgr": cm_conn.name if cm_conn else "",
                  "deployment": deployment}
        holds = [f"host:{host.name}"] + ([f"cluster:{host.cluster.name}"] if host.cluster else [])
        return Prepared(params, conn, f"Resume {short(host.name)}", f"{conn.name}:host={host.name.lower()}", [],
                        holds=holds)

    def host_named(self, conn, wanted: str):
        """The inventory's host of that name (or short name), refused naming the hosts in maintenance."""
        hosts = VMHost.objects.filter(connection=conn).select_related("cluster")
        found = [h for h in hosts if wanted.lower() in (h.name.lower(), short(h.name).lower())]
        if len(found) == 1:
            return found[0]
        down = sorted(short(h.name) for h in hosts if h.in_maintenance)
        raise ValidationError(f"host: VMM server {conn.name} has no host named {wanted!r} in Slipway's inventory "
                              f"(in maintenance: {', '.join(down) or 'none'}; sync the fabric if it is new)",
                              code="invalid")

    def deployment_named(self, cm_conn, name: str) -> str:
        if not name:
            return only_enabled_deployment(cm_conn, "to leave ConfigMgr alone")
        deps = [d.name for d in fabric_check(lambda: cm.list_deployments(session_for(cm_conn)), "the deployments")
                if d.enabled]
        match = [d for d in deps if d.lower() == name.lower()]
        if not match:
            raise ValidationError(f"deployment: {cm_conn.name} has no enabled software update deployment named "
                                  f"{name!r} (enabled: {', '.join(deps) or 'none'})", code="invalid")
        return match[0]

    # -- the plan ------------------------------------------------------------------
    def expected_steps(self, run):
        return 1 + bool(run.params.get("scom")) + bool(run.params.get("deployment"))

    def plan(self, phase, run):
        host = run.params["host"]
        if phase.name == "resume":
            return Plan([StepSpec("resume", host, host, {"cmdlet": "Enable-SCVMHost"})])
        steps = []
        if run.params.get("scom"):
            steps.append(StepSpec("scom-off", f"{short(host)}: SCOM", host, {}))
        if run.params.get("deployment"):
            steps.append(StepSpec("leave", f"{short(host)}: {run.params['deployment']}", host, {}))
        return Plan(steps)

    def after_phase(self, run, phase, steps):
        if phase.name == "resume" and steps and all(s.state == "succeeded" for s in steps):
            mark_maintenance(run.connection, run.params["host"], False)

    # -- actions -------------------------------------------------------------------
    def do_resume(self, c):
        host, s = c.params["host"], short(c.params["host"])
        facts = vmm_hosts.host_facts(c.vmm, host, details=False)
        if not facts.responding:
            return Outcome.failed(f"VMM server {c.connection.name}: cannot resume {s}: it is {facts.communication_state}; "
                                  "it stays in maintenance. Retry once it answers, or abort")
        if not facts.in_maintenance:
            return Outcome.done(f"{s} is not in maintenance (resumed)")
        return Outcome.started(vmm.enable_host(c.vmm, host), f"Resuming {s}: Enable-SCVMHost")

    def do_scom_off(self, c):
        s = short(c.params["host"])
        try:
            ended = scom.stop_maintenance(c.session("scom"), c.params["host"])
        except errors.NotFound:
            return Outcome.done(f"{s}: SCOM server {c.params['scom']} does not monitor it", level="info",
                                context={"scom": f"SCOM server {c.params['scom']} does not monitor it"})
        said = f"SCOM maintenance {'ended' if ended else 'was not on'}"
        return Outcome.done(f"{s}: {said}", context={"scom": said})

    def do_leave(self, c):
        """The membership rule removed and the collection refreshed, then done once ConfigMgr lists the
        host in the collection no more (a refresh under way may still take it back in)."""
        cs, host, s = c.session("configmgr"), c.params["host"], short(c.params["host"])
        dep = cm.get_deployment(cs, name=c.params["deployment"])
        dev, col, members = (cm.get_device(cs, host), cm.get_collection(cs, dep.collection_id),
                             cm.list_devices(cs, dep.collection_id))
        listed = dev.resource_id in {d.resource_id for d in members}
        if not listed and not col.refreshing:
            said = (f"ConfigMgr lists it in {col.name} no more" if c.own.get("removed") else
                    f"ConfigMgr does not list it in {col.name}")
            return Outcome.done(f"{s}: {said}", context={"collection": said})
        if listed:
            cm.remove_from_collection(cs, col.id, dev, refresh=not col.refreshing)
        return Outcome.wait(f"waiting for collection {col.name} to let {s} go", poll(), deadline=3600,
                            context={"removed": True} if listed else None,
                            failure=f"ConfigMgr server {c.params['configmgr']}: collection {col.name} still lists {s} "
                                    "an hour after its membership rule was removed")

    def summarize(self, run, steps, outcome):
        s = short(run.params["host"])
        failed = [x.error.rstrip(".") for x in steps if x.state == "failed" and x.error]
        if not any(x.action == "resume" and x.state == "succeeded" for x in steps):
            return f"{s} was not resumed: {'; '.join(failed) or outcome}. It stays in maintenance."
        tidied = [own(run)[k] for k in ("scom", "collection") if own(run).get(k)]
        text = f"{s} resumed from maintenance" + (f" ({'; '.join(tidied)})" if tidied else "")
        if outcome != "succeeded":
            text += f", but not all was tidied: {'; '.join(failed) or outcome}"
        return text + ". The VMs that left it before stay where they are: move back by hand those that belong on it."
