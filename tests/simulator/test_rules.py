"""The fabric's rules (DESIGN.md, "The fabric's rules"), each checked directly against the engine.

Fabric (sim_helpers.small_fabric): cluster C1 = n1 (16 GB), n2 (16 GB, 'big' uses 12 GB),
n3 (8 GB, web01 uses 2 GB); standalone s1 (8 GB). On n1: ha1, ha2 (running HA, 4 GB),
solo (running, not HA), off1 (PowerOff), saved1 (Saved).
"""
from __future__ import annotations


import pytest

from tests.simulator.sim_helpers import engine, host_state, pipe, raises, small_fabric, vm_state
from tests.waiting import wait_until


@pytest.fixture
def eng():
    return engine()


@pytest.fixture
def s(eng):
    return eng.open_session("CONTOSO\\admin")


def drain(s, host, move=True, **extra):
    params = [("MoveWithinCluster", None)] if move else []
    return pipe(s, ("Get-SCVMHost", [("ComputerName", host)]), ("Disable-SCVMHost", params + list(extra.items())))


def vm(s, name):
    return pipe(s, ("Get-SCVirtualMachine", [("Name", name)])).outputs[0]


def host(s, name):
    return pipe(s, ("Get-SCVMHost", [("ComputerName", name)])).outputs[0]


def status(eng, name):
    return vm_state(eng, name)["status"]


def where(eng, name):
    return vm_state(eng, name)["host"].split(".")[0]


# ---- maintenance mode --------------------------------------------------------------------
def test_drain_live_migrates_running_ha_vms_to_the_node_with_most_free_memory(eng, s):
    out = drain(s, "n1")
    assert out.outputs[0].get("MaintenanceHost") is True
    # ha1 first: n3 has 6 GB free, n2 4 GB -> n3. ha2 then: n2 4 GB, n3 2 GB -> n2.
    assert (where(eng, "ha1"), status(eng, "ha1")) == ("n3", "Running")
    assert (where(eng, "ha2"), status(eng, "ha2")) == ("n2", "Running")


def test_drain_saves_running_non_ha_and_leaves_off_and_saved_vms(eng, s):
    drain(s, "n1")
    assert (where(eng, "solo"), status(eng, "solo")) == ("n1", "Saved")
    assert (where(eng, "off1"), status(eng, "off1")) == ("n1", "PowerOff")
    assert (where(eng, "saved1"), status(eng, "saved1")) == ("n1", "Saved")
    assert host_state(eng, "n1")["maintenance"] is True


def test_drain_without_room_saves_the_ha_vm_and_reports_info(s):
    data = small_fabric()
    data["vms"].append({"name": "huge", "host": "n1", "memory_mb": 6144, "highly_available": True,
                        "status": "Running"})
    eng = engine(data)
    s = eng.open_session("admin")
    h = drain(s, "n1", RunAsynchronously=None).outputs[0]
    job = wait_until(lambda: (j := pipe(s, ("Get-SCJob", [("ID", h.get("MostRecentTaskID"))])).outputs[0]).get("IsCompleted")
                     and j, message="the drain job ends")
    assert str(job.get("Status")) == "SucceedWithInfo"
    assert job.get("ErrorInfo").get("DisplayableErrorCode") == 10470
    assert "could not be live migrated" in job.get("ErrorInfo").get("Problem")
    saved = [n for n in ("ha1", "ha2", "huge") if status(eng, n) == "Saved"]
    assert saved and all(where(eng, n) == "n1" for n in saved)
    assert all(where(eng, n) != "n1" for n in ("ha1", "ha2", "huge") if n not in saved)
    for n in ("n2", "n3"):
        assert host_state(eng, n)["free_memory_mb"] >= 0


def test_sync_drain_without_room_warns(s):
    data = small_fabric()
    data["vms"].append({"name": "huge", "host": "n1", "memory_mb": 6144, "highly_available": True,
                        "status": "Running"})
    eng = engine(data)
    out = drain(eng.open_session("admin"), "n1")
    assert out.warnings and "(Error ID: 10470)" in out.warnings[0]


