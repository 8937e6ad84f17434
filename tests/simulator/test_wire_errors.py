"""Each cmdlet's error paths, PowerShell's own errors, hostile values and scenario
faults, over the wire: the real pypsrp client against the simulator on 127.0.0.1.

ops.fabric functions are used wherever they exist; raw pypsrp (``add_cmdlet`` /
``add_parameter`` / constant ``add_script`` with bound parameters) only for cmdlets
the client has no function for. Fabric: ``sim_helpers.small_fabric()`` (see
test_wire_rules.py).
"""
import datetime as dt

import pytest
import yaml
from pypsrp.powershell import PowerShell

from ops.fabric import errors, scom, vmm
from ops.fabric.commands import cmd, error_record_fields, script
from tests.simulator.sim_helpers import small_fabric
from tests.simulator.wire_helpers import serve

NO_SUCH_ID = "6f1c2c56-0000-4000-8000-000000000000"
HOSTILE = ["n1'; Disable-SCVMHost -VMHost n2", '$(Disable-SCVMHost n1)', "n1\nDisable-SCVMHost n2", "n1`; x",
           "ünïcødé-✓-名前", "n*", "n?.contoso.com"]


def raw(pool, *commands, script_text=None, **script_params):
    """Run ``commands`` ((name, {param: value}) piped) or one constant script; return the PowerShell."""
    ps = PowerShell(pool)
    if script_text is not None:
        ps.add_script(script_text)
        for key, value in script_params.items():
            ps.add_parameter(key, value)
    for name, params in commands:
        ps.add_cmdlet(name)
        for key, value in params.items():
            ps.add_parameter(key) if value is True else ps.add_parameter(key, value)
    ps.invoke()
    return ps


def first_error(ps) -> dict:
    assert ps.had_errors and ps.streams.error, "expected the pipeline to fail"
    return error_record_fields(ps.streams.error[0])


def states(wire) -> dict:
    return {v["name"]: (v["host"].split(".")[0], v["status"]) for v in wire.state()["vms"]}


def maintenance(wire) -> dict:
    return {h["name"].split(".")[0]: h["maintenance"] for h in wire.state()["hosts"]}


# ---- PowerShell's own errors ------------------------------------------------------------------
def test_unknown_cmdlet_is_not_recognized(wire, raw_pool):
    err = first_error(raw(raw_pool, ("Get-SCVirtualMachines", {"All": True})))
    assert "The term 'Get-SCVirtualMachines' is not recognized as the name of a cmdlet" in err["message"]
    assert err["error_id"] == "CommandNotFoundException" and err["category"] == "CommandNotFoundException"
    with pytest.raises(errors.FabricCommandError) as info:
        wire.session.run([[cmd("Invoke-Expression", Command="Get-Date")]], cmdlet="Invoke-Expression")
    assert type(info.value) is errors.FabricCommandError, "an unknown cmdlet is not a missing VM"
    assert "is not recognized" in info.value.message


def test_unknown_parameter_fails_the_whole_pipeline_before_anything_runs(wire, raw_pool):
    vm = wire.vm("ha1")
    ps = raw(raw_pool, ("Get-SCVirtualMachine", {"ID": vm.id}), ("Stop-SCVirtualMachine", {"Force": True, "Now": True}))
    err = first_error(ps)
    assert err["message"] == "A parameter cannot be found that matches parameter name 'Now'."
    assert err["error_id"].startswith("NamedParameterNotFound")
    with pytest.raises(errors.FabricCommandError) as info:
        wire.session.run([[cmd("Get-SCVirtualMachine", ID=vm.id), cmd("Stop-SCVirtualMachine", Force=True, Bogus="1")]],
                         cmdlet="Stop-SCVirtualMachine", target="ha1")
    assert type(info.value) is errors.FabricCommandError and "'Bogus'" in info.value.message
    assert wire.vm_state("ha1")["status"] == "Running", "nothing ran"


