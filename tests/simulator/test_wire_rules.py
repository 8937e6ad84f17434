"""The fabric's rules (DESIGN.md), checked over the wire: the real pypsrp client
(ops.fabric) against the simulator on 127.0.0.1, asserting only what a client sees.

The fabric is ``sim_helpers.small_fabric()``:

    n1 (16 GB): ha1 4G HA Running, ha2 4G HA Running, solo 2G Running, off1 2G PowerOff, saved1 2G Saved
    n2 (16 GB): big 12G HA Running                      -> 4 GB free
    n3 ( 8 GB): web01 2G HA Running, checkpoint "old" (taken while PowerOff) -> 6 GB free
    s1 ( 8 GB, standalone): st1 4G Running, st2 4G PowerOff
"""

import pytest

from ops.fabric import errors, vmm
from ops.fabric.commands import cmd, parse_date, parse_json_output, select_json


def short(name: str) -> str:
    return name.split(".")[0]


def placement(wire) -> dict:
    """{vm name: (short host name, status)} as Get-SCVirtualMachine -All shows it."""
    return {v.name: (short(v.host_name), v.status) for v in vmm.list_vms(wire.session)}


def hosts(wire) -> dict:
    return {short(h.name): h for h in vmm.list_hosts(wire.session)}


# ---- Disable-SCVMHost / Enable-SCVMHost ----------------------------------------------------
def test_drain_moves_running_ha_vms_to_nodes_with_room_saves_non_ha_and_leaves_the_rest(wire):
    s = wire.session
    job = vmm.disable_host(s, "n1")  # -MoveWithinCluster
    assert job.status == "Running" and job.target == "n1"
    done = wire.wait(job)
    assert done.status == "Completed" and done.progress == 100 and not done.error
    after = placement(wire)
    # each HA VM went live (still Running) to the node with the most free memory at that moment
    assert after["ha1"] == ("n3", "Running")
    assert after["ha2"] == ("n2", "Running")
    assert after["solo"] == ("n1", "Saved"), "a running VM that is not HA is saved where it is"
    assert after["off1"] == ("n1", "PowerOff") and after["saved1"] == ("n1", "Saved"), "stopped VMs stay"
    assert after["big"] == ("n2", "Running") and after["web01"] == ("n3", "Running")
    h = hosts(wire)
    assert h["n1"].in_maintenance and not h["n2"].in_maintenance
    assert all(x.available_memory_mb >= 0 for x in h.values()), "no node was overcommitted"

    wire.wait(vmm.enable_host(s, "n1"))
    assert not hosts(wire)["n1"].in_maintenance
    assert placement(wire) == after, "Enable-SCVMHost moves nothing back and starts nothing"


def test_drain_without_move_within_cluster_saves_every_running_vm(wire):
    wire.wait(vmm.disable_host(wire.session, "n1", move_within_cluster=False))
    after = placement(wire)
    assert {n: after[n] for n in ("ha1", "ha2", "solo", "off1", "saved1")} == {
        "ha1": ("n1", "Saved"), "ha2": ("n1", "Saved"), "solo": ("n1", "Saved"),
        "off1": ("n1", "PowerOff"), "saved1": ("n1", "Saved")}
    assert after["big"] == ("n2", "Running") and after["web01"] == ("n3", "Running")
    assert hosts(wire)["n1"].in_maintenance


def test_move_within_cluster_on_a_standalone_host_is_refused_and_without_it_saves(wire):
    s = wire.session
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.disable_host(s, "s1")
    exc = info.value
    assert type(exc) is errors.FabricCommandError
    assert exc.cmdlet == "Disable-SCVMHost" and exc.target == "s1" and exc.error_id.startswith("10468")
    assert "s1.contoso.com" in exc.message and "not a node of a host cluster" in exc.message
    assert "(Error ID: 10468)" in str(exc)
    assert not hosts(wire)["s1"].in_maintenance, "a refused drain changes nothing"
    assert placement(wire)["st1"] == ("s1", "Running")

    wire.wait(vmm.disable_host(s, "s1", move_within_cluster=False))
    after = placement(wire)
    assert after["st1"] == ("s1", "Saved") and after["st2"] == ("s1", "PowerOff")
    assert hosts(wire)["s1"].in_maintenance


