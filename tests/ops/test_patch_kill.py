"""A real worker (its whole process group, like a crashed machine) SIGKILLed in each phase of a node's
patch, then a new one started: the run completes, every VM is back on its own node in the state it was
in, and no host is left in maintenance (ops/engine/lease.py, reaper.py; ops/runbooks/patch_steps.py
reads the fabric before each action, so a step done again after the crash does no harm)."""
import json

import pytest

from ops.bench._worker_site import WorkerSite

pytestmark = pytest.mark.slow
NODE = "hv-b01"   # 8 VMs, web06 not highly available: the drain saves it


def placement(engine):
    return {v["name"]: (v["host"].split(".")[0], v["status"]) for v in engine.control({"op": "state"})["vms"]
            if v["host"].startswith("hv-b")}


def killed_then_finished(site, worker, run_id) -> dict:
    """SIGKILL the worker's whole process group, start a new one, and wait for the run to succeed."""
    site.kill_cluster(worker)
    assert site.run_row(run_id)["state"] == "running"
    site.start_cluster()
    row = site.wait_final(run_id, timeout=240)
    assert row["state"] == "succeeded", row["message"]
    return row


def in_maintenance(engine):
    return [h["name"] for h in engine.control({"op": "state"})["hosts"] if h["maintenance"]]


