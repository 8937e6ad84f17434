"""Many operations in one round trip: every request gets its own result, and one
bad target never hides the others'."""
import datetime as dt

import pytest

from ops.fabric import bulk, errors, scom, vmm
from ops.fabric.session import session_for

pytestmark = pytest.mark.django_db

GHOST = "6f1c2c56-0000-4000-8000-000000000000"


def off_vms(sim, n):
    vms = [v for v in vmm.list_vms(session_for(sim.vmm)) if v.status == "PowerOff"]
    assert len(vms) >= n
    return vms[:n]


def test_submit_jobs_attributes_each_result(sim):
    s = session_for(sim.vmm)
    a, busy, b = off_vms(sim, 3)
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": busy.name, "mode": "hang"})
    vmm.new_checkpoint(s, busy.id, "holds the VM", vm_name=busy.name)
    requests = [bulk.new_checkpoint_request(a.id, "bulk", "x", a.name),
                bulk.new_checkpoint_request(GHOST, "bulk", "x", "ghost"),
                bulk.new_checkpoint_request(busy.id, "bulk", "x", busy.name),
                bulk.new_checkpoint_request(b.id, "bulk", "x", b.name)]
    results = bulk.submit_jobs(s, requests)
    assert [type(r).__name__ for r in results] == ["JobInfo", "NotFound", "VMBusy", "JobInfo"]
    assert "ghost" in str(results[1]) and busy.name in str(results[2])
    for job, vm in ((results[0], a), (results[3], b)):
        assert vmm.wait_job(s, job, timeout=60).succeeded
        assert "bulk" in [c.name for c in vmm.list_checkpoints(s, vm.id)]


def test_submit_jobs_in_several_chunks(sim, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)
    s = session_for(sim.vmm)
    vms = off_vms(sim, 5)
    results = bulk.submit_jobs(s, [bulk.start_vm_request(v.id, v.name) for v in vms])
    assert all(isinstance(r, vmm.JobInfo) for r in results)
    jobs = vmm.get_jobs(s, [r.id for r in results])
    assert set(jobs) == {r.id for r in results}
    for r in results:
        vmm.wait_job(s, r, timeout=60)
    assert {v.status for v in bulk.get_vms(s, [v.id for v in vms]).values()} == {"Running"}


def test_get_vms_and_checkpoints_of_small_and_large_sets(sim, monkeypatch):
    s = session_for(sim.vmm)
    every = vmm.list_vms(s)
    ids = [v.id for v in every[:5]] + [GHOST]
    small = bulk.get_vms(s, ids)
    assert set(small) == {i.lower() for i in ids[:5]}
    monkeypatch.setattr(bulk, "LIST_ALL_ABOVE", 2)
    assert bulk.get_vms(s, ids) == small
    all_cps = vmm.list_checkpoints(s)
    with_cps = {cp.vm_id.lower() for cp in all_cps}
    some = list(with_cps)[:3]
    by_vm = bulk.checkpoints_of(s, some)
    assert all(by_vm[v] and all(cp.vm_id.lower() == v for cp in by_vm[v]) for v in some)


def test_scom_many_objects_in_one_call(sim):
    s = session_for(sim.scom)
    names = [v.name for v in vmm.list_vms(session_for(sim.vmm)) if v.status == "Running"][:4]
    states = scom.maintenance_states(s, names + ["no-such-computer"])
    assert states["no-such-computer"] is None and all(states[n] is False for n in names)
    scom.start_maintenance_many(s, names, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), "PlannedOther", "bulk")
    assert all(scom.maintenance_states(s, names)[n] is True for n in names)
    scom.stop_maintenance_many(s, names)
    assert all(scom.maintenance_states(s, names)[n] is False for n in names)
    with pytest.raises(errors.NotFound):
        scom.maintenance_states(s, ["web*"])  # a wildcard would put every matching computer in maintenance