@pytest.mark.parametrize("text, token", [
    ("param($ID)\nGet-SCVirtualMachine -ID $ID | Stop-SCVirtualMachine -Force\n$when = $(Get-Date)", "$("),
    ("param($ID)\nGet-SCVirtualMachine -ID $ID | Stop-SCVirtualMachine -Force\nforeach ($x in 1) { $x }", "foreach"),
    ("param($ID)\nGet-SCVirtualMachine -ID $ID | ForEach-Object { Stop-SCVirtualMachine -VM $_ }", "{"),
])
def test_syntax_the_simulator_refuses_is_a_parse_error_and_nothing_runs(wire, raw_pool, text, token):
    vm = wire.vm("ha1")
    err = first_error(raw(raw_pool, script_text=text, ID=vm.id))
    assert err["category"] == "ParseException" and err["message"].startswith("At line:")
    assert token in err["message"]
    with pytest.raises(errors.FabricCommandError) as info:
        wire.session.run([[script(text, ID=vm.id)]], cmdlet="script")
    assert "At line:" in info.value.message
    assert wire.vm_state("ha1")["status"] == "Running", "a script that does not parse runs no statement"


# ---- VM cmdlets --------------------------------------------------------------------------------
def test_get_scvirtualmachine_error_paths(wire):
    s = wire.session
    with pytest.raises(errors.NotFound):
        vmm.get_vm(s, NO_SUCH_ID)
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.get_vm(s, "$(Stop-SCVirtualMachine)")
    assert "Cannot bind parameter 'ID'" in info.value.message and '"$(Stop-SCVirtualMachine)"' in info.value.message
    assert "System.Guid" in info.value.message


@pytest.mark.parametrize("vm_name, method, fragment", [
    ("off1", "turnoff", "is already stopped"), ("off1", "shutdown", "is already stopped"),
    ("off1", "save", "is already stopped"), ("saved1", "save", "cannot be saved because it is in the Saved state"),
    ("saved1", "shutdown", "cannot be shut down"),
])
def test_stop_error_paths(wire, vm_name, method, fragment):
    vm = wire.vm(vm_name)
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.stop_vm(wire.session, vm.id, method=method, vm_name=vm_name)
    assert info.value.cmdlet == "Stop-SCVirtualMachine" and info.value.target == vm_name
    assert fragment in info.value.message and "(Error ID: 1730)" in info.value.message
    assert wire.vm_state(vm_name)["status"] == vm.status


def test_start_and_stop_of_a_missing_vm_are_not_found(wire):
    for action in (vmm.start_vm, vmm.stop_vm):
        with pytest.raises(errors.NotFound) as info:
            action(wire.session, NO_SUCH_ID, vm_name="ghost")
        assert "ghost" in str(info.value) and "nothing was started" in info.value.message
    with pytest.raises(ValueError):
        vmm.stop_vm(wire.session, NO_SUCH_ID, method="pull-the-plug")


def test_set_custom_property_error_paths(wire):
    s = wire.session
    with pytest.raises(errors.NotFound) as info:
        vmm.set_custom_property(s, NO_SUCH_ID, 1, "7", vm_name="ghost")
    assert "ghost" in str(info.value) and "nothing was changed" in info.value.message
    with pytest.raises(ValueError):
        vmm.set_custom_property(s, wire.vm("ha1").id, 11, "7")
    wire.control({"op": "fault", "cmdlet": "Stop-SCVirtualMachine", "target": "ha1", "mode": "hang"})
    ha1 = wire.vm("ha1")
    vmm.stop_vm(s, ha1.id, vm_name="ha1")
    with pytest.raises(errors.VMBusy):
        vmm.set_custom_property(s, ha1.id, 1, "7", vm_name="ha1")
    wire.control({"op": "clear_faults"})
    vmm.set_custom_property(s, ha1.id, 1, "7", vm_name="ha1")
    assert vmm.get_vm(s, ha1.id).custom["Custom1"] == "7"