def test_an_ha_vm_no_node_has_room_for_is_saved_and_the_job_says_so(wire):
    done = wire.wait(vmm.disable_host(wire.session, "n2"))  # big needs 12 GB; n1 and n3 have 6 GB each
    assert done.status == "SucceedWithInfo" and done.succeeded and done.progress == 100
    assert "big" in done.error and "could not be live migrated" in done.error
    assert placement(wire)["big"] == ("n2", "Saved")


def test_a_host_in_maintenance_receives_no_placements_or_migrations(wire):
    s = wire.session
    wire.wait(vmm.disable_host(s, "n3"))
    assert placement(wire)["web01"] == ("n1", "Running"), "web01 left n3 for the node with most room"

    for name in ("ha1", "off1"):  # neither a live nor an offline migration may land there
        vm = wire.vm(name)
        with pytest.raises(errors.FabricCommandError) as info:
            vmm.move_vm(s, vm.id, "n3", vm_name=name)
        assert "maintenance mode" in info.value.message and "(Error ID: 10653)" in info.value.message
        assert name in info.value.message and "n3.contoso.com" in info.value.message
        assert short(wire.vm(name).host_name) == "n1"

    # draining n1 now may only use n2 (4 GB free): ha1 fits, ha2 and web01 do not and are saved
    done = wire.wait(vmm.disable_host(s, "n1"))
    assert done.status == "SucceedWithInfo" and "ha2" in done.error and "web01" in done.error
    after = placement(wire)
    assert after["ha1"] == ("n2", "Running")
    assert after["ha2"] == ("n1", "Saved") and after["web01"] == ("n1", "Saved")
    assert wire.host_state("n3")["vms"] == 0, "nothing was placed on the host in maintenance"

    with pytest.raises(errors.FabricCommandError) as info:  # nor is anything started there
        vmm.start_vm(s, wire.vm("solo").id, vm_name="solo")
    assert "(Error ID: 10653)" in info.value.message and "n1.contoso.com" in info.value.message
    assert wire.vm("solo").status == "Saved"


# ---- memory ----------------------------------------------------------------------------------
def test_host_memory_limits_migrations_and_starts(wire):
    s = wire.session
    ids = {v.name: v.id for v in vmm.list_vms(s)}
    wire.wait(vmm.move_vm(s, ids["ha1"], "n3", vm_name="ha1"))  # 6 GB free -> 2 GB
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.move_vm(s, ids["ha2"], "n3", vm_name="ha2")
    msg = info.value.message
    assert "(Error ID: 13206)" in msg and "2048 MB" in msg and "4096 MB" in msg and "ha2" in msg
    assert placement(wire)["ha2"] == ("n1", "Running")

    # stopped VMs use no memory, so they may move to a full host; starting them is what needs room
    wire.wait(vmm.move_vm(s, ids["off1"], "n3", vm_name="off1"))
    wire.wait(vmm.move_vm(s, ids["saved1"], "n3", vm_name="saved1"))
    wire.wait(vmm.start_vm(s, ids["off1"], vm_name="off1"))  # takes the last 2 GB
    assert hosts(wire)["n3"].available_memory_mb == 0
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.start_vm(s, ids["saved1"], vm_name="saved1")
    assert "(Error ID: 13206)" in info.value.message and "not have enough memory" in info.value.message
    assert placement(wire)["saved1"] == ("n3", "Saved")


def test_memory_is_checked_again_when_a_migration_ends(wire):
    s = wire.session
    wire.control({"op": "time_scale", "value": 0.05})  # a live migration takes 300 ms
    ids = {v.name: v.id for v in vmm.list_vms(s)}
    first = vmm.move_vm(s, ids["ha1"], "n2", vm_name="ha1")   # n2 has 4 GB free: both are accepted
    second = vmm.move_vm(s, ids["ha2"], "n2", vm_name="ha2")
    assert wire.wait(first).status == "Completed"
    with pytest.raises(errors.JobFailed) as info:
        wire.wait(second)
    assert info.value.job.status == "Failed" and "ha2" in info.value.message and "n2" in info.value.message
    after = placement(wire)
    assert after["ha1"] == ("n2", "Running") and after["ha2"] == ("n1", "Running")