def test_drain_without_switch_saves_every_running_vm(eng, s):
    drain(s, "n1", move=False)
    for name in ("ha1", "ha2", "solo", "saved1"):
        assert (where(eng, name), status(eng, name)) == ("n1", "Saved")
    assert status(eng, "off1") == "PowerOff"


def test_move_within_cluster_on_standalone_host_is_refused(eng, s):
    e = raises(drain, s, "s1")
    assert "(Error ID: 10468)" in e.message and "not a node of a host cluster" in e.message
    assert host_state(eng, "s1")["maintenance"] is False and status(eng, "st1") == "Running"
    drain(s, "s1", move=False)
    assert status(eng, "st1") == "Saved"


def test_enable_moves_nothing_back(eng, s):
    drain(s, "n1")
    pipe(s, ("Get-SCVMHost", [("ComputerName", "n1")]), ("Enable-SCVMHost", []))
    assert host_state(eng, "n1")["maintenance"] is False
    assert where(eng, "ha1") == "n3" and where(eng, "ha2") == "n2" and status(eng, "solo") == "Saved"
    pipe(s, ("Move-SCVirtualMachine", [("VM", vm(s, "ha1")), ("VMHost", host(s, "n1"))]))
    assert (where(eng, "ha1"), status(eng, "ha1")) == ("n1", "Running")


def test_host_in_maintenance_takes_no_migration_or_start(eng, s):
    drain(s, "n3")
    e = raises(pipe, s, ("Move-SCVirtualMachine", [("VM", vm(s, "ha1")), ("VMHost", host(s, "n3"))]))
    assert "(Error ID: 10653)" in e.message and "maintenance mode" in e.message
    assert where(eng, "ha1") == "n1"
    # a later drain never places on n3 either
    drain(s, "n1")
    assert where(eng, "ha1") != "n3" and where(eng, "ha2") != "n3"
    e = raises(pipe, s, ("Start-SCVirtualMachine", [("VM", vm(s, "off1"))]))
    assert "(Error ID: 10653)" in e.message


def test_draining_twice_is_refused(s):
    drain(s, "n3")
    assert "(Error ID: 10434)" in raises(drain, s, "n3").message


# ---- memory ------------------------------------------------------------------------------
def test_memory_limits_migrations_and_starts(eng, s):
    e = raises(pipe, s, ("Move-SCVirtualMachine", [("VM", vm(s, "big")), ("VMHost", host(s, "n3"))]))
    assert "(Error ID: 13206)" in e.message and where(eng, "big") == "n2"
    # a PowerOff VM uses no memory, so it may move anywhere...
    pipe(s, ("Move-SCVirtualMachine", [("VM", vm(s, "st2")), ("VMHost", host(s, "n2"))]))
    assert where(eng, "st2") == "n2"
    # ...but cannot start where there is no room (n2: 16 GB - 12 GB = 4 GB, st2 needs 4 GB -> fits once)
    pipe(s, ("Start-SCVirtualMachine", [("VM", vm(s, "st2"))]))
    pipe(s, ("Move-SCVirtualMachine", [("VM", vm(s, "off1")), ("VMHost", host(s, "n2"))]))
    e = raises(pipe, s, ("Start-SCVirtualMachine", [("VM", vm(s, "off1"))]))
    assert "(Error ID: 13206)" in e.message and "not have enough memory" in e.message
    assert status(eng, "off1") == "PowerOff"


# ---- power state -------------------------------------------------------------------------
def test_start_running_and_stop_powered_off_are_errors(eng, s):
    e = raises(pipe, s, ("Start-SCVirtualMachine", [("VM", vm(s, "ha1"))]))
    assert "already running" in e.message and "(Error ID: 1730)" in e.message and e.category == "InvalidOperation"
    e = raises(pipe, s, ("Stop-SCVirtualMachine", [("VM", vm(s, "off1"))]))
    assert "already stopped" in e.message