def test_move_error_paths(wire):
    s = wire.session
    ha1 = wire.vm("ha1")
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.move_vm(s, ha1.id, "n1", vm_name="ha1")
    assert "already on host n1.contoso.com" in info.value.message and "(Error ID: 10601)" in info.value.message
    with pytest.raises(errors.NotFound) as info:
        vmm.move_vm(s, ha1.id, "n9", vm_name="ha1")
    assert "no host is named n9" in info.value.message
    with pytest.raises(errors.NotFound) as info:
        vmm.move_vm(s, NO_SUCH_ID, "n2", vm_name="ghost")
    assert "ghost" in str(info.value)
    assert states(wire)["ha1"] == ("n1", "Running")


# ---- checkpoint cmdlets ------------------------------------------------------------------------
def test_checkpoint_error_paths(wire):
    s = wire.session
    old = wire.checkpoint("web01", "old")
    for action in (vmm.restore_checkpoint, vmm.remove_checkpoint):
        with pytest.raises(errors.NotFound) as info:
            action(s, NO_SUCH_ID, label="gone")
        assert "gone" in str(info.value)
    wire.wait(vmm.remove_checkpoint(s, old.id, label="old"))
    with pytest.raises(errors.NotFound):  # removed twice: the second finds nothing
        vmm.remove_checkpoint(s, old.id, label="old")
    with pytest.raises(errors.NotFound):
        vmm.restore_checkpoint(s, old.id, label="old")
    assert vmm.list_checkpoints(s, NO_SUCH_ID) == [], "no VM: no checkpoints (not everyone's)"


def test_failed_checkpoint_job_changes_nothing(wire):
    s = wire.session
    web = wire.vm("web01")
    wire.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "web01", "mode": "fail",
                  "message": "The file system of CSV01 is full.", "code": 2912, "times": 1})
    with pytest.raises(errors.JobFailed) as info:
        wire.wait(vmm.new_checkpoint(s, web.id, "doomed", vm_name="web01"))
    assert info.value.job.status == "Failed" and "CSV01 is full" in str(info.value)
    assert [c.name for c in vmm.list_checkpoints(s, web.id)] == ["old"]
    assert vmm.get_vm(s, web.id).status == "Running"


# ---- host cmdlets --------------------------------------------------------------------------------
def test_host_cmdlet_error_paths(wire):
    s = wire.session
    for action in (vmm.disable_host, vmm.enable_host):
        with pytest.raises(errors.NotFound) as info:
            action(s, "n9")
        assert info.value.target == "n9"
    wire.wait(vmm.disable_host(s, "n3", move_within_cluster=False))
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.disable_host(s, "n3")
    assert "already in maintenance mode" in info.value.message and "(Error ID: 10434)" in info.value.message
    wire.control({"op": "fault", "cmdlet": "Enable-SCVMHost", "target": "n3", "mode": "hang"})
    vmm.enable_host(s, "n3")
    with pytest.raises(errors.VMBusy) as info:
        vmm.enable_host(s, "n3")
    assert "host n3.contoso.com is currently in use by job 'Stop maintenance mode'" in info.value.message


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_host_names_arrive_literally_and_touch_nothing(wire, name):
    s = wire.session
    before = states(wire)
    for action in (lambda: vmm.disable_host(s, name), lambda: vmm.enable_host(s, name),
                   lambda: vmm.move_vm(s, wire.vm("ha1").id, name, vm_name="ha1")):
        with pytest.raises(errors.NotFound) as info:
            action()
        assert name in str(info.value)
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with pytest.raises(errors.NotFound):
        scom.start_maintenance(s, name, end, "PlannedOther", "x")
    assert not any(maintenance(wire).values()) and states(wire) == before
    assert wire.state()["scom_maintenance"] == []