@pytest.mark.parametrize("phase", ["drain", "install", "back", "return"])
def test_a_worker_killed_in_each_phase_of_a_node_leaves_a_run_that_completes_with_every_vm_home(monkeypatch, phase):
    from tests.conftest import start_sim

    monkeypatch.setenv("SLIPWAY_PATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("SLIPWAY_PATCH_TIMEOUT_SCALE", "0.02")
    engine, server = start_sim(time_scale=0.02)
    site = WorkerSite(engine, server, bound=4, workers=2, lease_seconds=3)
    try:
        before = placement(engine)
        first = site.start_cluster()
        run_id = site.start_run("patch-cluster", cluster="CLU-B", order=NODE, confirm="web06")
        site.wait_for(lambda: site.query("select phase from ops_run where id = ?", run_id)[0][0] == f"{phase}@{NODE}"
                      or site.run_row(run_id)["state"] not in ("queued", "running"), timeout=120, interval=0.02)
        assert site.query("select phase from ops_run where id = ?", run_id)[0][0] == f"{phase}@{NODE}", \
            site.run_row(run_id)
        row = killed_then_finished(site, first, run_id)
        assert "1 of 1 nodes patched" in row["message"]
        assert placement(engine) == before, "every VM back on its own node, in the state it was in"
        assert in_maintenance(engine) == []
        patching = engine.control({"op": "state"})["patching"]["hosts"]
        assert next(v for h, v in patching.items() if h.startswith(NODE))["pending_updates"] == []
    finally:
        site.close()
        server.stop()


@pytest.mark.parametrize("phase", ["holdlist", "left"])
def test_a_worker_killed_while_a_collection_is_being_joined_or_left_leaves_a_run_that_proves_it_from_configmgr(
        monkeypatch, phase):
    """The hold list's join (hv-s01 into Hyper-V Hold) and the last phase's check that every node left
    the deployment's collection both wait for a collection refresh: killed then, the new worker reads
    ConfigMgr's membership again and the run ends with hv-s01 held and the node out of the collection."""
    from tests.conftest import start_sim

    monkeypatch.setenv("SLIPWAY_PATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("SLIPWAY_PATCH_TIMEOUT_SCALE", "0.02")
    engine, server = start_sim(time_scale=0.02)
    w = engine.fabric.patching
    w.refresh_s = 150.0   # 3 s at this time scale: long enough to be killed in
    site = WorkerSite(engine, server, bound=4, workers=2, lease_seconds=3)
    try:
        before = placement(engine)
        first = site.start_cluster()
        run_id = site.start_run("patch-cluster", cluster="CLU-B", order=NODE, confirm="web06", hosts="hv-s01")

        def waiting_in_phase():
            rows = site.query("select s.data from ops_step s join ops_run r on r.id = s.run_id "
                              "where r.id = ? and s.phase = r.phase and r.phase = ? and s.state = 'running'",
                              run_id, phase)
            return any('"waiting_for"' in (d or "") for (d,) in rows) or \
                site.run_row(run_id)["state"] not in ("queued", "running")

        site.wait_for(waiting_in_phase, timeout=180, interval=0.05)
        assert site.query("select phase from ops_run where id = ?", run_id)[0][0] == phase, site.run_row(run_id)
        row = killed_then_finished(site, first, run_id)
        assert "1 of 1 nodes patched" in row["message"] and "hv-s01 (standalone host)" in row["message"]
        assert placement(engine) == before, "every VM back on its own node, in the state it was in"
        assert in_maintenance(engine) == []
        context = json.loads(site.query("select context from ops_run where id = ?", run_id)[0][0])
        deployment = context["runbook"]["deployment"]["collection_id"]
        with engine.fabric.lock:
            names = {d.resource_id: d.name for d in w.devices.values()}
            members = {c.id: (c.name, sorted(names[r] for r in c.members)) for c in w.collections.values()}
        assert ("Hyper-V Hold", ["HV-S01"]) in members.values(), members
        assert members[deployment][1] == [], f"{NODE} left the deployment's collection {members[deployment]}"
    finally:
        site.close()
        server.stop()


LEFT_BEHIND = """
import datetime as dt
from ops.fabric import configmgr as cm, scom, vmm
from ops.fabric.session import session_for
from ops.inventory.sync import sync_connection
from ops.models import ServerConnection
conns = {c.kind: c for c in ServerConnection.objects.all()}
v, ss, cs = (session_for(conns[k]) for k in ("vmm", "scom", "configmgr"))
node = "hv-b03.contoso.com"
assert vmm.wait_job(v, vmm.disable_host(v, node), timeout=120).succeeded
scom.start_maintenance(ss, node, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=4),
                       "PlannedOperatingSystemReconfiguration", "a lost patch run")
[dep] = [d for d in cm.list_deployments(cs) if d.enabled]
cm.add_to_collection(cs, dep.collection_id, cm.get_device(cs, node), refresh=True)
assert sync_connection(conns["vmm"]).ok
"""


@pytest.mark.parametrize("phase", ["resume", "tidy"])
def test_a_worker_killed_while_a_host_is_resumed_leaves_a_run_that_ends_with_the_host_out_of_maintenance(
        monkeypatch, phase):
    """host-resume (ops/runbooks/host_resume.py) over the state a lost patch run leaves (hv-b03 drained,
    in SCOM maintenance, in the deployment's collection), killed while Enable-SCVMHost runs or while
    the collection lets the node go: the new worker reads the fabric again and finishes the job."""
    from tests.conftest import start_sim

    monkeypatch.setenv("SLIPWAY_PATCH_POLL_SECONDS", "0.1")
    engine, server = start_sim(time_scale=0.02)
    site = WorkerSite(engine, server, bound=4, workers=2, lease_seconds=3)
    try:
        site.manage(["shell", "-c", LEFT_BEHIND])
        w = engine.fabric.patching
        with engine.fabric.lock:   # the refresh that took hv-b03 in ends before the run starts
            w.refresh_s = 1.0
        # a read of the fabric applies what is due (ops/simulator/patching.py, advance)
        site.wait_for(lambda: engine.control({"op": "state"}) and not any(c.refresh_due for c in w.collections.values()),
                      timeout=60)
        assert in_maintenance(engine) == ["hv-b03.contoso.com"]
        engine.control({"op": "time_scale", "value": 1.0})   # Enable-SCVMHost: 2 s, long enough to be killed in
        with engine.fabric.lock:
            w.refresh_s = 3.0
        first = site.start_cluster()
        run_id = site.start_run("host-resume", host="hv-b03")
        site.wait_for(lambda: site.query("select phase from ops_run where id = ?", run_id)[0][0] == phase
                      or site.run_row(run_id)["state"] not in ("queued", "running"), timeout=120, interval=0.02)
        assert site.query("select phase from ops_run where id = ?", run_id)[0][0] == phase, site.run_row(run_id)
        row = killed_then_finished(site, first, run_id)
        assert row["message"].startswith("hv-b03 resumed from maintenance (SCOM maintenance ended; ConfigMgr lists "
                                         "it in Hyper-V Patch Window no more)"), row["message"]
        assert in_maintenance(engine) == []
        with engine.fabric.lock:
            names = {d.resource_id: d.name for d in w.devices.values()}
            members = [sorted(names[r] for r in c.members) for c in w.collections.values() if c.name == "Hyper-V Patch Window"]
        assert members == [[]], members
    finally:
        site.close()
        server.stop()