# ---- Start / Stop ------------------------------------------------------------------------------
@pytest.mark.parametrize("vm_name, method, expected", [
    ("ha1", "shutdown", "PowerOff"), ("ha1", "turnoff", "PowerOff"), ("ha1", "save", "Saved"),
    ("saved1", "turnoff", "PowerOff"),  # turning off a saved VM discards its saved state
])
def test_stop_methods(wire, vm_name, method, expected):
    s = wire.session
    vm = wire.vm(vm_name)
    job = vmm.stop_vm(s, vm.id, method=method, vm_name=vm_name)
    assert wire.wait(job).status == "Completed"
    assert vmm.get_vm(s, vm.id).status == expected
    assert short(vmm.get_vm(s, vm.id).host_name) == short(vm.host_name)


def test_start_returns_a_stopped_vm_to_running(wire):
    s = wire.session
    for name in ("off1", "saved1"):
        vm = wire.vm(name)
        wire.wait(vmm.start_vm(s, vm.id, vm_name=name))
        assert vmm.get_vm(s, vm.id).status == "Running"


# ---- checkpoints --------------------------------------------------------------------------------
def test_restore_returns_to_the_captured_status_and_keeps_later_checkpoints(wire):
    s = wire.session
    web = wire.vm("web01")
    wire.wait(vmm.new_checkpoint(s, web.id, "while-running", vm_name="web01"))
    wire.wait(vmm.stop_vm(s, web.id, "save", vm_name="web01"))
    assert vmm.get_vm(s, web.id).status == "Saved"

    old = wire.checkpoint("web01", "old")  # taken while PowerOff
    wire.wait(vmm.restore_checkpoint(s, old.id, label="old"))
    assert vmm.get_vm(s, web.id).status == "PowerOff", "the saved state after the checkpoint is discarded"
    assert [c.name for c in vmm.list_checkpoints(s, web.id)] == ["old", "while-running"]

    later = wire.checkpoint("web01", "while-running")
    wire.wait(vmm.restore_checkpoint(s, later.id, label="while-running"))
    assert vmm.get_vm(s, web.id).status == "Running"
    assert [c.name for c in vmm.list_checkpoints(s, web.id)] == ["old", "while-running"]


def _chain(wire, vm_id):
    rows = parse_json_output(wire.session.run(
        [[cmd("Get-SCVirtualMachine", ID=vm_id), cmd("Get-SCVMCheckpoint"),
          *select_json("Name", "ID", "ParentCheckpointID")]], cmdlet="Get-SCVMCheckpoint").output)
    by_id = {r["ID"]: r["Name"] for r in rows}
    return {r["Name"]: by_id.get(r["ParentCheckpointID"]) for r in rows}


def test_remove_checkpoint_merges_it_into_the_chain(wire):
    s = wire.session
    web = wire.vm("web01")
    for name in ("mid", "last"):
        wire.wait(vmm.new_checkpoint(s, web.id, name, vm_name="web01"))
    assert _chain(wire, web.id) == {"old": None, "mid": "old", "last": "mid"}
    mid = wire.checkpoint("web01", "mid")
    assert wire.wait(vmm.remove_checkpoint(s, mid.id, label="mid")).status == "Completed"
    assert _chain(wire, web.id) == {"old": None, "last": "old"}, "the child now differences from mid's parent"
    assert vmm.get_vm(s, web.id).status == "Running", "a merge does not change the VM's state"