# ---- VMM server, jobs, user roles (raw pypsrp: no client function) ---------------------------------
def test_get_scvmmserver_error_path(wire, raw_pool):
    ok = raw(raw_pool, ("Get-SCVMMServer", {"ComputerName": "vmm01.contoso.com"}))
    assert not ok.had_errors and ok.output[0].adapted_properties["Name"] == "vmm01.contoso.com"
    err = first_error(raw(raw_pool, ("Get-SCVMMServer", {"ComputerName": "vmm99; Get-SCJob"})))
    assert "You cannot contact the VMM management server vmm99; Get-SCJob" in err["message"]
    assert "(Error ID: 1604)" in err["message"]


def test_get_scjob_error_paths(wire):
    with pytest.raises(errors.NotFound):
        vmm.get_job(wire.session, NO_SUCH_ID)
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.get_job(wire.session, "job 1")
    assert "Cannot bind parameter 'ID'" in info.value.message and '"job 1"' in info.value.message
    assert vmm.get_jobs(wire.session, [NO_SUCH_ID]) == {}


ROLE_SCRIPT = ("param($Role, $Cloud)\n"
               "$userRole = Get-SCUserRole -Name $Role\n"
               "$cloud = Get-SCCloud -Name $Cloud\n"
               "Add-SCUserRolePermission -UserRole $userRole -Cloud $cloud -Checkpoint")


def role_permissions(wire) -> list:
    return next(r for r in vmm.list_user_roles(wire.session) if r.name == "Tenants").permissions


def test_user_role_permission_error_paths(wire, raw_pool):
    assert role_permissions(wire) == ["CheckpointRestoreOnly"]
    ps = raw(raw_pool, ("Get-SCUserRole", {"Name": "Tenants"}), ("Add-SCUserRolePermission", {}))
    assert "Specify at least one permission" in first_error(ps)["message"]
    ps = raw(raw_pool, script_text=ROLE_SCRIPT.replace("Get-SCCloud", "Get-SCClouds"), Role="Tenants", Cloud="Gold")
    assert "is not recognized" in first_error(ps)["message"]
    assert role_permissions(wire) == ["CheckpointRestoreOnly"], "failed calls changed nothing"

    wire.control({"op": "fault", "cmdlet": "Add-SCUserRolePermission", "target": "Tenants", "mode": "hang"})
    ps = PowerShell(raw_pool)
    ps.add_script(ROLE_SCRIPT + " -RunAsynchronously").add_parameter("Role", "Tenants").add_parameter("Cloud", "Gold")
    ps.invoke()
    assert not ps.had_errors
    err = first_error(raw(raw_pool, script_text=ROLE_SCRIPT, Role="Tenants", Cloud="Gold"))
    assert "user role Tenants is currently in use by job 'Update user role'" in err["message"]
    wire.control({"op": "clear_faults"})
    assert not raw(raw_pool, script_text=ROLE_SCRIPT, Role="Tenants", Cloud="Gold").had_errors
    assert sorted(role_permissions(wire)) == ["Checkpoint", "CheckpointRestoreOnly"]

    ps = raw(raw_pool, ("Get-SCUserRole", {"Name": "Tenants"}), ("Remove-SCUserRolePermission", {}))
    assert "Specify at least one permission" in first_error(ps)["message"]
    ps = raw(raw_pool, script_text=ROLE_SCRIPT.replace("Add-", "Remove-"), Role="Tenants", Cloud="Gold")
    assert not ps.had_errors and role_permissions(wire) == ["CheckpointRestoreOnly"]