def test_stop_modes(eng, s):
    pipe(s, ("Stop-SCVirtualMachine", [("VM", vm(s, "ha1")), ("SaveState", None)]))
    assert status(eng, "ha1") == "Saved"
    pipe(s, ("Stop-SCVirtualMachine", [("VM", vm(s, "ha2")), ("Shutdown", None)]))
    assert status(eng, "ha2") == "PowerOff"
    pipe(s, ("Stop-SCVirtualMachine", [("VM", vm(s, "solo")), ("Force", None)]))
    assert status(eng, "solo") == "PowerOff"
    e = raises(pipe, s, ("Stop-SCVirtualMachine", [("VM", vm(s, "saved1")), ("SaveState", None)]))
    assert "cannot be saved" in e.message
    pipe(s, ("Start-SCVirtualMachine", [("VM", vm(s, "saved1"))]))
    assert status(eng, "saved1") == "Running"


def test_vm_busy_in_a_job_refuses_a_second_job(eng, s):
    eng.control({"op": "time_scale", "value": 0.05})
    v = vm(s, "web01")
    first = pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("RunAsynchronously", None)])).outputs[0]
    assert str(vm(s, "web01").get("Status")) == "CreatingCheckpoint"
    e = raises(pipe, s, ("Stop-SCVirtualMachine", [("VM", v)]))
    assert e.error_id.startswith("2606,") and "(Error ID: 2606)" in e.message
    assert "The virtual machine web01 is currently in use by job 'Create virtual machine checkpoint'" in e.message
    assert str(first.get("MostRecentTaskID")) in e.message


# ---- checkpoints -------------------------------------------------------------------------
def test_checkpoint_fields_and_chain(eng, s):
    v = vm(s, "web01")
    pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("Name", "cp1"), ("Description", "first")]))
    pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("Name", "cp2")]))
    cps = pipe(s, ("Get-SCVMCheckpoint", [("VM", v)])).outputs
    assert [c.get("Name") for c in cps] == ["old", "cp1", "cp2"]
    old, cp1, cp2 = cps
    assert cp1.get("Description") == "first" and cp1.get("VM").get("Name") == "web01"
    assert cp1.get("VM").get("ID") == v.get("ID") and cp1.get("VMName") == "web01"
    assert old.get("ParentCheckpointID") is None
    assert cp1.get("ParentCheckpointID") == old.get("ID") and cp2.get("ParentCheckpointID") == cp1.get("ID")
    assert old.get("AddedTime") < cp1.get("AddedTime") <= cp2.get("AddedTime")
    recent = pipe(s, ("Get-SCVMCheckpoint", [("VM", v), ("MostRecent", None)])).outputs
    assert [c.get("Name") for c in recent] == ["cp2"]
    by_id = pipe(s, ("Get-SCVMCheckpoint", [("ID", cp1.get("ID"))])).outputs
    assert [c.get("Name") for c in by_id] == ["cp1"]


def test_restore_returns_to_checkpoint_status_and_keeps_later_checkpoints(eng, s):
    v = vm(s, "web01")
    pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("Name", "running-cp")]))
    old = [c for c in pipe(s, ("Get-SCVMCheckpoint", [("VM", v)])).outputs if c.get("Name") == "old"][0]
    restored = pipe(s, ("Restore-SCVMCheckpoint", [("VMCheckpoint", old)])).outputs[0]
    assert restored.get("Name") == "old"
    assert status(eng, "web01") == "PowerOff"          # 'old' was taken while off
    assert vm_state(eng, "web01")["checkpoints"] == ["old", "running-cp"]
    running_cp = pipe(s, ("Get-SCVMCheckpoint", [("VM", v)])).outputs[1]
    pipe(s, ("Get-SCVMCheckpoint", [("ID", running_cp.get("ID"))]), ("Restore-SCVMCheckpoint", []))
    assert status(eng, "web01") == "Running"
    assert vm(s, "web01").get("LastRestoredVMCheckpoint").get("Name") == "running-cp"