# ---- jobs: locks, progress, time ------------------------------------------------------------
def test_vms_and_host_busy_in_a_drain_refuse_other_jobs_until_it_ends(wire):
    s = wire.session
    wire.control({"op": "fault", "cmdlet": "Disable-SCVMHost", "target": "n1", "mode": "hang"})
    drain = vmm.disable_host(s, "n1")
    ids = {v.name: v.id for v in vmm.list_vms(s)}
    attempts = {
        "Stop-SCVirtualMachine": lambda: vmm.stop_vm(s, ids["ha1"], vm_name="ha1"),
        "Move-SCVirtualMachine": lambda: vmm.move_vm(s, ids["ha2"], "n3", vm_name="ha2"),
        "New-SCVMCheckpoint": lambda: vmm.new_checkpoint(s, ids["solo"], "cp", vm_name="solo"),
        "Enable-SCVMHost": lambda: vmm.enable_host(s, "n1"),
    }
    for cmdlet, attempt in attempts.items():
        with pytest.raises(errors.VMBusy) as info:
            attempt()
        assert info.value.cmdlet == cmdlet
        assert "Start maintenance mode" in info.value.message and drain.id in info.value.message
        assert "(Error ID: 2606)" in info.value.message
    # a VM the drain does not touch (powered off) is free
    assert wire.wait(vmm.new_checkpoint(s, ids["off1"], "cp", vm_name="off1")).status == "Completed"

    assert wire.control({"op": "clear_faults"})["canceled_hung_jobs"] == 1
    with pytest.raises(errors.JobFailed) as info:
        wire.wait(drain)
    assert info.value.job.status == "Canceled"
    assert not hosts(wire)["n1"].in_maintenance and placement(wire)["ha1"] == ("n1", "Running")
    wire.wait(vmm.stop_vm(s, ids["ha1"], vm_name="ha1"))  # the locks are gone


def test_a_vm_restoring_a_checkpoint_refuses_a_second_checkpoint_job(wire):
    s = wire.session
    wire.control({"op": "time_scale", "value": 0.2})  # a restore takes 1 s
    web = wire.vm("web01")
    old = wire.checkpoint("web01", "old")
    restore = vmm.restore_checkpoint(s, old.id, label="old")
    for attempt in (lambda: vmm.remove_checkpoint(s, old.id, label="old"),
                    lambda: vmm.new_checkpoint(s, web.id, "second", vm_name="web01"),
                    lambda: vmm.restore_checkpoint(s, old.id, label="old")):
        with pytest.raises(errors.VMBusy) as info:
            attempt()
        assert "Restore virtual machine checkpoint" in info.value.message and restore.id in info.value.message
    assert wire.vm("web01").status == "RecoveringCheckpoint"
    wire.control({"op": "time_scale", "value": 0.01})
    assert wire.wait(restore).status == "Completed"
    assert [c.name for c in vmm.list_checkpoints(s, web.id)] == ["old"]


def test_get_scjob_progress_advances_from_0_to_100(wire):
    wire.control({"op": "time_scale", "value": 0.05})  # the drain of n1 takes 0.9 s
    seen = []
    done = wire.wait(vmm.disable_host(wire.session, "n1"), on_progress=lambda j: seen.append((j.status, j.progress)))
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and len(set(progress)) >= 4, seen
    assert progress[0] < 25 and progress[-1] == 100 == done.progress
    assert all(status == "Running" for status, p in seen if p < 100)


def test_time_scale_control_changes_job_durations(wire):
    s = wire.session
    web = wire.vm("web01")

    def checkpoint(name):
        """The job's first poll, and how long VMM says the job ran (its StartTime to its EndTime)."""
        job = vmm.new_checkpoint(s, web.id, name, vm_name="web01")
        first = vmm.get_job(s, job.id)
        wire.wait(job)
        row = parse_json_output(s.run([[cmd("Get-SCJob", ID=job.id), *select_json("StartTime", "EndTime")]],
                                      cmdlet="Get-SCJob").output)[0]
        return first, (parse_date(row["EndTime"]) - parse_date(row["StartTime"])).total_seconds()

    _, fast = checkpoint("fast")  # 4 s x 0.01
    assert wire.control({"op": "time_scale", "value": 0.2})["time_scale"] == 0.2
    first, slow = checkpoint("slow")  # 4 s x 0.2
    assert first.status == "Running" and first.progress < 60
    assert (fast, slow) == (pytest.approx(0.04, abs=0.002), pytest.approx(0.8, abs=0.002))
