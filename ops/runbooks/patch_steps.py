"""The patch run's actions (``PatchCluster`` in ops/runbooks/patch_cluster.py mixes them in).

Each reads the fabric's real state before it acts, so a worker killed at any point and the
action run again does no harm: a node already disabled is not disabled twice, a VM already
home is not moved, a member already in the collection is not added again. What an action
learns goes back in ``Outcome.context`` (the run's ``context['runbook']``), keyed by node:
``record:<node>`` (its VMs and facts before), ``patched:<node>``, ``different:<node>``,
``maintenance:<node>`` (why it is still in maintenance), ``away:<node>`` (VMs not home).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import threading

from django.conf import settings

from ..dbutil import in_pool_thread
from ..fabric import bulk, configmgr as cm, errors, scom, vmm, vmm_hosts
from ..fabric.types import AdapterInfo, HostFacts, VolumeInfo
from .base import Outcome


# reads an action makes of different servers (VMM, ConfigMgr, SCOM) go at once; a pool of its own,
# apart from the engine's (ops/engine/steps.py), so an action waiting on it never starves itself
_inner = threading.local()
_reads = concurrent.futures.ThreadPoolExecutor(max_workers=12, thread_name_prefix="slipway-patch-read",
                                               initializer=lambda: setattr(_inner, "pool", True))


def together(*calls):
    """Each call's result, in order, the calls under way at once (the first error is raised). Called
    from one of the pool's own threads (a call that itself reads at once), the calls get a small pool
    of their own: waiting on the shared one from inside it could wait for ever once it is full."""
    if getattr(_inner, "pool", False):
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="slipway-patch-read2") as ex:
            return [f.result() for f in [ex.submit(fn) for fn in calls]]
    futures = [_reads.submit(in_pool_thread, f) for f in calls]
    return [f.result() for f in futures]


def poll() -> float:
    return float(getattr(settings, "SLIPWAY_PATCH_POLL_SECONDS", 5.0))


def timeout_scale() -> float:
    """Tests and benches run the simulator faster than real time: its minutes are shorter."""
    return float(getattr(settings, "SLIPWAY_PATCH_TIMEOUT_SCALE", 1.0))


def short(host: str) -> str:
    return host.split(".")[0]


def _facts_dict(f) -> dict:
    return {"volumes": [dataclasses.asdict(v) for v in f.volumes], "adapters": [dataclasses.asdict(a) for a in f.adapters]}


def _facts(d: dict, name: str):
    return HostFacts(name, True, "Responding", False, [VolumeInfo(**v) for v in d.get("volumes", [])],
                     [AdapterInfo(**a) for a in d.get("adapters", [])])


def _hex(code: int) -> str:
    return f"0x{code & 0xFFFFFFFF:08X}"


class PatchSteps:
    def _node(self, c):
        return c.data["node"]

    def _vms_on(self, c, node):
        return vmm_hosts.vms_on(c.vmm, node)

    def prefetch(self, ctxs):
        """The VMs that steps starting together move (home, park), read in one round trip."""
        ids = [c.data["vm"]["id"] for c in ctxs if c.action in ("home", "park")]
        return {"vms": bulk.get_vms(ctxs[0].vmm, ids)} if ids else {}

    def _vm_now(self, c, vm_id):
        return c.cache.get("vms", {}).get(vm_id.lower()) or vmm.get_vm(c.vmm, vm_id)

    def _deployment(self, c):
        """The run's deployment: read by its name once (the record step keeps it in ``own['deployment']``:
        its IDs and collection do not change under a run); its state is always read afresh."""
        kept = c.own.get("deployment")
        if kept and kept.get("name") == c.params["deployment"]:
            return cm.DeploymentInfo(**kept)
        return cm.get_deployment(c.session("configmgr"), name=c.params["deployment"])

    # -- record, drain -----------------------------------------------------------------
    def do_record(self, c):
        node = self._node(c)
        s = short(node)
        mine = c.own.get(f"record:{s}")
        if mine:   # recorded before a crash: the drain may have moved VMs since; keep the first record
            return Outcome.done(f"{s}: placement already recorded ({len(mine['vms'])} VMs)")

        def updates_needed():   # what the report says of each update (ops/patching/report.py); the deployment
            if c.params.get("deployment") == "none":
                return [], {}
            cs = c.session("configmgr")
            dep, dev = together(lambda: self._deployment(c), lambda: cm.get_device(cs, node))
            updates, states = together(lambda: cm.list_updates(cs, dep.update_group_ci_id),
                                       lambda: cm.update_compliance(cs, dev))
            return ([{"ci_id": u.ci_id, "article_id": u.article_id, "title": u.title}
                     for u in cm.still_required(updates, states)], {"deployment": dataclasses.asdict(dep)})

        facts, on, (needed, kept) = together(lambda: vmm_hosts.host_facts(c.vmm, node), lambda: self._vms_on(c, node),
                                             updates_needed)
        vms = [{"id": v.id, "name": v.name, "status": v.status, "ha": v.is_highly_available, "memory_mb": v.memory_mb}
               for v in on]
        running = sum(v["status"] == "Running" for v in vms)
        return Outcome.done(f"{s}: recorded {len(vms)} VMs ({running} running), {len(facts.volumes)} volumes, "
                            f"{len(facts.adapters)} network adapters, {len(needed)} updates needed",
                            {"vms": len(vms)},
                            context={f"record:{s}": {"vms": vms, "facts": _facts_dict(facts), "updates": needed},
                                     **kept})

    def _update_results(self, c, node, dev=None, states=None) -> dict:
        """Each update the node needed, as ConfigMgr now says it stands on the node (status and the
        last install's error code): kept with the run for its report."""
        s = short(node)
        needed = c.own.get(f"record:{s}", {}).get("updates") or []
        if not needed:
            return {}
        if states is None:
            cs = c.session("configmgr")
            states = cm.update_compliance(cs, dev or cm.get_device(cs, node))
        out = []
        for u in needed:
            st = states.get(u["ci_id"])
            out.append({**u, "status": st.status if st else "Unknown", "error_code": st.error_code if st else 0,
                        "pending_restart": bool(st and st.pending_restart)})
        return {f"updates:{s}": out}

    def _silence(self, c, node):
        """SCOM maintenance on the node, unless it is on already."""
        if not c.params.get("scom"):
            return
        ss = c.session("scom")
        try:
            if scom.get_maintenance(ss, node) is None:
                end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=4)
                scom.start_maintenance(ss, node, end, "PlannedOperatingSystemReconfiguration",
                                       f"Slipway run {c.run_id}: patching {short(node)}")
        except errors.NotFound:
            pass  # not monitored by SCOM: nothing to silence

    def do_drain(self, c):
        node = self._node(c)
        _, facts = together(lambda: self._silence(c, node),
                            lambda: vmm_hosts.host_facts(c.vmm, node, details=False))
        if facts.in_maintenance:
            return Outcome.done(f"{short(node)} is already in maintenance in VMM (drained)")
        return Outcome.started(vmm.disable_host(c.vmm, node, move_within_cluster=True),
                               f"Draining {short(node)}: Disable-SCVMHost -MoveWithinCluster")

    def do_drained(self, c):
        node, s = self._node(c), short(self._node(c))
        still = [v.name for v in self._vms_on(c, node) if v.status == "Running"]
        if still:
            return Outcome.failed(f"VMM server {c.connection.name}: {s} is not empty after the drain: "
                                  f"{', '.join(still)} still running on it")
        saved = [v["name"] for v in c.own.get(f"record:{s}", {}).get("vms", []) if not v["ha"] and v["status"] == "Running"]
        tail = f"; saved (their users are cut off until {s} is back): {', '.join(saved)}" if saved else ""
        return Outcome.done(f"{s} is empty: nothing running on it{tail}")

    def do_park(self, c):
        """A stopped HA VM goes to the peer with the most memory free before its node goes down
        (move_stopped_ha): started while its node reboots, it would have nowhere to run. The
        return phase brings it home like every HA VM (``do_home``)."""
        node, vm = c.data["node"], c.data["vm"]
        now = self._vm_now(c, vm["id"])
        if now.host_name.lower() not in (node.lower(), short(node).lower()):
            return Outcome.done(f"{vm['name']} is already off {short(node)} (on {short(now.host_name)})")
        hosts = vmm.list_hosts(c.vmm)
        cluster = next((h.cluster_name for h in hosts if h.name.lower() == node.lower()), "")
        peers = [h for h in hosts if h.cluster_name == cluster and h.name.lower() != node.lower()
                 and not h.in_maintenance and h.communication_state == "Responding"]
        if not peers:
            return Outcome.failed(f"VMM server {c.connection.name}: no other node of {cluster} is up to take "
                                  f"{vm['name']} (stopped, highly available) off {short(node)}")
        dest = max(peers, key=lambda h: h.available_memory_mb)
        return Outcome.started(vmm.move_vm(c.vmm, vm["id"], dest.name, vm["name"]),
                               f"Moving {vm['name']} (stopped) off {short(node)} to {short(dest.name)}")

    # -- ConfigMgr ---------------------------------------------------------------------
    def _join(self, cs, node, collection):
        """(device, collection, None) once ConfigMgr lists the node in the collection; until then the
        membership rule is added (a second rule for one device is harmless), the collection refreshed,
        and the third item is the wait."""
        dev, col, members = together(lambda: cm.get_device(cs, node), lambda: cm.get_collection(cs, collection),
                                     lambda: cm.list_devices(cs, collection))
        if dev.resource_id in {d.resource_id for d in members}:
            return dev, col, None
        cm.add_to_collection(cs, col.id, dev, refresh=not col.refreshing)   # rule and refresh in one round trip
        return dev, col, Outcome.wait(f"{short(node)}: waiting for collection {col.name} to take it in", poll(),
                                      deadline=3600)

    def do_enrol(self, c):
        cs = c.session("configmgr")
        dev, _, waiting = self._join(cs, self._node(c), self._deployment(c).collection_id)
        if waiting:
            return waiting
        cm.request_machine_policy(cs, dev)
        return Outcome.done(f"{short(self._node(c))} is a member of the deployment's collection; machine policy "
                            "requested", {"resource_id": dev.resource_id})

    def do_hold_host(self, c):
        """A host of the hold list into ConfigMgr's holding collection; done once ConfigMgr lists it there."""
        dev, col, waiting = self._join(c.session("configmgr"), self._node(c), c.data["collection"])
        return waiting or Outcome.done(f"{short(self._node(c))} is in {col.name} ({c.data['why']}): patch it "
                                       "separately", {"resource_id": dev.resource_id})

    def do_install(self, c):
        node, s = self._node(c), short(self._node(c))
        cs, dep = c.session("configmgr"), self._deployment(c)
        dev, statuses = together(lambda: cm.get_device(cs, node), lambda: cm.deployment_status(cs, dep))
        st = cm.status_of(statuses, dev)
        if st is not None and st.compliant:
            return Outcome.done(f"{s}: compliant, nothing to install", context={f"restart:{s}": False})
        if st is not None and st.pending_restart:
            return Outcome.done(f"{s}: updates installed, restart pending", context={f"restart:{s}": True})
        if st is not None and st.failed:
            return Outcome.failed(f"ConfigMgr server {cs.settings.name}: the install on {s} failed: {st.description} "
                                  f"(error {_hex(st.error_code)})", {"error_code": st.error_code},
                                  context=self._update_results(c, node))
        if st is None or st.status == "Unknown":
            cm.request_machine_policy(cs, dev)
        what = st.description if st is not None else "not targeted yet"
        return Outcome.wait(f"{s}: installing updates ({what})", poll(), deadline=6 * 3600)

    def do_reboot(self, c):
        node, s = self._node(c), short(self._node(c))
        if c.own.get(f"restart:{s}") is False:
            return Outcome.skipped(f"{s}: no restart needed", "info")
        cs, dep = c.session("configmgr"), self._deployment(c)
        facts, dev, statuses = together(lambda: vmm_hosts.host_facts(c.vmm, node, details=False),
                                        lambda: cm.get_device(cs, node), lambda: cm.deployment_status(cs, dep))
        if not facts.responding:
            return Outcome.done(f"{s} is restarting")
        st = cm.status_of(statuses, dev)
        if st is not None and not st.pending_restart:
            return Outcome.done(f"{s}: restart already done ({st.description})")
        return Outcome.started(vmm_hosts.restart_host(c.vmm, node), f"Restarting {s}")

    def do_back(self, c):
        node, s = self._node(c), short(self._node(c))
        limit = 60 * int(c.params.get("reboot_timeout") or 30) * timeout_scale()
        hardware = c.params.get("deployment") == "none"
        facts, online = together(lambda: vmm_hosts.host_facts(c.vmm, node, details=False),
                                 lambda: hardware or cm.get_device(c.session("configmgr"), node).online)
        if facts.responding and online:   # back: what the wait said of it no longer holds
            return Outcome.done(f"{s} is back: responding in VMM and ConfigMgr",
                                context={f"maintenance:{s}": ""} if c.own.get(f"maintenance:{s}") else None)
        minutes = int(c.params.get("reboot_timeout") or 30)
        seen = f"VMM: {facts.communication_state}" + ("" if hardware else f", ConfigMgr: {'online' if online else 'offline'}")
        return Outcome.wait(f"waiting for {s} to answer again after its restart ({seen}; up to {minutes} min)",
                            poll(), deadline=limit, context={f"maintenance:{s}": "it was restarting and had not answered yet"},
                            failure=f"VMM server {c.connection.name}: host {s} did not come back within {minutes} min "
                                    f"of its restart ({seen}); it stays in maintenance",
                            failure_context={f"maintenance:{s}": f"it did not come back within {minutes} min of its restart"})

    def do_hold(self, c):
        s = short(self._node(c))
        return Outcome.failed(f"{s} is drained for hardware maintenance: do the work, then retry this step "
                              "to resume it (or skip the node)")

    def do_check(self, c):
        node, s = self._node(c), short(self._node(c))
        peers = [p for p in c.params.get("order") or [] if p != node]

        def compliance():   # (updates still applicable, each needed update's result for the report)
            if c.params.get("deployment") == "none":
                return [], {}
            cs, dep = c.session("configmgr"), self._deployment(c)
            dev = cm.get_device(cs, node)
            updates, states = together(lambda: cm.list_updates(cs, dep.update_group_ci_id),
                                       lambda: cm.update_compliance(cs, dev))
            return cm.still_required(updates, states), self._update_results(c, node, dev, states)

        now, peer, (left, results) = together(lambda: vmm_hosts.host_facts(c.vmm, node),
                                              lambda: vmm_hosts.host_facts(c.vmm, peers[0]) if peers else None,
                                              compliance)
        problems = [f"updates still applicable: {', '.join(u.article_id for u in left)}"] if left else []
        before = c.own.get(f"record:{s}", {}).get("facts")
        different = vmm_hosts.differences(_facts(before, node), now) if before else []
        if peer is not None and not different:
            if peer.responding and (len(peer.volumes), len(peer.adapters)) != (len(now.volumes), len(now.adapters)):
                different.append(f"{len(now.volumes)} volumes and {len(now.adapters)} network adapters, its peer "
                                 f"{short(peers[0])} has {len(peer.volumes)} and {len(peer.adapters)}")
        if different:
            why = "; ".join(different)
            return Outcome.failed(f"{s} came back different: {why}. Its VMs stay away until it is checked",
                                  context={f"different:{s}": why, **results})
        if problems:
            return Outcome.failed(f"{s}: {'; '.join(problems)}", context=results)
        return Outcome.done(f"{s}: compliant, same volumes and network adapters as before",
                            context={f"patched:{s}": True, f"different:{s}": "", **results})

    # -- always: resume, home, verify, leave ---------------------------------------------
    def do_resume(self, c):
        node, s = self._node(c), short(self._node(c))
        facts = vmm_hosts.host_facts(c.vmm, node, details=False)
        if not facts.responding:
            return Outcome.failed(f"VMM server {c.connection.name}: cannot resume {s}: it is {facts.communication_state}; "
                                  "it stays in maintenance",
                                  context={f"maintenance:{s}": f"{facts.communication_state} in VMM"})
        if not facts.in_maintenance:
            return Outcome.done(f"{s} is not in maintenance (resumed)", context={f"maintenance:{s}": ""})
        job = vmm.enable_host(c.vmm, node)
        return Outcome(kind="job", message=f"Resuming {s}: Enable-SCVMHost", level="info", result={"job_id": job.id},
                       context={f"maintenance:{s}": ""}, job=job)

    def do_home(self, c):
        node, vm = c.data["node"], c.data["vm"]
        now = self._vm_now(c, vm["id"])
        here = now.host_name.lower() in (node.lower(), short(node).lower())
        if not here and vm["ha"]:
            return Outcome.started(vmm.move_vm(c.vmm, vm["id"], node, vm["name"]),
                                   f"Moving {vm['name']} back to {short(node)}")
        if here and vm["status"] == "Running" and now.status in ("Saved", "PowerOff", "Stopped"):
            return Outcome.started(vmm.start_vm(c.vmm, vm["id"], vm["name"]), f"Starting {vm['name']} again on {short(node)}")
        return Outcome.done(f"{vm['name']} is home on {short(node)} ({now.status})")

    def do_verify(self, c):
        node, s = self._node(c), short(self._node(c))
        everyone = c.own.get(f"record:{s}", {}).get("vms", [])
        record = [v for v in everyone if v["ha"] or v["status"] == "Running"]   # a stopped non-HA VM never left
        now = bulk.get_vms(c.vmm, [v["id"] for v in record])   # the node's own VMs, not the whole fabric
        away = []
        for v in record:
            cur = now.get(v["id"].lower())
            if cur is None or cur.host_name.lower() not in (node.lower(), s.lower()):
                away.append(f"{v['name']} on {short(cur.host_name) if cur else 'nowhere'}")
            elif v["status"] == "Running" and cur.status != "Running":
                away.append(f"{v['name']} {cur.status}")
        if away:
            return Outcome.failed(f"{s}: not every VM is home: {', '.join(away)}", context={f"away:{s}": away})
        return Outcome.done(f"{s}: every VM is home ({len(everyone)} VMs, as before)", context={f"away:{s}": []})

    def do_leave(self, c):
        """SCOM maintenance off; the node's membership rule out of the deployment's collection and a
        refresh asked for. The refresh is not waited for here: the next node goes on meanwhile, and the
        run's last phase (``do_left``) proves from ConfigMgr that every node left."""
        node, s = self._node(c), short(self._node(c))
        patched = c.params.get("deployment") not in ("none", "")
        cs, dep = (c.session("configmgr"), self._deployment(c)) if patched else (None, None)
        ss = c.session("scom") if c.params.get("scom") and not c.own.get(f"maintenance:{s}") else None

        def leave():   # (what was done, the run's note of it)
            if not patched:
                return [], {}
            dev, col, members = together(lambda: cm.get_device(cs, node),
                                         lambda: cm.get_collection(cs, dep.collection_id),
                                         lambda: cm.list_devices(cs, dep.collection_id))
            done = []
            if dev.resource_id in {d.resource_id for d in members}:
                # removing it twice is harmless; the refresh in the same round trip
                cm.remove_from_collection(cs, dep.collection_id, dev, refresh=not col.refreshing)
                done.append(f"leaving {col.name} (checked before the run ends)")
            return done, {f"leaving:{s}": {"collection": dep.collection_id, "resource_id": dev.resource_id}}

        def silence_off():
            return ["SCOM maintenance off"] if ss is not None and scom.stop_maintenance(ss, node) else []

        (done, context), off = together(leave, silence_off)
        done += off
        return Outcome.done(f"{s}: {', '.join(done) or 'nothing left to undo'}", context=context)

    def do_left(self, c):
        """Done once ConfigMgr lists none of the nodes that left in the deployment's collection and
        the collection is not refreshing (a refresh under way may still take one back in); a member
        still there has its rule removed again (harmless) and the collection refreshed."""
        cs = c.session("configmgr")
        # the collection first, then its members, one after the other: read at once, a refresh that ends
        # between the two reads would show as "not refreshing" beside members read before it took a node back
        col = cm.get_collection(cs, c.data["collection"])
        members = cm.list_devices(cs, c.data["collection"])
        leaving = {int(v["resource_id"]): n for n, v in c.data["nodes"].items()}
        still = [d for d in members if d.resource_id in leaving]
        if not still and col.refreshing:   # a rule put back meanwhile shows only once the refresh ends
            return Outcome.wait(f"waiting for collection {col.name} to finish refreshing before it is read", poll(),
                                deadline=3600)
        if not still:
            return Outcome.done(f"ConfigMgr lists none of {', '.join(leaving.values())} in {col.name} any more")
        for i, d in enumerate(still):
            cm.remove_from_collection(cs, col.id, d, refresh=i == len(still) - 1 and not col.refreshing)
        return Outcome.wait(f"waiting for collection {col.name} to let {', '.join(leaving[d.resource_id] for d in still)} go",
                            poll(), deadline=3600)