def test_remove_checkpoint_merges_and_reparents(eng, s):
    v = vm(s, "web01")
    pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("Name", "cp1")]))
    pipe(s, ("New-SCVMCheckpoint", [("VM", v), ("Name", "cp2")]))
    old, cp1, cp2 = pipe(s, ("Get-SCVMCheckpoint", [("VM", v)])).outputs
    pipe(s, ("Remove-SCVMCheckpoint", [("VMCheckpoint", cp1)]))
    assert vm_state(eng, "web01")["checkpoints"] == ["old", "cp2"]
    cps = pipe(s, ("Get-SCVMCheckpoint", [("VM", v)])).outputs
    assert cps[1].get("ParentCheckpointID") == old.get("ID")
    e = raises(pipe, s, ("Remove-SCVMCheckpoint", [("VMCheckpoint", cp1)]))
    assert "(Error ID: 801)" in e.message


# ---- user roles --------------------------------------------------------------------------
def test_user_role_permission_changes_run_as_jobs(eng, s):
    role = pipe(s, ("Get-SCUserRole", [("Name", "Tenants")])).outputs[0]
    assert role.get("Permission") == ["CheckpointRestoreOnly"]
    cloud = pipe(s, ("Get-SCCloud", [("Name", "Gold")])).outputs[0]
    out = pipe(s, ("Add-SCUserRolePermission", [("UserRole", role), ("Cloud", cloud), ("Checkpoint", None),
                                                ("RunAsynchronously", None), ("JobVariable", "planjob")]))
    job_id = out.outputs[0].get("MostRecentTaskID")
    job = wait_until(lambda: (j := pipe(s, ("Get-SCJob", [("ID", job_id)])).outputs[0]).get("IsCompleted") and j,
                     message="the user role job ends")
    assert str(job.get("Status")) == "Completed" and job.get("Name") == "Update user role"
    role = pipe(s, ("Get-SCUserRole", [("Name", "Tenants")])).outputs[0]
    assert set(role.get("Permission")) == {"Checkpoint", "CheckpointRestoreOnly"}
    pipe(s, ("Remove-SCUserRolePermission", [("UserRole", role), ("CheckpointRestoreOnly", None)]))
    role = pipe(s, ("Get-SCUserRole", [("Name", "Tenants")])).outputs[0]
    assert role.get("Permission") == ["Checkpoint"] and role.get("CloudPermission") == {"Gold": ["Checkpoint"]}


def test_set_custom_properties(eng, s):
    out = pipe(s, ("Get-SCVirtualMachine", [("Name", "ha1")]), ("Set-SCVirtualMachine", [("Custom1", "3"), ("Custom10", "x")]))
    assert out.outputs[0].get("Custom1") == "3" and out.outputs[0].get("Custom10") == "x"
    assert vm_state(eng, "ha1")["custom1"] == "3"


# ---- SCOM --------------------------------------------------------------------------------
def test_scom_maintenance_mode(eng, s):
    import datetime as dt
    inst = pipe(s, ("Get-SCOMClassInstance", [("Name", "web01.contoso.com")])).outputs
    assert len(inst) == 1 and inst[0].get("InMaintenanceMode") is False
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    pipe(s, ("Start-SCOMMaintenanceMode", [("Instance", inst[0]), ("EndTime", end),
                                           ("Reason", "PlannedOther"), ("Comment", "batch 1")]))
    assert pipe(s, ("Get-SCOMClassInstance", [("Name", "web01")])).outputs[0].get("InMaintenanceMode") is True
    entry = pipe(s, ("Get-SCOMMaintenanceMode", [("Instance", inst[0])])).outputs[0]
    assert entry.get("Comments") == "batch 1" and str(entry.get("Reason")) == "PlannedOther"
    assert eng.control({"op": "state"})["scom_maintenance"][0]["instance"] == "web01.contoso.com"
    again = pipe(s, ("Start-SCOMMaintenanceMode", [("Instance", inst[0]), ("EndTime", end)]))
    assert again.errors and "already in maintenance mode" in again.errors[0].message
    pipe(s, ("Get-SCOMMaintenanceMode", [("Instance", inst[0])]),
         ("Set-SCOMMaintenanceMode", [("EndTime", dt.datetime.now(dt.timezone.utc))]))
    assert pipe(s, ("Get-SCOMMaintenanceMode", [("Instance", inst[0])])).outputs == []
    assert pipe(s, ("Get-SCOMClassInstance", [("Name", "web01")])).outputs[0].get("InMaintenanceMode") is False