def test_a_failing_or_hung_read_cmdlet(wire):
    s = wire.session
    wire.control({"op": "fault", "cmdlet": "Get-SCVMHostCluster", "mode": "fail", "message": "SQL timeout.", "times": 1})
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.list_clusters(s)
    assert info.value.message == "SQL timeout. (Error ID: 2912)" and info.value.cmdlet == "Get-SCVMHostCluster"
    wire.control({"op": "fault", "cmdlet": "Get-SCVMHostCluster", "mode": "hang", "times": 1})
    with pytest.raises(errors.FabricTimeout) as info:
        s.run([[cmd("Get-SCVMHostCluster")]], cmdlet="Get-SCVMHostCluster", timeout=1)
    assert "no result within 1 s; the call was stopped" in info.value.message
    assert [c.name for c in vmm.list_clusters(s)] == ["C1"], "the session works again after a stopped call"


# ---- SCOM --------------------------------------------------------------------------------------
def test_scom_error_paths(wire, raw_pool):
    s = wire.session
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with pytest.raises(errors.NotFound):
        scom.start_maintenance(s, "ghost01", end, "PlannedOther", "x")
    with pytest.raises(errors.FabricCommandError) as info:
        scom.start_maintenance(s, "ha1", dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1), "PlannedOther", "x")
    assert "must be later than the current time" in info.value.message
    with pytest.raises(ValueError):
        scom.start_maintenance(s, "ha1", end, "BecauseISaidSo", "x")
    comment = "batch 'A'; $(Stop-SCVirtualMachine)\nline 2 — ünïcødé"
    scom.start_maintenance(s, "ha1", end, "PlannedOther", comment)
    assert wire.state()["scom_maintenance"][0]["comment"] == comment
    with pytest.raises(errors.FabricCommandError) as info:
        scom.start_maintenance(s, "ha1", end, "PlannedOther", "again")
    assert "already in maintenance mode" in info.value.message
    assert scom.stop_maintenance(s, "ha1") is True
    ps = raw(raw_pool, ("Get-SCOMClassInstance", {"Name": "ha1"}), ("Get-SCOMMaintenanceMode", {"History": True}),
             ("Set-SCOMMaintenanceMode", {"EndTime": end.isoformat()}))
    assert "has already ended" in first_error(ps)["message"]


# ---- faults from a scenario file ---------------------------------------------------------------
def test_faults_listed_in_a_scenario_file_fail_the_named_cmdlets(tmp_path):
    from ops.simulator.engine import SimEngine

    data = small_fabric(faults=[
        {"cmdlet": "Get-SCCloud", "mode": "fail", "message": "The VMM database is unavailable.", "times": 1},
        {"cmdlet": "New-SCVMCheckpoint", "target": "web01", "mode": "fail", "message": "CSV02 is out of space.",
         "code": 2917},
        {"cmdlet": "Start-SCVirtualMachine", "target": "off1", "mode": "hang"},
    ])
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    wire = serve(SimEngine.from_scenario(str(path), time_scale=0.01))
    try:
        s = wire.session
        with pytest.raises(errors.FabricCommandError) as info:
            vmm.list_clouds(s)
        assert "The VMM database is unavailable. (Error ID: 2912)" in info.value.message
        assert [c.name for c in vmm.list_clouds(s)] == ["Dev", "Gold"], "a fault with times: 1 is spent"

        web, off1, ha1 = wire.vm("web01"), wire.vm("off1"), wire.vm("ha1")
        for _ in range(2):  # no times: it fails every time
            with pytest.raises(errors.JobFailed) as info:
                wire.wait(vmm.new_checkpoint(s, web.id, "cp", vm_name="web01"))
            assert "CSV02 is out of space." in info.value.message and "web01" in str(info.value)
        assert [c.name for c in vmm.list_checkpoints(s, web.id)] == ["old"]
        assert wire.wait(vmm.new_checkpoint(s, ha1.id, "cp", vm_name="ha1")).status == "Completed"

        job = vmm.start_vm(s, off1.id, vm_name="off1")
        with pytest.raises(errors.FabricTimeout) as info:
            wire.wait(job, timeout=0.5)
        assert "still Running at 0%" in info.value.message
    finally:
        wire.session.close()
        wire.server.stop()
